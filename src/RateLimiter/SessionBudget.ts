// Discord's daily session-start budget (DISCORD_GATEWAY.md §9): every IDENTIFY spends one, resumes
// spend none, and running out resets the bot token. So the gateway never spends the last ones
// blindly: when fewer are left than it needs, it says so and waits for Discord's reset.
import { Clock, Context, Duration, Effect, Layer, Semaphore } from "effect"
import { DiscordRest } from "../Rest/DiscordRest.ts"
import { GatewayStats } from "../Metrics/GatewayStats.ts"
import { ShardPlan } from "../Cluster/ShardPlan.ts"

export class SessionBudget extends Context.Service<SessionBudget, {
  /** Before a start-up that will identify `count` shards: waits while fewer starts are left. */
  readonly ensure: (count: number) => Effect.Effect<void>
  /** Spends one start for an IDENTIFY, waiting for Discord's reset when none is left. */
  readonly spend: Effect.Effect<void>
  readonly remaining: () => number
}>()("gateway/SessionBudget") {}

/** After a refresh of the budget failed, the next try comes this much later. */
export const REFRESH_RETRY_MS = 60_000

/** Below this share of the total, every identify logs a warning. */
const LOW_SHARE = 0.1

export const SessionBudgetLive = Layer.effect(
  SessionBudget,
  Effect.gen(function*() {
    const plan = yield* ShardPlan
    const rest = yield* DiscordRest
    let total = plan.sessionStartLimit.total
    let remaining = plan.sessionStartLimit.remaining
    let resetAt = (yield* Clock.currentTimeMillis) + plan.sessionStartLimit.reset_after
    // One reservation at a time, so concurrent shards see each other's spending.
    const lock = yield* Semaphore.make(1)

    // A refused refresh (a 4xx: the token was revoked meanwhile, say) must not take the shards
    // down: keep the last figures, say why, and ask again a minute later.
    const refresh = Effect.gen(function*() {
      const answer = yield* Effect.result(rest.gatewayBot)
      const now = yield* Clock.currentTimeMillis
      if (answer._tag === "Failure") {
        resetAt = now + REFRESH_RETRY_MS
        return yield* Effect.logWarning(
          `session start budget: could not read it again from /gateway/bot (${answer.failure.message}); trying again in ${REFRESH_RETRY_MS / 1000}s`
        )
      }
      const bot = answer.success
      total = bot.session_start_limit.total
      remaining = bot.session_start_limit.remaining
      resetAt = now + bot.session_start_limit.reset_after
    })

    const waitFor = (wanted: number) =>
      Effect.gen(function*() {
        // A need larger than the whole budget can only be met a budget at a time.
        const count = Math.min(wanted, Math.max(1, total))
        while (remaining < count) {
          const now = yield* Clock.currentTimeMillis
          const waitMs = Math.max(1_000, resetAt - now)
          yield* Effect.logWarning(
            `session start budget: ${remaining} of ${total} left, ${count} needed; ` +
              `waiting ${Math.ceil(waitMs / 1000)}s for Discord to reset it rather than spend the last ones`
          )
          yield* Effect.sleep(Duration.millis(waitMs))
          yield* refresh
        }
      })

    const spend = lock.withPermits(1)(Effect.gen(function*() {
        yield* waitFor(1)
        remaining -= 1
        if (remaining < total * LOW_SHARE) {
          yield* Effect.logWarning(`session start budget is low: ${remaining} of ${total} left until Discord resets it`)
        }
      }))

    const stats = yield* GatewayStats
    stats.setSessionBudget(() => remaining)

    return SessionBudget.of({
      ensure: (count) => lock.withPermits(1)(waitFor(count)),
      spend,
      remaining: () => remaining
    })
  })
)
