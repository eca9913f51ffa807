// Which shards this process runs, out of how many, and how fast they may identify: config where
// it says, Discord's /gateway/bot answer for the rest.
import { Context, Effect, Layer } from "effect"
import { AppConfig } from "../Config/AppConfig.ts"
import { DiscordRest, type GatewayBot } from "../Rest/DiscordRest.ts"

export interface ShardPlanShape {
  /** Gateway url without query (from /gateway/bot). */
  readonly url: string
  readonly shardCount: number
  readonly shardIds: ReadonlyArray<number>
  readonly maxConcurrency: number
  readonly sessionStartLimit: GatewayBot["session_start_limit"]
  /** The generation these shards belong to (resharding, Resharding.ts); 0 when absent. */
  readonly generation?: number | undefined
}

export class ShardPlan extends Context.Service<ShardPlan, ShardPlanShape>()("gateway/ShardPlan") {
  static readonly layer = Layer.effect(
    ShardPlan,
    Effect.gen(function*() {
      const config = yield* AppConfig
      const rest = yield* DiscordRest
      const bot = yield* rest.gatewayBot
      const shardCount = config.shards.count ?? bot.shards
      const shardIds = config.shards.ids ?? Array.from({ length: shardCount }, (_, i) => i)
      const limit = bot.session_start_limit
      yield* Effect.logInfo(
        `running ${shardIds.length} of ${shardCount} shard(s); identify concurrency ${limit.max_concurrency}; ` +
          `${limit.remaining}/${limit.total} session starts left`
      )
      return ShardPlan.of({
        url: bot.url,
        shardCount,
        shardIds,
        maxConcurrency: Math.max(1, limit.max_concurrency),
        sessionStartLimit: limit
      })
    })
  )
}
