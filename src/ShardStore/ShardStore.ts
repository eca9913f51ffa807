// Where each shard's resumable session lives between connections and between runs.
import { Context, Data, Effect } from "effect"

export interface SessionRecord {
  readonly sessionId: string
  readonly resumeUrl: string
  /** Last sequence number whose event (and every earlier one) the broker accepted. */
  readonly seq: number
}

export class ShardStoreError extends Data.TaggedError("ShardStoreError")<{
  readonly operation: string
  readonly cause: unknown
}> {
  override get message() {
    const detail = this.cause instanceof Error ? this.cause.message : String(this.cause)
    return `shard store ${this.operation} failed: ${detail}`
  }
}

export class ShardStore extends Context.Service<ShardStore, {
  readonly load: (shard: number) => Effect.Effect<SessionRecord | undefined, ShardStoreError>
  readonly save: (shard: number, record: SessionRecord) => Effect.Effect<void, ShardStoreError>
  /** Saves several records at once (checkpoint flushes); stores may batch the writes. */
  readonly saveAll: (records: ReadonlyMap<number, SessionRecord>) => Effect.Effect<void, ShardStoreError>
  readonly clear: (shard: number) => Effect.Effect<void, ShardStoreError>
}>()("gateway/ShardStore") {}
