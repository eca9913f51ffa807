import { assert, describe, it } from "@effect/vitest"
import { Clock, Effect, Random } from "effect"
import { TestClock } from "effect/testing"
import { type Ending, HEALTHY_AFTER_MS, reconnectForever } from "../../src/Shard/Reconnect.ts"

/** Drives the loop with scripted connections; records when each one started. */
const harness = (script: Array<{ lastsMs: number; ending: Ending }>) =>
  Effect.gen(function*() {
    const starts: Array<number> = []
    let i = 0
    const connect = Effect.gen(function*() {
      starts.push(yield* Clock.currentTimeMillis)
      const step = script[Math.min(i++, script.length - 1)]!
      if (step.lastsMs > 0) yield* Effect.sleep(step.lastsMs)
      return step.ending
    })
    yield* reconnectForever(connect, () => Effect.succeed("resuming")).pipe(Random.withSeed(3), Effect.forkChild)
    return starts
  })

const dropped: Ending = { next: "resume", reason: "dropped" }

describe("reconnectForever", () => {
  it.effect("backs off exponentially with jitter while connections keep failing, capped at 60 s", () =>
    Effect.gen(function*() {
      const starts = yield* harness([{ lastsMs: 0, ending: dropped }])
      yield* TestClock.adjust(10 * 60_000)
      const gaps = starts.slice(1).map((t, i) => t - starts[i]!)
      // Attempt n waits within [ceiling/2, ceiling], ceiling = min(60 s, 1 s * 2^(n-1)).
      for (const [n, gap] of gaps.entries()) {
        const ceiling = Math.min(60_000, 1_000 * 2 ** n)
        assert.isAtLeast(gap, ceiling / 2)
        assert.isAtMost(gap, ceiling)
      }
      assert.isAtLeast(gaps.length, 12)
      assert.isAtLeast(gaps.at(-1)!, 30_000)
    }))

  it.effect("reconnects at once after a healthy session, and the backoff starts over", () =>
    Effect.gen(function*() {
      const starts = yield* harness([
        { lastsMs: 0, ending: dropped },
        { lastsMs: 0, ending: dropped },
        { lastsMs: 0, ending: dropped },
        { lastsMs: HEALTHY_AFTER_MS, ending: { next: "resume", reason: "op 7" } },
        { lastsMs: 0, ending: dropped }
      ])
      yield* TestClock.adjust(60_000)
      // 0: fails, waits ~1 s; 1: ~2 s; 2: ~4 s; 3: healthy for 10 s then op 7 -> at once; 4: fails -> ~1 s again.
      const healthyEnd = starts[3]! + HEALTHY_AFTER_MS
      assert.strictEqual(starts[4], healthyEnd)
      const gapAfter = starts[5]! - starts[4]!
      assert.isAtLeast(gapAfter, 500)
      assert.isAtMost(gapAfter, 1_000)
    }))

  it.effect("waits exactly what the ending asks for (op 9: 1-5 s before identifying)", () =>
    Effect.gen(function*() {
      const starts = yield* harness([
        { lastsMs: 0, ending: { next: "identify", reason: "op 9", waitMs: 3_210 } },
        { lastsMs: 60_000, ending: dropped }
      ])
      yield* TestClock.adjust(5_000)
      assert.deepStrictEqual(starts.slice(0, 2), [0, 3_210])
    }))
})
