// The daily session budget waits for Discord's reset instead of spending the last starts, and a
// refresh that /gateway/bot refuses (a 4xx) neither crashes it nor lets an identify through.
import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, Layer } from "effect"
import { TestClock } from "effect/testing"
import { ShardPlan } from "../../src/Cluster/ShardPlan.ts"
import { REFRESH_RETRY_MS, SessionBudget, SessionBudgetLive } from "../../src/RateLimiter/SessionBudget.ts"
import { DiscordRequestRefused, DiscordRest, type GatewayBot } from "../../src/Rest/DiscordRest.ts"

const limit = (remaining: number) => ({ total: 1000, remaining, reset_after: 10_000, max_concurrency: 1 })

const budgetWith = (answers: Array<Effect.Effect<GatewayBot, DiscordRequestRefused>>) => {
  let calls = 0
  const rest = Layer.succeed(DiscordRest, DiscordRest.of({
    gatewayBot: Effect.suspend(() => answers[Math.min(calls++, answers.length - 1)]!)
  }))
  const plan = Layer.succeed(ShardPlan, { url: "ws://x", shardCount: 1, shardIds: [0], maxConcurrency: 1, sessionStartLimit: limit(0) })
  return { layer: SessionBudgetLive.pipe(Layer.provide(Layer.mergeAll(rest, plan))), calls: () => calls }
}

describe("SessionBudget", () => {
  it.effect("a refused refresh is logged and retried a minute later; the identify waits for a real budget", () =>
    Effect.gen(function*() {
      const refused = Effect.fail(new DiscordRequestRefused({ url: "/api/v10/gateway/bot", answer: { status: 403, code: 50001, message: "Missing Access" } }))
      const { layer, calls } = budgetWith([refused, Effect.succeed({ url: "ws://x", shards: 1, session_start_limit: limit(5) })])
      yield* Effect.gen(function*() {
        const budget = yield* SessionBudget
        const spending = yield* Effect.forkChild(budget.spend)
        // The first reset comes after 10 s: the refresh is refused, nothing is spent.
        yield* TestClock.adjust("11 seconds")
        expect(calls()).toBe(1)
        expect(spending.pollUnsafe()).toBeUndefined()
        expect(budget.remaining()).toBe(0)
        // A minute later it asks again, gets 5, and spends one.
        yield* TestClock.adjust(REFRESH_RETRY_MS)
        yield* Fiber.join(spending)
        expect(calls()).toBe(2)
        expect(budget.remaining()).toBe(4)
      }).pipe(Effect.provide(layer))
    }))
})
