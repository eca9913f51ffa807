// One shard, one process. With Redis configured, each owned shard is held by a lease that expires
// on its own within seconds and is renewed while the shard lives. A starting process waits a little
// longer than that expiry for a held lease (so it can take over from a crashed one) and stops with
// a clear error when a live owner keeps renewing: a misconfigured deployment cannot run a shard twice.
//
// A lease is also enforced here: a process that could not renew in time (cut off from Redis,
// paused by SIGSTOP or a long GC) must assume another process has taken the shard over. `holds`
// turns false a safety margin before the lease can expire in Redis, so the shard stops reading
// and sending before anyone else may start; it acts again only once the lease is renewed or
// re-claimed. All timing is on Effect's clock.
import { hostname } from "node:os"
import { randomBytes } from "node:crypto"
import { Clock, Context, Data, Deferred, Duration, Effect, Layer, Schedule } from "effect"
import { AppConfig } from "../Config/AppConfig.ts"
import { RedisClient, type RedisConnection } from "../Redis/RedisClient.ts"
import { ShardPlan } from "./ShardPlan.ts"

export const LEASE_TTL_MS = 10_000
const RENEW_EVERY_MS = 3_000
/** `holds` turns false this long before the lease could expire in Redis (clock drift, slow replies). */
export const LEASE_SAFETY_MS = 2_000
/** A held lease is waited for this long: past its expiry, so a crashed owner's lease runs out. */
const TAKEOVER_WAIT_MS = LEASE_TTL_MS + 2_000
const POLL_MS = 500

export class ShardClaimed extends Data.TaggedError("ShardClaimed")<{ readonly shard: number; readonly owner: string }> {
  override get message() {
    return `shard ${this.shard} is run by another live gateway process (${this.owner}): give each process its own ` +
      `shards with DISCORD_SHARD_IDS / [shards] ids, or stop the other process first`
  }
}

/** Until when (Effect clock, ms) this process may act for a shard. Read on the hot path: a plain field. */
export interface LeaseCell {
  until: number
  /** Increases with every claim of the shard by any process: brokers refuse publishes of older epochs. */
  readonly epoch: number
}

export class ShardLeases extends Context.Service<ShardLeases, {
  /** Fails if a lease is lost to another process while the shards run (a split brain). */
  readonly lost: Effect.Effect<never, ShardClaimed>
  /** The shard's lease validity, updated in place by every renewal. */
  readonly cell: (shard: number) => LeaseCell
  /** Waits until this process holds the shard's lease again (at once when it does). */
  readonly awaitHeld: (shard: number) => Effect.Effect<void>
}>()("gateway/ShardLeases") {}

export const leaseKey = (prefix: string, shard: number) => `${prefix}lease:${shard}`

// Renew or release only a lease we still hold (compare-and-act, atomically); take it again if it
// expired and nobody else took it meanwhile.
const RENEW = `if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("PEXPIRE", KEYS[1], ARGV[2]) end
if redis.call("SET", KEYS[1], ARGV[1], "NX", "PX", ARGV[2]) then return 1 end
return 0`
const RELEASE = `if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) end return 0`

const makeLeases = (redis: RedisConnection, prefix: string, shards: ReadonlyArray<number>) =>
  Effect.gen(function*() {
    const owner = `${hostname()}:${process.pid}:${randomBytes(3).toString("hex")}`
    const client = redis.client
    const clock = yield* Clock.clockWith(Effect.succeed)
    const call = <A>(run: () => Promise<A>) => Effect.tryPromise({ try: run, catch: (e) => e })
    const cells = new Map<number, LeaseCell>()
    for (const shard of shards) cells.set(shard, { until: 0, epoch: 0 })
    // Measured from when the request left: the lease in Redis cannot expire sooner than that.
    const extend = (shard: number, sentAt: number) => {
      cells.get(shard)!.until = sentAt + LEASE_TTL_MS - LEASE_SAFETY_MS
    }

    const claim = (shard: number) =>
      Effect.gen(function*() {
        const key = leaseKey(prefix, shard)
        const deadline = clock.currentTimeMillisUnsafe() + TAKEOVER_WAIT_MS
        let said = false
        for (;;) {
          const sentAt = clock.currentTimeMillisUnsafe()
          const ok = yield* call(() => client.set(key, owner, "PX", LEASE_TTL_MS, "NX")).pipe(Effect.orDie)
          if (ok === "OK") return extend(shard, sentAt)
          const holder = (yield* call(() => client.get(key)).pipe(Effect.orDie)) ?? "unknown"
          if (clock.currentTimeMillisUnsafe() >= deadline) return yield* new ShardClaimed({ shard, owner: holder })
          if (!said) {
            said = true
            yield* Effect.logInfo(`shard ${shard} is leased by ${holder}; waiting up to ${TAKEOVER_WAIT_MS / 1000}s for it to expire`)
          }
          yield* Effect.sleep(Duration.millis(POLL_MS))
        }
      })

    yield* Effect.forEach(shards, claim, { concurrency: 16, discard: true })
    const lost = yield* Deferred.make<never, ShardClaimed>()
    const lapsed = new Set<number>()

    const renew = Effect.gen(function*() {
      for (const shard of shards) {
        const key = leaseKey(prefix, shard)
        const sentAt = clock.currentTimeMillisUnsafe()
        const result = yield* call(() => client.eval(RENEW, 1, key, owner, LEASE_TTL_MS)).pipe(
          // Redis unreachable: the lease is not extended, and `holds` turns false in time.
          Effect.catch(() => Effect.succeed(-1))
        )
        if (result === 1) {
          extend(shard, sentAt)
          if (lapsed.delete(shard)) yield* Effect.logInfo(`shard ${shard}: lease renewed; running it again`)
        } else if (result === 0) {
          const holder = (yield* call(() => client.get(key)).pipe(Effect.catch(() => Effect.succeed(null)))) ?? "unknown"
          yield* Deferred.fail(lost, new ShardClaimed({ shard, owner: holder }))
        } else if (clock.currentTimeMillisUnsafe() >= cells.get(shard)!.until && !lapsed.has(shard)) {
          lapsed.add(shard)
          yield* Effect.logWarning(
            `shard ${shard}: the lease could not be renewed within ${(LEASE_TTL_MS - LEASE_SAFETY_MS) / 1000}s (Redis unreachable); ` +
              `stopped reading and sending on it until the lease is renewed`
          )
        }
      }
    })
    yield* Effect.forkScoped(Effect.repeat(renew, Schedule.spaced(Duration.millis(RENEW_EVERY_MS))))
    // On a clean stop the leases go at once, so a replacement need not wait for them to expire;
    // bounded, so a Redis that does not answer cannot hold the shutdown (they expire anyway).
    yield* Effect.addFinalizer(() =>
      Effect.forEach(shards, (shard) => call(() => client.eval(RELEASE, 1, leaseKey(prefix, shard), owner)).pipe(Effect.ignore), {
        concurrency: 16,
        discard: true
      }).pipe(Effect.timeout("500 millis"), Effect.ignore)
    )
    yield* Effect.logDebug(`leased shards ${shards.join(",")} as ${owner}`)
    const cell = (shard: number) => {
      const found = cells.get(shard)
      if (found === undefined) throw new Error(`shard ${shard} is not leased by this process`)
      return found
    }
    return ShardLeases.of({
      lost: Deferred.await(lost),
      cell,
      awaitHeld: (shard) =>
        Effect.gen(function*() {
          while (clock.currentTimeMillisUnsafe() >= cell(shard).until) yield* Effect.sleep(Duration.millis(POLL_MS))
        })
    })
  })

export const RedisShardLeasesLive = Layer.effect(
  ShardLeases,
  Effect.gen(function*() {
    const config = yield* AppConfig
    const plan = yield* ShardPlan
    const redis = yield* RedisClient
    return yield* makeLeases(redis, config.shardStore.prefix, plan.shardIds)
  })
)

const forever: LeaseCell = { until: Number.POSITIVE_INFINITY, epoch: 0 }

/** Without Redis there is nothing to coordinate with: every shard is always held. */
export const NoShardLeases = Layer.succeed(
  ShardLeases,
  ShardLeases.of({ lost: Effect.never, cell: () => forever, awaitHeld: () => Effect.void })
)
