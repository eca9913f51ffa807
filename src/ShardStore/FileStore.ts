// Sessions in a JSON file, so a single machine without Redis still resumes after a restart.
// Every write replaces the file atomically (write a temp file, fsync, rename): a crash leaves
// either the old checkpoints or the new ones, never a torn file. One process per file.
import { mkdir, open, readFile, rename } from "node:fs/promises"
import { dirname } from "node:path"
import { Effect, Layer, Semaphore } from "effect"
import { AppConfig } from "../Config/AppConfig.ts"
import { type SessionRecord, ShardStore, ShardStoreError } from "./ShardStore.ts"

interface FileShape {
  readonly version: 1
  readonly shards: Record<string, SessionRecord>
}

const isRecord = (value: unknown): value is SessionRecord => {
  const r = value as Partial<SessionRecord> | null
  return typeof r?.sessionId === "string" && typeof r.resumeUrl === "string" && typeof r.seq === "number"
}

const readRecords = (path: string) =>
  Effect.tryPromise({
    try: async () => {
      const records = new Map<number, SessionRecord>()
      let text: string
      try {
        text = await readFile(path, "utf8")
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === "ENOENT") return records
        throw error
      }
      const parsed = JSON.parse(text) as Partial<FileShape>
      for (const [key, value] of Object.entries(parsed.shards ?? {})) {
        const shard = Number(key)
        if (Number.isInteger(shard) && isRecord(value)) records.set(shard, value)
      }
      return records
    },
    catch: (cause) => new ShardStoreError({ operation: `read of ${path}`, cause })
  })

const writeRecords = (path: string, records: ReadonlyMap<number, SessionRecord>) =>
  Effect.tryPromise({
    try: async () => {
      const shape: FileShape = { version: 1, shards: Object.fromEntries([...records].map(([k, v]) => [String(k), v])) }
      const temp = `${path}.${process.pid}.tmp`
      await mkdir(dirname(path), { recursive: true })
      const handle = await open(temp, "w", 0o600)
      try {
        await handle.writeFile(JSON.stringify(shape))
        await handle.sync()
      } finally {
        await handle.close()
      }
      await rename(temp, path)
    },
    catch: (cause) => new ShardStoreError({ operation: `write of ${path}`, cause })
  })

export const makeFileStore = (path: string) =>
  Effect.gen(function*() {
    // An unreadable file must not keep the gateway down: start without sessions (the shards
    // identify afresh) and let the next checkpoint write a good file.
    const records = yield* readRecords(path).pipe(
      Effect.catch((error) =>
        Effect.as(Effect.logWarning(`${error.message}; starting without stored sessions`), new Map<number, SessionRecord>())
      )
    )
    const lock = yield* Semaphore.make(1)
    const persist = lock.withPermits(1)(Effect.suspend(() => writeRecords(path, records)))
    return ShardStore.of({
      load: (shard) => Effect.sync(() => records.get(shard)),
      save: (shard, record) => Effect.suspend(() => {
        records.set(shard, record)
        return persist
      }),
      saveAll: (batch) => Effect.suspend(() => {
        for (const [shard, record] of batch) records.set(shard, record)
        return persist
      }),
      clear: (shard) => Effect.suspend(() => (records.delete(shard) ? persist : Effect.void))
    })
  })

export const FileStoreLive = Layer.effect(
  ShardStore,
  Effect.flatMap(AppConfig, (config) => makeFileStore(config.shardStore.path))
)
