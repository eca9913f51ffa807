// Runs every shard this process owns as a supervised fiber. A shard's connection problems are
// its own (it reconnects), and so are its bugs (it is restarted); only a fatal close code, or
// losing a shard's lease to another process, ends the whole gateway.
import { Context, Effect, Layer } from "effect"
import { GatewayStats } from "../Metrics/GatewayStats.ts"
import { Backoffs } from "../Resilience/Backoff.ts"
import { Readiness } from "../Resilience/Readiness.ts"
import { supervise, type WorkerBroken } from "../Resilience/Supervisor.ts"
import { ShardStore } from "../ShardStore/ShardStore.ts"
import { SessionBudget } from "../RateLimiter/SessionBudget.ts"
import { type ShardClaimed, ShardLeases } from "../Cluster/ShardLeases.ts"
import { ShardPlan } from "../Cluster/ShardPlan.ts"
import { type FatalGatewayError, ShardSession } from "./ShardSession.ts"

export class Sharder extends Context.Service<Sharder, {
  /** Runs until interrupted, or fails with the first fatal error. */
  readonly run: Effect.Effect<never, FatalGatewayError | ShardClaimed | WorkerBroken>
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
    const readiness = yield* Readiness

    // Shards without a stored session will identify; make sure the daily budget covers them all
    // before spending any, so a restart loop cannot burn the last session starts.
    const needIdentify = Effect.map(
      Effect.forEach(plan.shardIds, (id) => Effect.map(store.load(id).pipe(Effect.orElseSucceed(() => undefined)), (r) => r === undefined)),
      (missing) => missing.filter(Boolean).length
    )

    // A defect (a bug) in one shard's fiber restarts that shard alone, with backoff; a typed
    // failure (a fatal close code) still ends the gateway, and so does a shard that keeps dying.
    const supervised = (shard: number) =>
      supervise(session.run(shard), {
        name: `shard ${shard}`,
        backoff: Backoffs.reconnect,
        onRestart: () => Effect.sync(() => stats.shardRestarted(shard))
      }).pipe(Effect.provideService(Readiness, readiness))
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
