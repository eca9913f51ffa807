// Effect's persistence `Redis` service (used by the RateLimiter's Redis store) over our shared
// ioredis client, so the identify limiter uses the same connection (or Cluster) as everything else.
import { Effect, Layer } from "effect"
import * as Redis from "effect/persistence/Redis"
import type { Cluster } from "ioredis"
import { RedisClient, type RedisConnection } from "./RedisClient.ts"

const sendWith = (connection: RedisConnection) =>
  <A = unknown>(command: string, ...args: ReadonlyArray<string>): Effect.Effect<A, Redis.RedisError> =>
    Effect.tryPromise({
      try: () => {
        // In a Cluster a script must be known to every primary: EVALSHA goes to the key's node.
        if (connection.cluster && command.toUpperCase() === "SCRIPT" && args[0]?.toUpperCase() === "LOAD") {
          const nodes = (connection.client as Cluster).nodes("master")
          return Promise.all(nodes.map((node) => node.call("SCRIPT", "LOAD", ...args.slice(1)))).then((shas) => shas[0] as A)
        }
        return connection.client.call(command, ...args) as Promise<A>
      },
      catch: (cause) => new Redis.RedisError({ cause })
    })

const unsupported = (what: string) => Effect.fail(new Redis.RedisError({ cause: `${what} is not used by the gateway` }))

export const PersistenceRedisLive = Layer.effect(
  Redis.Redis,
  Effect.gen(function*() {
    const connection = yield* RedisClient
    const redis = yield* Redis.make({
      send: sendWith(connection),
      // Nothing here reserves connections or subscribes; the pool is created lazily and stays empty.
      connect: unsupported("a reserved connection"),
      subscribe: () => unsupported("SUBSCRIBE")
    })
    return Redis.Redis.of(redis)
  })
)
