// Runs every shard this process owns as a supervised fiber. A shard's connection problems are
// its own (it reconnects), and so are its bugs (it is restarted); only a fatal close code, or
// losing a shard's lease to another process, ends the whole gateway.
import { Cause, Clock, Context, Duration, Effect, Exit, Layer, Random } from "effect"
import { GatewayStats } from "../Observability/GatewayStats.ts"
import { backoffDelayMs, Backoffs } from "../Resilience/Backoff.ts"
import { ShardStore } from "../ShardStore/ShardStore.ts"
import { SessionBudget } from "./SessionBudget.ts"
import { type ShardClaimed, ShardLeases } from "../Cluster/ShardLeases.ts"
import { ShardPlan } from "./ShardPlan.ts"
import { HEALTHY_AFTER_MS } from "./Reconnect.ts"
import { type FatalGatewayError, ShardSession } from "./ShardSession.ts"

export class Sharder extends Context.Service<Sharder, {
  /** Runs until interrupted, or fails with the first fatal error. */
  readonly run: Effect.Effect<never, FatalGatewayError | ShardClaimed>
}>()("gateway/Sharder") {}

export const SharderLive = Layer.effect(
  Sharder,
  Effect.gen(function*() {
    const plan = yield* ShardPlan
    const session = yield* ShardSession
    const leases = yield* ShardLeases
    const budget = yield* SessionBudget
    const store = yield* ShardStore
    const stats = yield* GatewayStats

    // Shards without a stored session will identify; make sure the daily budget covers them all
    // before spending any, so a restart loop cannot burn the last session starts.
    const needIdentify = Effect.map(
      Effect.forEach(plan.shardIds, (id) => Effect.map(store.load(id).pipe(Effect.orElseSucceed(() => undefined)), (r) => r === undefined)),
      (missing) => missing.filter(Boolean).length
    )

    // A defect (a bug) in one shard's fiber restarts that shard alone, with backoff; a typed
    // failure (a fatal close code) still ends the gateway.
    const supervised = (shard: number) =>
      Effect.gen(function*() {
        let crashes = 0
        for (;;) {
          const startedAt = yield* Clock.currentTimeMillis
          const exit = yield* Effect.exit(session.run(shard))
          if (Exit.isSuccess(exit) || Cause.hasFails(exit.cause) || Cause.hasInterruptsOnly(exit.cause)) return yield* exit
          const lasted = (yield* Clock.currentTimeMillis) - startedAt
          crashes = lasted >= HEALTHY_AFTER_MS ? 1 : crashes + 1
          const waitMs = backoffDelayMs(Backoffs.reconnect, crashes, yield* Random.next)
          yield* Effect.logError(`shard ${shard} crashed; restarting it in ${(waitMs / 1000).toFixed(1)}s`, exit.cause)
          stats.shardRestarted(shard)
          yield* Effect.sleep(Duration.millis(waitMs))
        }
      })
    const shards = Effect.forEach(plan.shardIds, supervised, { concurrency: "unbounded", discard: true })
    return Sharder.of({
      run: Effect.gen(function*() {
        yield* budget.ensure(yield* needIdentify)
        // Each fiber retries its own connection; the first failure here is fatal and interrupts the rest.
        return yield* Effect.raceFirst(Effect.andThen(shards, Effect.never), leases.lost)
      })
    })
  })
)
