// The one queue of commands per shard: the command router writes it, the shard's sender reads it
// (in order, only on a READY or RESUMED connection, paced by the send window).
//
// Shards come and go (ShardOwnership), so there is a queue per shard of the bot, made on first
// use. When a shard leaves this process its queue is emptied: the jobs in it were not sent, and
// their sources deliver them again to the shard's next process (a broker entry or message is not
// acknowledged; see `dropped` for the rest). Kept, they would go out stale, and twice, if the
// shard came back here later.
import { Context, Effect, Layer, Queue } from "effect"
import { ShardOwnership } from "../Cluster/ShardOwnership.ts"
import { ShardPlan } from "../Cluster/ShardPlan.ts"

export interface CommandJob {
  /** `{"op":N,"d":...}` text. */
  readonly payload: string
  /** Runs once the payload was written to Discord (acknowledge the broker message...). Must not fail. */
  readonly sent: Effect.Effect<void>
  /** Checked right before sending: false drops the job unsent (its source delivers it again). */
  readonly wanted?: () => boolean
  /**
   * Runs when the job is dropped unsent because its shard left this process. For jobs nobody
   * would deliver again (stdin): hand them on. Must not fail, and should not wait long.
   */
  readonly dropped?: Effect.Effect<void>
}

export class ShardCommands extends Context.Service<ShardCommands, {
  /** Queues a job on a shard of the bot; never waits (sources bound their own backlog). */
  readonly offer: (shard: number, job: CommandJob) => void
  /** The next job for the shard, waiting for one. */
  readonly take: (shard: number) => Effect.Effect<CommandJob>
  /** Jobs waiting for the shard. */
  readonly waiting: (shard: number) => number
}>()("gateway/ShardCommands") {}

export const makeShardCommands = (shardCount: number, ownership: ShardOwnership["Service"]) =>
  Effect.gen(function*() {
    const queues = new Map<number, Queue.Queue<CommandJob>>()
    // Made on first use from `offer` (synchronous), with the services (scheduler) of this layer.
    const makeQueue = Effect.runSyncWith(yield* Effect.context<never>())
    const queueOf = (shard: number) => {
      let queue = queues.get(shard)
      if (queue !== undefined) return queue
      // Routing divides by the shard count: anything else is a bug, and loud beats a silent drop.
      if (!Number.isInteger(shard) || shard < 0 || shard >= shardCount) throw new Error(`shard ${shard} is not a shard of this bot (0-${shardCount - 1})`)
      queue = makeQueue(Queue.unbounded<CommandJob>())
      queues.set(shard, queue)
      return queue
    }
    yield* ownership.watch({
      acquired: () => Effect.void,
      releasing: (shard) =>
        Effect.gen(function*() {
          const queue = queues.get(shard)
          if (queue === undefined) return
          const unsent = yield* Queue.clear(queue)
          for (const job of unsent) if (job.dropped !== undefined) yield* job.dropped
          if (unsent.length > 0) yield* Effect.logDebug(`dropped ${unsent.length} queued command(s) of shard ${shard}: it is leaving this process, and their sources deliver them again`)
        })
    })
    return ShardCommands.of({
      offer: (shard, job) => void Queue.offerUnsafe(queueOf(shard), job),
      take: (shard) => Effect.suspend(() => Queue.take(queueOf(shard))),
      waiting: (shard) => Queue.sizeUnsafe(queueOf(shard))
    })
  })

export const ShardCommandsLive: Layer.Layer<ShardCommands, never, ShardPlan | ShardOwnership> = Layer.effect(
  ShardCommands,
  Effect.gen(function*() {
    const plan = yield* ShardPlan
    return yield* makeShardCommands(plan.shardCount, yield* ShardOwnership)
  })
)
