// The startup progress line: time left from the identify buckets (one identify per 5 s in each
// bucket, bucket = shard id % max_concurrency), resumes not paced by identify.
import { describe, expect, it } from "vitest"
import { progressTail, type ShardState, startupEstimate } from "../../src/Shard/ShardStatus.ts"

const all = (ids: ReadonlyArray<number>, state: ShardState) => ids.map((id) => [id, state] as const)
const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i)

describe("startupEstimate", () => {
  it("max_concurrency 1: one round per shard left", () => {
    expect(startupEstimate(all(range(1, 8), "identifying"), 1)).toEqual({ seconds: 35, identifying: 7, resuming: 0 })
  })

  it("max_concurrency 16 with 64 shards, one ready: the fullest bucket sets the pace", () => {
    // Shard 0 is ready: bucket 0 has 3 left (16, 32, 48), every other bucket 4.
    expect(startupEstimate(all(range(1, 64), "identifying"), 16).seconds).toBe(20)
    // Once buckets 0-15 each have one shard left, one more round.
    expect(startupEstimate(all(range(48, 64), "connecting"), 16).seconds).toBe(5)
  })

  it("counts per bucket, not shards / max_concurrency", () => {
    // 4 shards left, max_concurrency 4, but all in bucket 1: four rounds, not one.
    expect(startupEstimate(all([1, 5, 9, 13], "identifying"), 4).seconds).toBe(20)
  })

  it("resumes are not paced by identify", () => {
    expect(startupEstimate(all(range(1, 10), "resuming"), 1)).toEqual({ seconds: 0, identifying: 0, resuming: 9 })
    const mixed = [...all([1, 2, 3], "resuming"), ...all([4, 6], "identifying")]
    expect(startupEstimate(mixed, 2)).toEqual({ seconds: 10, identifying: 2, resuming: 3 })
  })

  it("words the line for each case", () => {
    expect(progressTail({ seconds: 10, identifying: 2, resuming: 3 })).toBe(", about 10s left (2 to identify, 3 resuming)")
    expect(progressTail({ seconds: 0, identifying: 0, resuming: 9 })).toBe(", 9 resuming (not paced by identify)")
  })
})
