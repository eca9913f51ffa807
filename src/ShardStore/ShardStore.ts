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
  /** What failed and why, without the "shard store" subject: "write of PATH failed: EACCES ...". */
  get reason() {
    const detail = this.cause instanceof Error ? this.cause.message : String(this.cause)
    return `${this.operation} failed: ${detail}`
  }
  override get message() {
    return `shard store ${this.reason}`
  }
}

export class ShardStore extends Context.Service<ShardStore, {
  readonly load: (shard: number) => Effect.Effect<SessionRecord | undefined, ShardStoreError>
  readonly save: (shard: number, record: SessionRecord) => Effect.Effect<void, ShardStoreError>
  /** Saves several records at once (checkpoint flushes); stores may batch the writes. */
  readonly saveAll: (records: ReadonlyMap<number, SessionRecord>) => Effect.Effect<void, ShardStoreError>
  readonly clear: (shard: number) => Effect.Effect<void, ShardStoreError>
}>()("gateway/ShardStore") {}
