// Discord recommends more shards as a bot grows, and at some point requires them (close code 4011).
// Every hour the recommendation is read again: the gauge lets an alert fire, and the log says what
// to do, well before Discord refuses the current count. (Changing the count of a running cluster
// without a restart, resharding, is not built yet: the operator restarts with the new count.)
import { Duration, Effect, Metric, Schedule } from "effect"
import { DiscordRest } from "../Rest/DiscordRest.ts"
import { ShardPlan } from "./ShardPlan.ts"

export const SHARD_COUNT_CHECK_EVERY = Duration.hours(1)
const CHECK_TIMEOUT = Duration.minutes(1)

const recommended = Metric.gauge("gateway_shards_recommended", {
  description: "Shard count Discord's /gateway/bot recommends, read hourly (compare with gateway_shards_total)"
})
const running = Metric.gauge("gateway_shards_total", { description: "The bot's shard count this gateway runs with" })

/** Runs until interrupted; never fails (a failed check is retried at the next hour). */
export const watchShardCount: Effect.Effect<never, never, DiscordRest | ShardPlan> = Effect.gen(function*() {
  const rest = yield* DiscordRest
  const plan = yield* ShardPlan
  let warnedAt = 0
  yield* Metric.update(recommended, plan.shardCount)
  yield* Metric.update(running, plan.shardCount)
  const check = Effect.gen(function*() {
    const answer = yield* rest.gatewayBot.pipe(Effect.timeoutOption(CHECK_TIMEOUT), Effect.result)
    if (answer._tag === "Failure" || answer.success._tag === "None") {
      return yield* Effect.logDebug("could not read Discord's recommended shard count; trying again in an hour")
    }
    const shards = answer.success.value.shards
    yield* Metric.update(recommended, shards)
    if (shards > plan.shardCount && shards !== warnedAt) {
      warnedAt = shards
      yield* Effect.logWarning(
        `Discord now recommends ${shards} shards; this bot runs ${plan.shardCount}. Restart every gateway process with ` +
          `DISCORD_SHARD_COUNT=${shards} (or [shards] count unset) before Discord requires it (close code 4011, sharding required)`
      )
    }
  })
  return yield* Effect.sleep(SHARD_COUNT_CHECK_EVERY).pipe(
    Effect.andThen(Effect.repeat(check, Schedule.spaced(SHARD_COUNT_CHECK_EVERY))),
    Effect.andThen(Effect.never)
  )
})
