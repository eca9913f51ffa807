import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Random } from "effect"
import { TestClock } from "effect/testing"
import { heartbeatLoop } from "../../src/Shard/Heartbeat.ts"

const harness = (intervalMs: number) =>
  Effect.gen(function*() {
    const state = { beats: [] as Array<number>, acked: true, frames: 0, now: 0 }
    const fiber = yield* heartbeatLoop(intervalMs, {
      beat: Effect.sync(() => {
        state.beats.push(state.now)
        state.acked = false
        state.frames = 0
      }),
      acked: () => state.acked,
      framesSinceBeat: () => state.frames
    }).pipe(Random.withSeed(7), Effect.forkChild)
    const advance = (ms: number) =>
      Effect.gen(function*() {
        state.now += ms
        yield* TestClock.adjust(ms)
      })
    return { state, fiber, advance }
  })

describe("heartbeatLoop", () => {
  it.effect("beats first after a jittered fraction of the interval, then every interval", () =>
    Effect.gen(function*() {
      const { state, advance } = yield* harness(1000)
      yield* advance(999)
      assert.strictEqual(state.beats.length, 1)
      const first = state.beats[0]!
      for (let i = 0; i < 3; i++) {
        state.acked = true
        yield* advance(1000)
      }
      assert.strictEqual(state.beats.length, 4)
      assert.isTrue(first < 1000)
    }))

  it.effect("a late ACK on a busy connection is not a zombie", () =>
    Effect.gen(function*() {
      const { state, fiber, advance } = yield* harness(1000)
      yield* advance(1000)
      state.frames = 5 // dispatches arrived, the ACK did not
      yield* advance(1000)
      assert.strictEqual(state.beats.length, 2)
      assert.isUndefined(fiber.pollUnsafe())
    }))

  it.effect("no ACK and nothing else received before the next beat is a zombie", () =>
    Effect.gen(function*() {
      const { state, fiber, advance } = yield* harness(1000)
      yield* advance(1000)
      assert.strictEqual(state.beats.length, 1)
      yield* advance(1000)
      const exit = yield* Fiber.await(fiber)
      assert.isTrue(Exit.isFailure(exit))
      assert.strictEqual(state.beats.length, 1)
    }))
})
