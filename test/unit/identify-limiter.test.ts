// The identify limiter's decisions on Effect's TestClock: how soon N shards with max_concurrency M
// may all identify, that no two identifies of a bucket are ever closer than the hold allows (one
// process or several sharing a store), and that a late event loop, a slow store or a store outage
// cost only what they last.
import { assert, describe, it } from "@effect/vitest"
import { Clock, Duration, Effect, Fiber } from "effect"
import { TestClock } from "effect/testing"
import { Redis } from "ioredis"
import { IDENTIFY_HOLD_MS, makeIdentifyGate, MAX_CLAIM_LAG_MS } from "../../src/RateLimiter/IdentifyLimiter.ts"
import type { IdentifyGate } from "../../src/RateLimiter/IdentifyLimiter.ts"
import { IdentifyStoreError, makeMemoryIdentifyStore, makeRedisIdentifyStore } from "../../src/RateLimiter/IdentifyStore.ts"
import type { IdentifyStoreShape } from "../../src/RateLimiter/IdentifyStore.ts"
import { REDIS_URL, redisAvailable } from "../support/services.ts"

interface Sent {
  readonly shard: number
  readonly bucket: number
  readonly at: number
}

/** Starts every shard's acquire at once (as the Sharder does), each on gate `gateOf(shard)`. */
const startAll = (shards: number, maxConcurrency: number, gateOf: (shard: number) => IdentifyGate) =>
  Effect.gen(function*() {
    const sent: Array<Sent> = []
    const fibers = []
    for (let shard = 0; shard < shards; shard++) {
      const bucket = shard % maxConcurrency
      fibers.push(yield* Effect.forkChild(Effect.gen(function*() {
        yield* gateOf(shard).acquire(`bot:${maxConcurrency}:${bucket}`)
        sent.push({ shard, bucket, at: yield* Clock.currentTimeMillis })
      })))
    }
    return { sent, join: Fiber.joinAll(fibers) }
  })

/** The smallest gap between two identifies of one bucket. */
const closestGap = (sent: ReadonlyArray<Sent>): number => {
  let min = Number.POSITIVE_INFINITY
  const byBucket = new Map<number, Array<number>>()
  for (const s of sent) byBucket.set(s.bucket, [...(byBucket.get(s.bucket) ?? []), s.at])
  for (const times of byBucket.values()) {
    times.sort((a, b) => a - b)
    for (let i = 1; i < times.length; i++) min = Math.min(min, times[i]! - times[i - 1]!)
  }
  return min
}

const lastAt = (sent: ReadonlyArray<Sent>): number => Math.max(...sent.map((s) => s.at))

describe("identify limiter", () => {
  for (const [N, M] of [[100, 100], [64, 16], [16, 1]] as const) {
    it.effect(`${N} shards, max_concurrency ${M}: all identify by (ceil(N/M) - 1) holds, a hold apart per bucket`, () =>
      Effect.gen(function*() {
        const gate = makeIdentifyGate(makeMemoryIdentifyStore())
        const { sent, join } = yield* startAll(N, M, () => gate)
        yield* TestClock.adjust(Math.ceil(N / M) * IDENTIFY_HOLD_MS)
        yield* join
        assert.strictEqual(sent.length, N)
        const waves = Math.ceil(N / M) - 1
        assert.strictEqual(lastAt(sent), waves * IDENTIFY_HOLD_MS)
        // Discord's own minimum plus 5 % (the target, less the 1 s it leaves for start-up).
        assert.isAtMost(lastAt(sent), waves * 5_000 * 1.05)
        if (waves > 0) assert.strictEqual(closestGap(sent), IDENTIFY_HOLD_MS)
        // Buckets start in shard order: the first wave is shards 0..M-1.
        assert.deepStrictEqual(sent.filter((s) => s.at === 0).map((s) => s.shard).sort((a, b) => a - b), Array.from({ length: Math.min(N, M) }, (_, i) => i))
      }))
  }

  it.effect("an event loop that wakes every waiter 700 ms late costs 700 ms per wave, not a window", () =>
    Effect.gen(function*() {
      const LATE = 700
      const gate = makeIdentifyGate(makeMemoryIdentifyStore(), { sleep: (ms) => Effect.sleep(Duration.millis(ms + LATE)) })
      const { sent, join } = yield* startAll(64, 16, () => gate)
      yield* TestClock.adjust(60_000)
      yield* join
      assert.strictEqual(lastAt(sent), 3 * (IDENTIFY_HOLD_MS + LATE))
      assert.isAtLeast(closestGap(sent), IDENTIFY_HOLD_MS)
    }))

  it.effect("two processes sharing one store never put two identifies of a bucket within a hold", () =>
    Effect.gen(function*() {
      const store = makeMemoryIdentifyStore()
      const a = makeIdentifyGate(store)
      const b = makeIdentifyGate(store)
      // Process A runs shards 0-15, B 16-31 (as in the scale e2e test); 4 buckets.
      const { sent, join } = yield* startAll(32, 4, (shard) => (shard < 16 ? a : b))
      yield* TestClock.adjust(60_000)
      yield* join
      assert.strictEqual(sent.length, 32)
      assert.strictEqual(closestGap(sent), IDENTIFY_HOLD_MS)
      assert.strictEqual(lastAt(sent), 7 * IDENTIFY_HOLD_MS)
    }))

  it.effect("a claim answered too late is renewed before sending, so the hold is fresh when the identify goes", () =>
    Effect.gen(function*() {
      const inner = makeMemoryIdentifyStore()
      const claims: Array<{ holder: string; at: number }> = []
      let slowAnswers = 3
      // The store takes the hold when asked, but its answer reaches the caller 400 ms later
      // for the first three claims (a Redis round trip through a saturated event loop).
      const slow: IdentifyStoreShape = {
        claim: (key, holder, holdMs) =>
          Effect.gen(function*() {
            const wait = yield* inner.claim(key, holder, holdMs)
            if (wait === 0) claims.push({ holder, at: yield* Clock.currentTimeMillis })
            if (slowAnswers-- > 0) yield* Effect.sleep(Duration.millis(400))
            return wait
          })
      }
      const a = makeIdentifyGate(slow)
      const b = makeIdentifyGate(slow)
      const { sent, join } = yield* startAll(8, 1, (shard) => (shard % 2 === 0 ? a : b))
      yield* TestClock.adjust(120_000)
      yield* join
      assert.strictEqual(sent.length, 8)
      // Each identify went out within MAX_CLAIM_LAG_MS of a hold taken for it...
      for (const s of sent) {
        const fresh = claims.some((c) => c.at <= s.at && s.at - c.at <= MAX_CLAIM_LAG_MS)
        assert.isTrue(fresh, `identify at ${s.at} had no fresh hold (claims at ${claims.map((c) => c.at).join(", ")})`)
      }
      // ...so consecutive ones stay a hold apart less at most that lag.
      assert.isAtLeast(closestGap(sent), IDENTIFY_HOLD_MS - MAX_CLAIM_LAG_MS)
      // The renewals cost round trips, not windows.
      assert.isAtMost(lastAt(sent), 7 * IDENTIFY_HOLD_MS + 3 * 400)
    }))

  it.effect("while the store is down, each identify waits a whole hold and this process still paces its own", () =>
    Effect.gen(function*() {
      const inner = makeMemoryIdentifyStore()
      let down = true
      const flaky: IdentifyStoreShape = {
        claim: (key, holder, holdMs) => (down ? Effect.fail(new IdentifyStoreError({ reason: "Redis: connection refused" })) : inner.claim(key, holder, holdMs))
      }
      const gate = makeIdentifyGate(flaky)
      const { sent, join } = yield* startAll(6, 1, () => gate)
      yield* TestClock.adjust(3 * IDENTIFY_HOLD_MS + 10)
      // Two went out during the outage, each a whole hold after the store failed (another process
      // may have identified just before) and a hold after our own last one; then the store is back.
      assert.deepStrictEqual(sent.map((s) => s.at), [IDENTIFY_HOLD_MS, 3 * IDENTIFY_HOLD_MS])
      down = false
      yield* TestClock.adjust(60_000)
      yield* join
      assert.strictEqual(sent.length, 6)
      // The store had no record of the outage's identifies; the process's own memory kept the pace.
      assert.strictEqual(closestGap(sent), IDENTIFY_HOLD_MS)
    }))
})

describe.skipIf(!redisAvailable)("identify store in Redis", () => {
  it("hands a bucket's hold to one holder at a time, lets that holder renew it, and frees it after the hold", async () => {
    const redis = new Redis(REDIS_URL)
    const prefix = `test:identify:${Math.random().toString(36).slice(2)}:`
    const store = makeRedisIdentifyStore(redis, prefix)
    const claim = (holder: string, holdMs = 400) => Effect.runPromise(store.claim("bucket-0", holder, holdMs))
    try {
      assert.strictEqual(await claim("a"), 0)
      const wait = await claim("b")
      assert.isAbove(wait, 0)
      assert.isAtMost(wait, 400)
      // Renewing by the holder succeeds and restarts its hold.
      assert.strictEqual(await claim("a", 60_000), 0)
      assert.isAbove(await claim("b"), 400)
      // A short hold lapses by itself.
      await redis.del(`${prefix}bucket-0`)
      assert.strictEqual(await claim("d", 50), 0)
      await new Promise((resolve) => setTimeout(resolve, 120))
      assert.strictEqual(await claim("e"), 0)
    } finally {
      await redis.del(`${prefix}bucket-0`)
      await redis.quit()
    }
  })
})
