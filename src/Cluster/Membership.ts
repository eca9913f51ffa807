// The processes of one bot that share its shards, as Redis sees them: each process keeps a key of
// its own alive (expiring on its own when the process dies) and lists itself in a set, so every
// process reads the same member list. Redis' own expiry decides who is gone: no clocks compared.
import { Context, Effect, Layer } from "effect"
import { AppConfig } from "../Config/AppConfig.ts"
import { RedisClient, type RedisConnection } from "../Redis/RedisClient.ts"
import type { Member } from "./Assignment.ts"
import { ShardLeases } from "./ShardLeases.ts"

/** A member not heard from for this long is gone (its leases expire at about the same time). */
export const MEMBER_TTL_MS = 10_000

export class Membership extends Context.Service<Membership, {
  /** Says this process is alive, with its capacity and how many shards it holds. */
  readonly beat: (capacity: number, held: number) => Effect.Effect<void>
  /** The alive members, this one included once it has beaten. */
  readonly members: Effect.Effect<ReadonlyArray<Member>>
  /** Leaves at once (a graceful stop), so the others count it out before its key expires. */
  readonly leave: Effect.Effect<void>
}>()("gateway/Membership") {}

export const membersKey = (prefix: string) => `${prefix}cluster:members`
export const memberKey = (prefix: string, id: string) => `${prefix}cluster:member:${id}`

const encodeCapacity = (capacity: number) => (Number.isFinite(capacity) ? capacity : -1)

export const makeMembership = (redis: RedisConnection, prefix: string, self: string) =>
  Effect.sync(() => {
    const client = redis.client
    const call = <A>(run: () => Promise<A>) => Effect.tryPromise({ try: run, catch: (e) => e })
    return Membership.of({
      beat: (capacity, held) =>
        call(async () => {
          await client.sadd(membersKey(prefix), self)
          await client.set(memberKey(prefix, self), JSON.stringify({ capacity: encodeCapacity(capacity), held }), "PX", MEMBER_TTL_MS)
        }).pipe(Effect.catch((error) => Effect.logDebug(`cluster heartbeat failed: ${String(error)}`))),
      members: call(async () => {
        const ids = (await client.smembers(membersKey(prefix))).sort()
        const values = await Promise.all(ids.map((id) => client.get(memberKey(prefix, id))))
        const alive: Array<Member> = []
        const gone: Array<string> = []
        ids.forEach((id, i) => {
          const value = values[i]
          if (value === null || value === undefined) return void gone.push(id)
          try {
            const parsed = JSON.parse(value) as { capacity?: unknown; held?: unknown }
            const capacity = typeof parsed.capacity === "number" && parsed.capacity >= 0 ? parsed.capacity : Number.POSITIVE_INFINITY
            alive.push({ id, capacity, held: typeof parsed.held === "number" ? parsed.held : 0 })
          } catch {
            gone.push(id)
          }
        })
        if (gone.length > 0) await client.srem(membersKey(prefix), ...gone)
        return alive
      }).pipe(
        // Without an answer nobody is known: the caller claims nothing new and hands nothing off.
        Effect.catch(() => Effect.succeed<ReadonlyArray<Member>>([]))
      ),
      leave: call(async () => {
        await client.del(memberKey(prefix, self))
        await client.srem(membersKey(prefix), self)
      }).pipe(Effect.timeout("1 second"), Effect.ignore)
    })
  })

/** Members are named like their leases' owner. */
export const RedisMembershipLive = Layer.effect(
  Membership,
  Effect.gen(function*() {
    const config = yield* AppConfig
    const redis = yield* RedisClient
    const leases = yield* ShardLeases
    return yield* makeMembership(redis, config.shardStore.prefix, leases.owner)
  })
)
