// Runs every shard this process owns as a supervised fiber. A shard's connection problems are
// its own (it reconnects); only a fatal close code ends the whole gateway.
import { Context, Effect, Layer } from "effect"
import { ShardPlan } from "./ShardPlan.ts"
import { type FatalGatewayError, ShardSession } from "./ShardSession.ts"

export class Sharder extends Context.Service<Sharder, {
  /** Runs until interrupted, or fails with the first fatal close. */
  readonly run: Effect.Effect<never, FatalGatewayError>
}>()("gateway/Sharder") {}

export const SharderLive = Layer.effect(
  Sharder,
  Effect.gen(function*() {
    const plan = yield* ShardPlan
    const session = yield* ShardSession
    return Sharder.of({
      // Each fiber retries its own connection; the first failure here is fatal and interrupts the rest.
      run: Effect.forEach(plan.shardIds, (id) => session.run(id), { concurrency: "unbounded", discard: true }).pipe(
        Effect.andThen(Effect.never)
      )
    })
  })
)
