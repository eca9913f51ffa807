// Runs every shard this process owns as a supervised fiber. A shard's connection problems are
// its own (it reconnects); only a fatal close code, or losing a shard's lease to another process,
// ends the whole gateway.
import { Context, Effect, Layer } from "effect"
import { ShardStore } from "../ShardStore/ShardStore.ts"
import { SessionBudget } from "./SessionBudget.ts"
import { type ShardClaimed, ShardLeases } from "./ShardLeases.ts"
import { ShardPlan } from "./ShardPlan.ts"
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

    // Shards without a stored session will identify; make sure the daily budget covers them all
    // before spending any, so a restart loop cannot burn the last session starts.
    const needIdentify = Effect.map(
      Effect.forEach(plan.shardIds, (id) => Effect.map(store.load(id).pipe(Effect.orElseSucceed(() => undefined)), (r) => r === undefined)),
      (missing) => missing.filter(Boolean).length
    )

    const shards = Effect.forEach(plan.shardIds, (id) => session.run(id), { concurrency: "unbounded", discard: true })
    return Sharder.of({
      run: Effect.gen(function*() {
        yield* budget.ensure(yield* needIdentify)
        // Each fiber retries its own connection; the first failure here is fatal and interrupts the rest.
        return yield* Effect.raceFirst(Effect.andThen(shards, Effect.never), leases.lost)
      })
    })
  })
)
