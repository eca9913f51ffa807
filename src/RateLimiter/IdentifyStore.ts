// Where the identify limiter keeps each bucket's hold: in this process, or in Redis so every
// process of the bot shares it. A hold is "this bucket identified just now": while it lasts, no
// other identify of the bucket may be sent. It is taken at the moment of sending, never reserved
// for later, so a caller that wakes late loses nothing (IdentifyLimiter.ts).
import { randomUUID } from "node:crypto"
import { Context, Data, Effect, Layer } from "effect"
import { RedisClient } from "../Redis/RedisClient.ts"
import { errorText } from "../Resilience/OutageLog.ts"

export class IdentifyStoreError extends Data.TaggedError("IdentifyStoreError")<{ readonly reason: string }> {
  override get message() {
    return this.reason
  }
}

export interface IdentifyStoreShape {
  /**
   * Takes (or, for the same `holder`, renews) the bucket's hold for `holdMs` from now and answers
   * 0; or, while someone else holds it, answers how many ms are left of their hold.
   */
  readonly claim: (key: string, holder: string, holdMs: number) => Effect.Effect<number, IdentifyStoreError>
}

export class IdentifyStore extends Context.Service<IdentifyStore, IdentifyStoreShape>()("gateway/IdentifyStore") {}

/** Holds in this process only, timed by Effect's Clock (TestClock in tests). */
export const makeMemoryIdentifyStore = (): IdentifyStoreShape => {
  const holds = new Map<string, { holder: string; until: number }>()
  return {
    claim: (key, holder, holdMs) =>
      Effect.clockWith((clock) =>
        Effect.sync(() => {
          const now = clock.currentTimeMillisUnsafe()
          const hold = holds.get(key)
          if (hold === undefined || hold.until <= now || hold.holder === holder) {
            holds.set(key, { holder, until: now + holdMs })
            return 0
          }
          return hold.until - now
        })
      )
  }
}

export const MemoryIdentifyStoreLive = Layer.sync(IdentifyStore, () => IdentifyStore.of(makeMemoryIdentifyStore()))

/** One key per bucket; Redis times the hold (PX), so processes on hosts with skewed clocks agree. */
const CLAIM_SCRIPT = `
local current = redis.call("GET", KEYS[1])
if (not current) or current == ARGV[1] then
  redis.call("SET", KEYS[1], ARGV[1], "PX", ARGV[2])
  return 0
end
local ttl = redis.call("PTTL", KEYS[1])
if ttl < 0 then
  redis.call("PEXPIRE", KEYS[1], ARGV[2])
  return tonumber(ARGV[2])
end
if ttl < 1 then return 1 end
return ttl
`

export const REDIS_IDENTIFY_PREFIX = "spectacles:identify:"

export const makeRedisIdentifyStore = (client: RedisClient["Service"]["client"], prefix = REDIS_IDENTIFY_PREFIX): IdentifyStoreShape => ({
  claim: (key, holder, holdMs) =>
    Effect.tryPromise({
      // EVAL (not EVALSHA): one short script per identify; in a Cluster it goes to the key's node.
      try: () => client.eval(CLAIM_SCRIPT, 1, `${prefix}${key}`, holder, String(holdMs)) as Promise<number>,
      catch: (cause) => new IdentifyStoreError({ reason: `Redis: ${errorText(cause)}` })
    }).pipe(Effect.map(Number))
})

/** Shared by every process of the bot through Redis. */
export const RedisIdentifyStoreLive = Layer.effect(
  IdentifyStore,
  Effect.gen(function*() {
    const connection = yield* RedisClient
    return IdentifyStore.of(makeRedisIdentifyStore(connection.client))
  })
)

/** A holder id unique to one identify attempt of this process (renewals use the same one). */
export const makeHolderIds = (): (() => string) => {
  const processId = randomUUID()
  let next = 0
  return () => `${processId}:${++next}`
}
