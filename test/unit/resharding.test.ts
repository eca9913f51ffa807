import { describe, expect, it } from "vitest"
import {
  advance,
  begin,
  decodeSharding,
  encodeSharding,
  generationPrefix,
  generationsToRun,
  initialSharding,
  publishes,
  requiredCount,
  type ShardingState
} from "../../src/Cluster/Resharding.ts"

const started = (reason: "recommended" | "required" = "recommended"): ShardingState => {
  const result = begin(initialSharding(4), 8, reason)
  if (result._tag !== "Begin") throw new Error(result.why)
  return result.state
}

describe("the cluster-wide resharding state", () => {
  it("starts a next generation with a higher count, not publishing until every shard was READY", () => {
    const state = started()
    expect(state.next).toEqual({ generation: 1, shardCount: 8, phase: "starting", open: false, reason: "recommended" })
    expect(generationsToRun(state)).toEqual([{ generation: 0, shardCount: 4 }, { generation: 1, shardCount: 8 }])
    expect(publishes(state, 0)).toBe(true)
    expect(publishes(state, 1)).toBe(false)
  })

  it("refuses a count that is not higher, and a second resharding while one is under way", () => {
    expect(begin(initialSharding(4), 4, "operator")._tag).toBe("Refused")
    expect(begin(initialSharding(4), 2, "recommended")._tag).toBe("Refused")
    expect(begin(started(), 16, "recommended")._tag).toBe("Refused")
  })

  it("after 4011 the next generation publishes at once, also when it was already starting", () => {
    expect(publishes(started("required"), 1)).toBe(true)
    const opened = begin(started(), 16, "required")
    expect(opened._tag === "Begin" && opened.state.next).toMatchObject({ generation: 1, shardCount: 8, open: true })
    expect(requiredCount(4, 8)).toBe(8)
    expect(requiredCount(4, 4)).toBe(8)
    expect(requiredCount(4, undefined)).toBe(8)
  })

  it("switches once every next shard was READY, and finishes only when every alive member acknowledged", () => {
    const state = started()
    expect(advance(state, { readyShards: 7, members: ["a", "b"], acked: new Set() })).toBeUndefined()
    const switching = advance(state, { readyShards: 8, members: ["a", "b"], acked: new Set() })!
    expect(switching.next?.phase).toBe("switching")
    expect(publishes(switching, 1)).toBe(true)
    expect(publishes(switching, 0)).toBe(true)
    expect(advance(switching, { readyShards: 8, members: ["a", "b"], acked: new Set(["a"]) })).toBeUndefined()
    // No answer from Redis about members: nobody is known to have acknowledged.
    expect(advance(switching, { readyShards: 8, members: [], acked: new Set(["a", "b"]) })).toBeUndefined()
    const done = advance(switching, { readyShards: 8, members: ["a", "b"], acked: new Set(["a", "b", "c"]) })!
    expect(done).toEqual({ generation: 1, shardCount: 8 })
    expect(generationsToRun(done)).toEqual([{ generation: 1, shardCount: 8 }])
    expect(publishes(done, 0)).toBe(false)
    expect(advance(done, { readyShards: 8, members: ["a"], acked: new Set(["a"]) })).toBeUndefined()
  })

  it("round-trips through its stored form and rejects what it did not write", () => {
    for (const state of [initialSharding(4), started(), started("required")]) expect(decodeSharding(encodeSharding(state))).toEqual(state)
    expect(decodeSharding(null)).toBeUndefined()
    expect(decodeSharding("not json")).toBeUndefined()
    expect(decodeSharding(`{"generation":0,"shardCount":0}`)).toBeUndefined()
    expect(decodeSharding(`{"generation":1,"shardCount":4,"next":{"generation":3,"shardCount":8,"phase":"starting"}}`)).toBeUndefined()
  })

  it("keeps generation 0 on the configured prefix (data of earlier versions) and gives later ones their own", () => {
    expect(generationPrefix("gateway:", 0)).toBe("gateway:")
    expect(generationPrefix("gateway:", 2)).toBe("gateway:g2:")
  })
})
