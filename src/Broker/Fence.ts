// Fencing: a shard's lease holder raises the fence to its lease epoch before it runs the shard, and
// a broker that can check it refuses publishes carrying an older epoch. A process paused past its
// lease (GC, SIGSTOP, a frozen VM) then cannot publish for a shard that has moved on.
import { Context, Effect, Layer } from "effect"

export class PublishFence extends Context.Service<PublishFence, {
  /** From now on, publishes for `shard` with an epoch below `epoch` are refused. */
  readonly raise: (shard: number, epoch: number) => Effect.Effect<void>
}>()("gateway/PublishFence") {}

/** Brokers with nothing to fence on server side (the local lease check still applies). */
export const NoPublishFence = Layer.succeed(PublishFence, PublishFence.of({ raise: () => Effect.void }))
