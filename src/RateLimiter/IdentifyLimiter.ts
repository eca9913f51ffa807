// Discord's identify rule (DISCORD_GATEWAY.md §9): one IDENTIFY per 5 s per bucket
// shard_id % max_concurrency, buckets in parallel. Built on effect/persistence's RateLimiter so
// the same code shares one budget across processes when its store is Redis.
import { Clock, Context, Duration, Effect, Layer, Redacted } from "effect"
import * as RateLimiter from "effect/persistence/RateLimiter"
import { AppConfig } from "../Config/AppConfig.ts"
import { PersistenceRedisLive } from "../Redis/PersistenceRedis.ts"
import { SessionBudget } from "../Shard/SessionBudget.ts"
import { ShardPlan } from "../Shard/ShardPlan.ts"

/** Discord's window plus a margin for network jitter and a busy event loop. */
export const IDENTIFY_SPACING_MS = 5_000 + 400
/** Woken later than this after the reserved slot, the slot is given up: sending now could land
 * closer than 5 s to the bucket's next identify (reserved 5.4 s after ours). */
const LATE_MS = 200

export class IdentifyLimiter extends Context.Service<IdentifyLimiter, {
  /** Waits for this shard's turn to send IDENTIFY (call it right before sending). */
  readonly acquire: (shard: number) => Effect.Effect<void>
}>()("gateway/IdentifyLimiter") {}

/** The application id is the first part of a bot token; it keys the budget without exposing the token. */
export const botIdOf = (token: string): string => {
  const head = token.split(".")[0] ?? ""
  try {
    const id = Buffer.from(head, "base64").toString("utf8")
    if (/^\d+$/.test(id)) return id
  } catch {
    // not a Discord-shaped token (tests): fall through
  }
  // Not a snowflake: a stable, non-reversible stand-in.
  let h = 0
  for (let i = 0; i < token.length; i++) h = (Math.imul(h, 31) + token.charCodeAt(i)) | 0
  return `h${(h >>> 0).toString(16)}`
}

export const IdentifyLimiterLive = Layer.effect(
  IdentifyLimiter,
  Effect.gen(function*() {
    const limiter = yield* RateLimiter.RateLimiter
    const plan = yield* ShardPlan
    const config = yield* AppConfig
    const budget = yield* SessionBudget
    const botId = botIdOf(Redacted.value(config.token))
    return IdentifyLimiter.of({
      acquire: (shard) =>
        Effect.gen(function*() {
          // The daily budget first (it may mean hours); then the 5 s bucket, right before sending.
          yield* budget.spend
          const bucket = shard % plan.maxConcurrency
          const key = `identify:${botId}:${plan.maxConcurrency}:${bucket}`
          for (;;) {
            const reservedAt = yield* Clock.currentTimeMillis
            const result = yield* limiter.consume({
              key,
              algorithm: "fixed-window",
              window: Duration.millis(IDENTIFY_SPACING_MS),
              limit: 1,
              onExceeded: "delay"
            }).pipe(
              // A store outage must not let identifies through unpaced: wait a whole window instead.
              Effect.catch((error) =>
                Effect.as(Effect.logWarning(`identify limiter unavailable (${error.message}); waiting a full window`), {
                  delay: Duration.millis(IDENTIFY_SPACING_MS)
                })
              )
            )
            const delayMs = Duration.toMillis(result.delay)
            if (delayMs > 0) {
              yield* Effect.logDebug(`waiting ${delayMs} ms for identify bucket ${bucket}`)
              yield* Effect.sleep(result.delay)
            }
            const late = (yield* Clock.currentTimeMillis) - (reservedAt + delayMs)
            if (late <= LATE_MS) return
            yield* Effect.logDebug(`woke ${late} ms after the identify slot of bucket ${bucket}; taking a new one`)
          }
        })
    })
  })
)

export const MemoryRateLimiterLive = RateLimiter.layer.pipe(Layer.provide(RateLimiter.layerStoreMemory))

/** One budget for every process of the bot: the limiter's counters live in Redis. */
export const RedisRateLimiterLive = RateLimiter.layer.pipe(
  Layer.provide(RateLimiter.layerStoreRedis({ prefix: "spectacles:ratelimit:" })),
  Layer.provide(PersistenceRedisLive)
)
