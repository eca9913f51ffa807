// Sessions kept in this process only: resumes survive reconnects, not restarts.
import { Effect, Layer } from "effect"
import { ShardStore, type SessionRecord } from "./ShardStore.ts"

export const makeMemoryStore = () => {
  const records = new Map<number, SessionRecord>()
  return ShardStore.of({
    load: (shard) => Effect.sync(() => records.get(shard)),
    save: (shard, record) => Effect.sync(() => void records.set(shard, record)),
    saveAll: (batch) =>
      Effect.sync(() => {
        for (const [shard, record] of batch) records.set(shard, record)
      }),
    clear: (shard) => Effect.sync(() => void records.delete(shard))
  })
}

export const MemoryStoreLive = Layer.sync(ShardStore, makeMemoryStore)
