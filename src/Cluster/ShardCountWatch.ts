// Discord recommends more shards as a bot grows, and at some point requires them (close code 4011).
// The recommendation is read again every `shards.check_interval` (1 h by default): the gauge lets an
// alert fire, and a higher count either reshards an automatic cluster (`onHigher`, see
// src/Resharder.ts) or is logged with what to do, well before Discord refuses the current count.
import { Duration, Effect, Metric, Schedule } from "effect"
import { DiscordRest } from "../Rest/DiscordRest.ts"
import { ShardPlan } from "./ShardPlan.ts"

export const SHARD_COUNT_CHECK_EVERY = Duration.hours(1)
const CHECK_TIMEOUT = Duration.minutes(1)

const recommendedGauge = Metric.gauge("gateway_shards_recommended", {
  description: "Shard count Discord's /gateway/bot recommends, read every shards.check_interval (compare with gateway_shards_total)"
})
const running = Metric.gauge("gateway_shards_total", { description: "The bot's shard count this gateway runs with" })

/** Discord's recommended count now, or undefined when /gateway/bot did not answer in time. */
export const readRecommendation: Effect.Effect<number | undefined, never, DiscordRest> = Effect.gen(function*() {
  const rest = yield* DiscordRest
  const answer = yield* rest.gatewayBot.pipe(Effect.timeoutOption(CHECK_TIMEOUT), Effect.result)
  if (answer._tag === "Failure" || answer.success._tag === "None") return undefined
  const shards = answer.success.value.shards
  yield* Metric.update(recommendedGauge, shards)
  return shards
})

export interface ShardCountWatchOptions {
  /** The count the bot runs with now (it changes when the cluster reshards). */
  readonly current: () => number
  readonly every: Duration.Duration
  /** Told of a recommendation above the current count; without it, a warning says to restart. */
  readonly onHigher?: ((recommended: number) => Effect.Effect<void>) | undefined
}

/** Runs until interrupted; never fails (a failed check is retried at the next interval). */
export const watchShardCountWith = (options: ShardCountWatchOptions): Effect.Effect<never, never, DiscordRest> =>
  Effect.gen(function*() {
    let warnedAt = 0
    yield* Metric.update(recommendedGauge, options.current())
    const check = Effect.gen(function*() {
      yield* Metric.update(running, options.current())
      const shards = yield* readRecommendation
      if (shards === undefined) return yield* Effect.logDebug("could not read Discord's recommended shard count; trying again later")
      const current = options.current()
      if (shards <= current) return
      if (options.onHigher !== undefined) return yield* options.onHigher(shards)
      if (shards === warnedAt) return
      warnedAt = shards
      yield* Effect.logWarning(
        `Discord now recommends ${shards} shards; this bot runs ${current}. Restart every gateway process with ` +
          `DISCORD_SHARD_COUNT=${shards} (or [shards] count unset) before Discord requires it (close code 4011, sharding required)`
      )
    })
    yield* Metric.update(running, options.current())
    if (Duration.toMillis(options.every) <= 0) return yield* Effect.never
    return yield* Effect.sleep(options.every).pipe(
      Effect.andThen(Effect.repeat(check, Schedule.spaced(options.every))),
      Effect.andThen(Effect.never)
    )
  })

/** The hourly check of a fixed plan: warns only. */
export const watchShardCount: Effect.Effect<never, never, DiscordRest | ShardPlan> = Effect.gen(function*() {
  const plan = yield* ShardPlan
  return yield* watchShardCountWith({ current: () => plan.shardCount, every: SHARD_COUNT_CHECK_EVERY })
})
