// Sessions in Redis, so any process that takes a shard over (after a restart, or on another
// machine) resumes it. One JSON value per shard under `<prefix>shard:<id>`.
import { Effect, Layer } from "effect"
import { AppConfig } from "../Config/AppConfig.ts"
import { Readiness } from "../Resilience/Readiness.ts"
import { RedisClient, type RedisConnection, redisErrorText } from "../Redis/RedisClient.ts"
import { type SessionRecord, ShardStore, ShardStoreError } from "./ShardStore.ts"
import { STORE_TIMEOUT_MS, withStoreHealth } from "./StoreHealth.ts"

export const sessionKey = (prefix: string, shard: number) => `${prefix}shard:${shard}`

const parse = (text: string | null): SessionRecord | undefined => {
  if (text === null) return undefined
  try {
    const r = JSON.parse(text) as Partial<SessionRecord>
    if (typeof r.sessionId === "string" && typeof r.resumeUrl === "string" && typeof r.seq === "number") {
      return { sessionId: r.sessionId, resumeUrl: r.resumeUrl, seq: r.seq }
    }
  } catch {
    // a value we did not write: treat as absent
  }
  return undefined
}

export const makeRedisStore = (redis: RedisConnection, prefix: string) => {
  // When each command still unanswered was sent. A server that stops answering (but keeps the
  // connection) is dropped by ioredis only after its socket timeout; until then every new command
  // would wait in line behind the unanswered ones. So once one has waited longer than the store's
  // timeout, new commands fail at once: a checkpoint or a shutdown never queues behind a hung server.
  const unanswered = new Set<{ readonly sentAt: number }>()
  const hung = () => {
    const now = Date.now()
    for (const command of unanswered) if (now - command.sentAt > STORE_TIMEOUT_MS) return true
    return false
  }
  const attempt = <A>(operation: string, run: () => Promise<A>) =>
    Effect.suspend(() => {
      if (hung()) {
        return Effect.fail(new ShardStoreError({ operation: `redis ${operation}`, cause: `Redis has not answered an earlier command for over ${STORE_TIMEOUT_MS} ms` }))
      }
      const command = { sentAt: Date.now() }
      unanswered.add(command)
      const done = run().finally(() => void unanswered.delete(command))
      return Effect.tryPromise({ try: () => done, catch: (cause) => new ShardStoreError({ operation: `redis ${operation}`, cause: redisErrorText(cause) }) })
    })
  const encode = (r: SessionRecord) => JSON.stringify({ sessionId: r.sessionId, resumeUrl: r.resumeUrl, seq: r.seq })
  return ShardStore.of({
    load: (shard) => Effect.map(attempt("GET", () => redis.client.get(sessionKey(prefix, shard))), parse),
    save: (shard, record) => Effect.asVoid(attempt("SET", () => redis.client.set(sessionKey(prefix, shard), encode(record)))),
    // Separate SETs rather than MSET or a pipeline: in a Cluster the keys live in different slots.
    saveAll: (records) =>
      Effect.asVoid(attempt("SET", () =>
        Promise.all([...records].map(([shard, record]) => redis.client.set(sessionKey(prefix, shard), encode(record))))
      )),
    clear: (shard) => Effect.asVoid(attempt("DEL", () => redis.client.del(sessionKey(prefix, shard))))
  })
}

export const RedisStoreLive = Layer.effect(
  ShardStore,
  Effect.gen(function*() {
    const config = yield* AppConfig
    const redis = yield* RedisClient
    const readiness = yield* Readiness
    // ioredis drops a silent server only after its socket timeout (10 s): the store's own timeout
    // is shorter, so a hung Redis shows on /readyz and cannot stretch a shutdown.
    return withStoreHealth(makeRedisStore(redis, config.shardStore.prefix), readiness, `redis ${redis.endpoint}`)
  })
)
