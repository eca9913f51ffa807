// Sessions in a JSON file, so a single machine without Redis still resumes after a restart.
// Every write replaces the file atomically (write a temp file, fsync, rename): a crash leaves
// either the old checkpoints or the new ones, never a torn file. One process per file.
// At startup the folder must be writable (else exit 2: a configuration error, found at once rather
// than as a failing write every checkpoint interval).
import { mkdir, open, readFile, rename, unlink } from "node:fs/promises"
import { dirname } from "node:path"
import { Effect, Layer, Semaphore } from "effect"
import { AppConfig } from "../Config/AppConfig.ts"
import { Readiness } from "../Resilience/Readiness.ts"
import { errorText } from "../Resilience/OutageLog.ts"
import { type SessionRecord, ShardStore, ShardStoreError } from "./ShardStore.ts"
import { STORE_TIMEOUT_MS, withStoreHealth } from "./StoreHealth.ts"

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

/** The temp file a write goes through before its rename over `path`. */
export const tempPathOf = (path: string, pid: number) => `${path}.${pid}.tmp`

const writeFileAtomically = async (path: string, records: ReadonlyMap<number, SessionRecord>) => {
  const shape: FileShape = { version: 1, shards: Object.fromEntries([...records].map(([k, v]) => [String(k), v])) }
  const temp = tempPathOf(path, process.pid)
  await mkdir(dirname(path), { recursive: true })
  const handle = await open(temp, "w", 0o600)
  try {
    await handle.writeFile(JSON.stringify(shape))
    await handle.sync()
  } finally {
    await handle.close()
  }
  await rename(temp, path)
}

/**
 * Writes the records, one write at a time. A write the file system never completes (a hung
 * network mount) cannot be cancelled: while it is pending, later writes fail at once instead of
 * piling up blocked threads; the first write after it settles carries the newest records.
 */
const makeWriter = (path: string) => {
  let pending: Promise<void> | undefined
  return (records: ReadonlyMap<number, SessionRecord>) =>
    Effect.suspend(() => {
      if (pending !== undefined) {
        return Effect.fail(new ShardStoreError({ operation: `write of ${path}`, cause: "the previous write has not finished yet" }))
      }
      const write = writeFileAtomically(path, records)
      pending = write
      const settled = () => {
        if (pending === write) pending = undefined
      }
      write.then(settled, settled)
      return Effect.tryPromise({ try: () => write, catch: (cause) => new ShardStoreError({ operation: `write of ${path}`, cause }) })
    })
}

/** The line a folder that cannot be written gives (exit 2), naming the setting and the fix. */
export const unwritableLine = (path: string, reason: string) =>
  `shard_store.path (SHARD_STORE_PATH): cannot write to the folder of ${path}: ${reason}; ` +
  "make that folder writable by this user, or set SHARD_STORE_PATH to a file in a writable folder " +
  "(or SHARD_STORE_TYPE=memory to keep sessions in memory only)"

/** Creates the folder if needed and writes, syncs and removes a probe file in it. */
export const probeFolder = (path: string) =>
  Effect.tryPromise({
    try: async () => {
      const probe = `${dirname(path)}/.probe-${process.pid}`
      await mkdir(dirname(path), { recursive: true })
      const handle = await open(probe, "w", 0o600)
      try {
        await handle.writeFile("probe")
        await handle.sync()
      } finally {
        await handle.close()
      }
      await unlink(probe)
    },
    catch: (cause) => errorText(cause)
  }).pipe(
    Effect.timeoutOrElse({
      duration: 5 * STORE_TIMEOUT_MS,
      orElse: () => Effect.fail(`no answer from the file system within ${5 * STORE_TIMEOUT_MS} ms`)
    })
  )

export const makeFileStore = (path: string) =>
  Effect.gen(function*() {
    // An unreadable file must not keep the gateway down: start without sessions (the shards
    // identify afresh) and let the next checkpoint write a good file.
    const records = yield* readRecords(path).pipe(
      Effect.timeoutOrElse({
        duration: STORE_TIMEOUT_MS,
        orElse: () => Effect.fail(new ShardStoreError({ operation: `read of ${path}`, cause: `no answer within ${STORE_TIMEOUT_MS} ms` }))
      }),
      Effect.catch((error) =>
        Effect.as(Effect.logWarning(`${error.message}; starting without stored sessions`), new Map<number, SessionRecord>())
      )
    )
    const lock = yield* Semaphore.make(1)
    const write = makeWriter(path)
    const persist = lock.withPermits(1)(Effect.suspend(() => write(records)))
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
  Effect.gen(function*() {
    const { path } = (yield* AppConfig).shardStore
    const readiness = yield* Readiness
    const probe = yield* Effect.result(probeFolder(path))
    if (probe._tag === "Failure") {
      // A configuration error, reported as the config loader reports one: one line, exit 2.
      return yield* Effect.sync(() => {
        process.stderr.write(`spectacles-gateway: ${unwritableLine(path, probe.failure)}\n`)
        return process.exit(2)
      })
    }
    return withStoreHealth(yield* makeFileStore(path), readiness, `file ${path}`)
  })
)
