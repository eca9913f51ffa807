// The cluster-wide sharding state in Redis (Resharding.ts says what it means). One key holds it, and
// it only changes by compare-and-set, so two processes moving it at once cannot both succeed. Two
// sets per generation carry what the processes report: the shards that were READY, and the members
// that publish the generation. Every command touches one key: fine on a Redis Cluster.
import { Data, Effect } from "effect"
import type { RedisConnection } from "../Redis/RedisClient.ts"
import { redisErrorText } from "../Redis/RedisClient.ts"
import { decodeSharding, encodeSharding, type ShardingState } from "./Resharding.ts"

export const shardingKey = (prefix: string) => `${prefix}cluster:sharding`
export const readyKey = (generationPrefix: string) => `${generationPrefix}cluster:ready`
export const switchedKey = (generationPrefix: string) => `${generationPrefix}cluster:switched`

/** Reports expire a day after the last write: a finished resharding leaves nothing behind for long. */
const REPORT_TTL_S = 86_400

export class ReshardingStoreError extends Data.TaggedError("ReshardingStoreError")<{ readonly reason: string }> {
  override get message() {
    return `cluster sharding state in Redis: ${this.reason}`
  }
}

// KEYS: the state. ARGV: the value expected (empty: absent), the new value. 1 when it was replaced.
const COMPARE_AND_SET = `local current = redis.call("GET", KEYS[1])
if (current == false and ARGV[1] == "") or current == ARGV[1] then
  redis.call("SET", KEYS[1], ARGV[2])
  return 1
end
return 0`

export interface StoredSharding {
  readonly state: ShardingState
  /** The stored text, for the next compare-and-set. */
  readonly text: string
}

export const makeReshardingStore = (redis: RedisConnection, prefix: string) => {
  const client = redis.client
  const call = <A>(what: string, run: () => Promise<A>) =>
    Effect.tryPromise({ try: run, catch: (cause) => new ReshardingStoreError({ reason: `${what}: ${redisErrorText(cause)}` }) })

  const read = call("read", () => client.get(shardingKey(prefix))).pipe(
    Effect.flatMap((text) => {
      if (text === null) return Effect.succeed(undefined)
      const state = decodeSharding(text)
      return state === undefined
        ? Effect.fail(new ReshardingStoreError({ reason: `${shardingKey(prefix)} holds ${JSON.stringify(text.slice(0, 200))}, which is not a sharding state; delete it to start over` }))
        : Effect.succeed<StoredSharding | undefined>({ state, text })
    })
  )

  /** Replaces `expected` (undefined: absent) by `next`; false when someone changed it first. */
  const compareAndSet = (expected: string | undefined, next: ShardingState) =>
    call("compare-and-set", () => client.eval(COMPARE_AND_SET, 1, shardingKey(prefix), expected ?? "", encodeSharding(next))).pipe(
      Effect.map((n) => Number(n) === 1)
    )

  /** The stored state; `initial` is written first when there is none (the first process of the cluster). */
  const readOrInit = (initial: ShardingState) =>
    Effect.gen(function*() {
      for (let attempt = 0; attempt < 5; attempt++) {
        const stored = yield* read
        if (stored !== undefined) return stored
        if (yield* compareAndSet(undefined, initial)) return { state: initial, text: encodeSharding(initial) }
      }
      return yield* new ReshardingStoreError({ reason: "the state kept changing while it was written" })
    })

  const addReport = (key: string, members: ReadonlyArray<string>) =>
    members.length === 0
      ? Effect.void
      : call("report", async () => {
        await client.sadd(key, ...members)
        await client.expire(key, REPORT_TTL_S)
      })

  return {
    read,
    readOrInit,
    compareAndSet,
    /** Notes shards of a generation that were READY here. */
    markReady: (generationPrefix: string, shards: ReadonlyArray<number>) => addReport(readyKey(generationPrefix), shards.map(String)),
    readyCount: (generationPrefix: string) => call("ready count", () => client.scard(readyKey(generationPrefix))),
    /** Notes that these members (this process's names) publish the generation now. */
    ack: (generationPrefix: string, members: ReadonlyArray<string>) => addReport(switchedKey(generationPrefix), members),
    acked: (generationPrefix: string) =>
      call("acknowledgements", () => client.smembers(switchedKey(generationPrefix))).pipe(Effect.map((ids) => new Set(ids)))
  }
}

export type ReshardingStore = ReturnType<typeof makeReshardingStore>
