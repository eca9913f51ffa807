// The one queue of commands per shard: the command router writes it, the shard's sender reads it
// (in order, only on a READY or RESUMED connection, paced by the send window).
import { Context, Effect, Layer, Queue } from "effect"
import { ShardPlan } from "../Cluster/ShardPlan.ts"

export interface CommandJob {
  /** `{"op":N,"d":...}` text. */
  readonly payload: string
  /** Runs once the payload was written to Discord (acknowledge the broker message...). Must not fail. */
  readonly sent: Effect.Effect<void>
  /** Checked right before sending: false drops the job unsent (its source delivers it again). */
  readonly wanted?: () => boolean
}

export class ShardCommands extends Context.Service<ShardCommands, {
  /** Queues a job on a shard this process runs; never waits (sources bound their own backlog). */
  readonly offer: (shard: number, job: CommandJob) => void
  /** The next job for the shard, waiting for one. */
  readonly take: (shard: number) => Effect.Effect<CommandJob>
  /** Jobs waiting for the shard. */
  readonly waiting: (shard: number) => number
}>()("gateway/ShardCommands") {}

export const makeShardCommands = (shardIds: ReadonlyArray<number>) =>
  Effect.gen(function*() {
    const queues = new Map<number, Queue.Queue<CommandJob>>()
    for (const id of shardIds) queues.set(id, yield* Queue.unbounded<CommandJob>())
    const queueOf = (shard: number) => {
      const queue = queues.get(shard)
      // Callers route only to shards this process runs: a miss is a bug, and loud beats a silent drop.
      if (queue === undefined) throw new Error(`shard ${shard} is not run by this process`)
      return queue
    }
    return ShardCommands.of({
      offer: (shard, job) => void Queue.offerUnsafe(queueOf(shard), job),
      take: (shard) => Queue.take(queueOf(shard)),
      waiting: (shard) => Queue.sizeUnsafe(queueOf(shard))
    })
  })

export const ShardCommandsLive = Layer.effect(ShardCommands, Effect.flatMap(ShardPlan, (plan) => makeShardCommands(plan.shardIds)))
