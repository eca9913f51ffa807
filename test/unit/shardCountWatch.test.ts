import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, Layer, Logger } from "effect"
import { TestClock } from "effect/testing"
import { ShardPlan } from "../../src/Cluster/ShardPlan.ts"
import { SHARD_COUNT_CHECK_EVERY, watchShardCount } from "../../src/Cluster/ShardCountWatch.ts"
import { DiscordRest, type GatewayBot } from "../../src/Rest/DiscordRest.ts"

const bot = (shards: number): GatewayBot => ({
  url: "wss://gateway.example",
  shards,
  session_start_limit: { total: 1000, remaining: 1000, reset_after: 0, max_concurrency: 1 }
})

describe("the hourly shard-count check", () => {
  it.effect("warns once per new recommendation above the running count, and not before the hour", () =>
    Effect.gen(function*() {
      let answer = 4
      const logs: Array<string> = []
      const layer = Layer.mergeAll(
        Layer.succeed(DiscordRest, DiscordRest.of({ gatewayBot: Effect.sync(() => bot(answer)) })),
        Layer.succeed(ShardPlan, ShardPlan.of({ url: "wss://gateway.example", shardCount: 4, shardIds: [0, 1, 2, 3], maxConcurrency: 1, sessionStartLimit: bot(4).session_start_limit })),
        Logger.layer([Logger.make((entry) => void logs.push(String(entry.message)))])
      )
      const fiber = yield* Effect.forkChild(watchShardCount.pipe(Effect.provide(layer)))
      yield* TestClock.adjust(SHARD_COUNT_CHECK_EVERY)
      expect(logs.filter((l) => l.includes("recommends"))).toEqual([])
      answer = 8
      yield* TestClock.adjust(SHARD_COUNT_CHECK_EVERY)
      yield* TestClock.adjust(SHARD_COUNT_CHECK_EVERY)
      const warnings = logs.filter((l) => l.includes("recommends"))
      expect(warnings).toHaveLength(1)
      expect(warnings[0]).toContain("recommends 8 shards; this bot runs 4")
      expect(warnings[0]).toContain("DISCORD_SHARD_COUNT=8")
      yield* Fiber.interrupt(fiber)
    }))
})
