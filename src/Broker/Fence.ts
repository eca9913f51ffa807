// Fencing: a shard's lease holder raises the fence to its lease epoch before it runs the shard, and
// a broker that can check it refuses publishes carrying an older epoch. A process paused past its
// lease (GC, SIGSTOP, a frozen VM) then cannot publish for a shard that has moved on.
import { Context, Data, Effect, Layer } from "effect"

/** The fence could not be raised (broker down or slow): publishes of the shard's previous holder may still land. */
export class PublishFenceError extends Data.TaggedError("PublishFenceError")<{
  readonly shard: number
  readonly epoch: number
  readonly reason: string
  readonly cause?: unknown
}> {
  override get message() {
    return `could not raise the publish fence of shard ${this.shard} to lease epoch ${this.epoch}: ${this.reason}; ` +
      `until it is raised, a previous holder of the shard that is still running could publish stale events ` +
      `(raise it again, or give the shard up, before running it)`
  }
}

export class PublishFence extends Context.Service<PublishFence, {
  /**
   * From now on, publishes for `shard` with an epoch below `epoch` are refused. Bounded in time:
   * fails with PublishFenceError when the broker cannot be told.
   */
  readonly raise: (shard: number, epoch: number) => Effect.Effect<void, PublishFenceError>
}>()("gateway/PublishFence") {}

/** Brokers with nothing to fence on server side (the local lease check still applies). */
export const NoPublishFence = Layer.succeed(PublishFence, PublishFence.of({ raise: () => Effect.void }))
