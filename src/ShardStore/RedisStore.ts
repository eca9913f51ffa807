// Sessions in Redis, so any process that takes a shard over (after a restart, or on another
// machine) resumes it. One JSON value per shard under `<prefix>shard:<id>`.
import { Effect, Layer } from "effect"
import { AppConfig } from "../Config/AppConfig.ts"
import { RedisClient, type RedisConnection } from "../Redis/RedisClient.ts"
import { type SessionRecord, ShardStore, ShardStoreError } from "./ShardStore.ts"

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
  const attempt = <A>(operation: string, run: () => Promise<A>) =>
    Effect.tryPromise({ try: run, catch: (cause) => new ShardStoreError({ operation: `redis ${operation}`, cause }) })
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
    return makeRedisStore(redis, config.shardStore.prefix)
  })
)
