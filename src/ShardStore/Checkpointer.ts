// Writes each live session's checkpoint to the shard store, batched in time: a write per event
// would put the store on the hot path. A crash loses at most one interval of checkpoints, which
// only means a few events are delivered twice after the resume.
import { Context, Effect, Layer, Schedule } from "effect"
import { AppConfig } from "../Config/AppConfig.ts"
import { ShardStore, type SessionRecord } from "./ShardStore.ts"

/** A live session whose progress is checkpointed (a shard's session cursor). */
export interface CheckpointSource {
  readonly shard: number
  readonly sessionId: string
  readonly resumeUrl: string
  /** The highest sequence number below which nothing is still on its way to the broker. */
  readonly checkpoint: number
  /** Set when the checkpoint moved since the last store write. */
  dirty: boolean
  /** False while this process may not write for the shard (its lease lapsed): writes wait. */
  readonly writable: () => boolean
}

export class Checkpointer extends Context.Service<Checkpointer, {
  /** The shard's current session: written now, then checkpointed as its events are delivered. */
  readonly track: (cursor: CheckpointSource) => Effect.Effect<void>
  /** The session ended for good (Discord invalidated it): forget it in the store too. */
  readonly forget: (shard: number) => Effect.Effect<void>
  /** Writes every checkpoint that moved. */
  readonly flush: Effect.Effect<void>
}>()("gateway/Checkpointer") {}

const recordOf = (cursor: CheckpointSource): SessionRecord => ({
  sessionId: cursor.sessionId,
  resumeUrl: cursor.resumeUrl,
  seq: cursor.checkpoint
})

export const CheckpointerLive = Layer.effect(
  Checkpointer,
  Effect.gen(function*() {
    const store = yield* ShardStore
    const config = yield* AppConfig
    const live = new Map<number, CheckpointSource>()

    const flush = Effect.gen(function*() {
      const batch = new Map<number, SessionRecord>()
      for (const [shard, cursor] of live) {
        if (!cursor.dirty || !cursor.writable()) continue
        cursor.dirty = false
        batch.set(shard, recordOf(cursor))
      }
      if (batch.size === 0) return
      yield* store.saveAll(batch).pipe(
        Effect.catch((error) =>
          Effect.gen(function*() {
            // Try again on the next tick rather than lose the checkpoint.
            for (const shard of batch.keys()) {
              const cursor = live.get(shard)
              if (cursor) cursor.dirty = true
            }
            yield* Effect.logWarning(`${error.message}; will retry`)
          })
        )
      )
    })

    yield* Effect.forkScoped(Effect.repeat(flush, Schedule.spaced(config.checkpointIntervalMs)))
    // The last checkpoints of a graceful shutdown.
    yield* Effect.addFinalizer(() => flush)

    return Checkpointer.of({
      track: (cursor) =>
        Effect.gen(function*() {
          live.set(cursor.shard, cursor)
          if (!cursor.writable()) return
          cursor.dirty = false
          yield* store.save(cursor.shard, recordOf(cursor)).pipe(
            Effect.catch((error) => {
              cursor.dirty = true
              return Effect.logWarning(`${error.message}; will retry`)
            })
          )
        }),
      forget: (shard) =>
        Effect.gen(function*() {
          live.delete(shard)
          yield* store.clear(shard).pipe(Effect.catch((error) => Effect.logWarning(error.message)))
        }),
      flush
    })
  })
)
