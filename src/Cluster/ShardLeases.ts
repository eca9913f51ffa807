// One shard, one process. With Redis configured, each shard a process runs is held by a lease that
// expires on its own within seconds and is renewed while the shard lives. Every claim takes a new
// epoch (one counter per shard, increased atomically with the claim), and the claimer raises the
// brokers' publish fence to it before the shard connects: a process that lost the lease while it
// was paused cannot publish for the shard any more, even if it wakes up mid-publish.
//
// A lease is also enforced here: a process that could not renew in time (cut off from Redis,
// paused by SIGSTOP or a long GC) must assume another process has taken the shard over. `until`
// turns stale a safety margin before the lease can expire in Redis, so the shard stops reading and
// sending before anyone else may start. A lease renewed in time (Redis answered again, the key
// still ours) lets the shard go on; a lease found taken or expired is lost for good, and the shard's
// run ends (whoever claims it next, this process included, resumes it from the shard store).
// All timing is on Effect's clock.
import { hostname } from "node:os"
import { randomBytes } from "node:crypto"
import { Clock, Context, Data, Deferred, Duration, Effect, Layer, Schedule } from "effect"
import { AppConfig } from "../Config/AppConfig.ts"
import { PublishFence } from "../Broker/Fence.ts"
import { RedisClient, type RedisConnection } from "../Redis/RedisClient.ts"

export const LEASE_TTL_MS = 10_000
const RENEW_EVERY_MS = 3_000
/** A lease turns stale this long before it could expire in Redis (clock drift, slow replies). */
export const LEASE_SAFETY_MS = 2_000
/** A held lease is waited for this long: past its expiry, so a crashed owner's lease runs out. */
export const TAKEOVER_WAIT_MS = LEASE_TTL_MS + 2_000
const POLL_MS = 500

export class ShardClaimed extends Data.TaggedError("ShardClaimed")<{ readonly shard: number; readonly owner: string }> {
  override get message() {
    return `shard ${this.shard} is run by another live gateway process (${this.owner}): give each process its own ` +
      `shards with DISCORD_SHARD_IDS / [shards] ids, or stop the other process first`
  }
}

/** One claim of a shard: until when (Effect clock, ms) this process may act for it, under which epoch. */
export interface LeaseCell {
  /** Read on the hot path: a plain field, moved by every renewal; -Infinity once lost or released. */
  until: number
  /** Increases with every claim of the shard by any process: brokers refuse publishes of older epochs. */
  readonly epoch: number
}

/** Why a held lease ended: taken by another process, or found expired (nobody renewed it in time). */
export interface LeaseLost {
  readonly shard: number
  /** The process holding it now; undefined when the lease had simply expired. */
  readonly holder: string | undefined
}

export class ShardLeases extends Context.Service<ShardLeases, {
  /** This process's name in the leases (host:pid:random). */
  readonly owner: string
  /** Takes the shard's lease if nobody holds it (a new epoch, the publish fence raised); undefined otherwise. */
  readonly tryClaim: (shard: number) => Effect.Effect<LeaseCell | undefined>
  /**
   * Takes the shard's lease, waiting past the expiry of a lease held by someone else (a crashed
   * process's runs out); fails when a live owner keeps renewing it.
   */
  readonly claim: (shard: number) => Effect.Effect<LeaseCell, ShardClaimed>
  /** Gives a held lease up at once (handoff, shutdown); bounded, as the lease expires anyway. */
  readonly release: (shard: number) => Effect.Effect<void>
  /** Completes when this claim is lost for good (the shard must stop here); never while held. */
  readonly lost: (cell: LeaseCell) => Effect.Effect<LeaseLost>
  /** Waits until the claim is valid again after a lapse (at once when it is). */
  readonly awaitHeld: (cell: LeaseCell) => Effect.Effect<void>
  /** Who holds each shard's lease (undefined: free), for the cluster's assignment. */
  readonly holders: (shards: ReadonlyArray<number>) => Effect.Effect<ReadonlyArray<string | undefined>>
}>()("gateway/ShardLeases") {}

export const leaseKey = (prefix: string, shard: number) => `${prefix}lease:${shard}`

/**
 * A key in the same Redis Cluster hash slot as `base`: under `base`'s own hash tag if it has one
 * (a prefix such as "{bot}:"), else with `base` itself as the tag.
 */
export const sameSlotKey = (base: string, suffix: string): string => {
  const open = base.indexOf("{")
  const close = open < 0 ? -1 : base.indexOf("}", open + 1)
  return close > open + 1 ? `${base}${suffix}` : `{${base}}${suffix}`
}

export const epochKey = (prefix: string, shard: number) => sameSlotKey(leaseKey(prefix, shard), ":epoch")

/** Lease values are "owner#epoch"; the owner part names the process in logs and in assignment. */
export const leaseHolder = (value: string | null | undefined): string | undefined => {
  if (value === null || value === undefined) return undefined
  const at = value.lastIndexOf("#")
  return at < 0 ? value : value.slice(0, at)
}

// Claim: only a free lease, with the next epoch, in one step (both keys share a slot).
const CLAIM = `if redis.call("EXISTS", KEYS[1]) == 1 then return 0 end
local epoch = redis.call("INCR", KEYS[2])
redis.call("SET", KEYS[1], ARGV[1] .. "#" .. epoch, "PX", ARGV[2])
return epoch`
// Renew only the lease we hold: 1 renewed, 0 another process holds it, -2 it expired.
const RENEW = `local value = redis.call("GET", KEYS[1])
if value == ARGV[1] then return redis.call("PEXPIRE", KEYS[1], ARGV[2]) end
if value then return 0 end
return -2`
const RELEASE = `if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) end return 0`

interface Held {
  readonly cell: LeaseCell
  readonly value: string
  readonly lost: Deferred.Deferred<LeaseLost>
  lapsed: boolean
}

export const makeLeases = (redis: RedisConnection, prefix: string, fence: typeof PublishFence.Service) =>
  Effect.gen(function*() {
    const owner = `${hostname()}:${process.pid}:${randomBytes(3).toString("hex")}`
    const client = redis.client
    const clock = yield* Clock.clockWith(Effect.succeed)
    const call = <A>(run: () => Promise<A>) => Effect.tryPromise({ try: run, catch: (e) => e })
    const held = new Map<number, Held>()
    const entries = new WeakMap<LeaseCell, Held>()

    const lose = (shard: number, entry: Held, holder: string | undefined) =>
      Effect.gen(function*() {
        entry.cell.until = Number.NEGATIVE_INFINITY
        if (held.get(shard) === entry) held.delete(shard)
        yield* Deferred.succeed(entry.lost, { shard, holder })
      })

    const tryClaim = (shard: number) =>
      Effect.gen(function*() {
        if (held.has(shard)) return held.get(shard)!.cell
        const sentAt = clock.currentTimeMillisUnsafe()
        const epoch = yield* call(() => client.eval(CLAIM, 2, leaseKey(prefix, shard), epochKey(prefix, shard), owner, LEASE_TTL_MS)).pipe(
          Effect.map(Number),
          Effect.catch((error) => Effect.as(Effect.logDebug(`shard ${shard}: lease claim failed: ${String(error)}`), 0))
        )
        if (!(epoch > 0)) return undefined
        const value = `${owner}#${epoch}`
        // Measured from when the request left: the lease in Redis cannot expire sooner than that.
        const cell: LeaseCell = { until: sentAt + LEASE_TTL_MS - LEASE_SAFETY_MS, epoch }
        const entry: Held = { cell, value, lost: yield* Deferred.make<LeaseLost>(), lapsed: false }
        held.set(shard, entry)
        entries.set(cell, entry)
        // Nothing may be published under this epoch before older ones are refused.
        const raised = yield* fence.raise(shard, epoch).pipe(Effect.timeout(Duration.millis(5_000)), Effect.result)
        if (raised._tag === "Failure") {
          yield* Effect.logWarning(`shard ${shard}: could not raise the publish fence (Redis slow or unreachable); giving the lease up and trying again later`)
          yield* releaseEntry(shard, entry)
          return undefined
        }
        yield* Effect.logDebug(`shard ${shard}: leased as ${owner} (epoch ${epoch})`)
        return cell
      })

    const releaseEntry = (shard: number, entry: Held) =>
      Effect.gen(function*() {
        entry.cell.until = Number.NEGATIVE_INFINITY
        if (held.get(shard) === entry) held.delete(shard)
        yield* call(() => client.eval(RELEASE, 1, leaseKey(prefix, shard), entry.value)).pipe(
          Effect.timeout(Duration.millis(1_000)),
          Effect.ignore
        )
      })

    const holderOf = (shard: number) =>
      call(() => client.get(leaseKey(prefix, shard))).pipe(Effect.map(leaseHolder), Effect.catch(() => Effect.succeed(undefined)))

    const claim = (shard: number) =>
      Effect.gen(function*() {
        const deadline = clock.currentTimeMillisUnsafe() + TAKEOVER_WAIT_MS
        let said = false
        for (;;) {
          const cell = yield* tryClaim(shard)
          if (cell !== undefined) return cell
          const holder = (yield* holderOf(shard)) ?? "unknown"
          if (clock.currentTimeMillisUnsafe() >= deadline) return yield* new ShardClaimed({ shard, owner: holder })
          if (!said) {
            said = true
            yield* Effect.logInfo(`shard ${shard} is leased by ${holder}; waiting up to ${TAKEOVER_WAIT_MS / 1000}s for it to expire`)
          }
          yield* Effect.sleep(Duration.millis(POLL_MS))
        }
      })

    const renewOne = (shard: number, entry: Held) =>
      Effect.gen(function*() {
        const sentAt = clock.currentTimeMillisUnsafe()
        const result = yield* call(() => client.eval(RENEW, 1, leaseKey(prefix, shard), entry.value, LEASE_TTL_MS)).pipe(
          // Redis unreachable: the lease is not extended, and the cell turns stale in time.
          Effect.catch(() => Effect.succeed(-1))
        )
        if (held.get(shard) !== entry) return
        if (result === 1) {
          entry.cell.until = sentAt + LEASE_TTL_MS - LEASE_SAFETY_MS
          if (entry.lapsed) {
            entry.lapsed = false
            yield* Effect.logInfo(`shard ${shard}: lease renewed; running it again`)
          }
        } else if (result === 0) {
          const holder = yield* holderOf(shard)
          yield* Effect.logWarning(`shard ${shard}: the lease was taken over by ${holder ?? "another process"}; stopping the shard here`)
          yield* lose(shard, entry, holder)
        } else if (result === -2) {
          yield* Effect.logWarning(`shard ${shard}: the lease expired before it could be renewed; stopping the shard's run (it resumes from the shard store when claimed again)`)
          yield* lose(shard, entry, undefined)
        } else if (clock.currentTimeMillisUnsafe() >= entry.cell.until && !entry.lapsed) {
          entry.lapsed = true
          yield* Effect.logWarning(
            `shard ${shard}: the lease could not be renewed within ${(LEASE_TTL_MS - LEASE_SAFETY_MS) / 1000}s (Redis unreachable); ` +
              `stopped reading and sending on it until the lease is renewed`
          )
        }
      })

    const renew = Effect.suspend(() =>
      Effect.forEach([...held], ([shard, entry]) => renewOne(shard, entry), { concurrency: 16, discard: true })
    )
    yield* Effect.forkScoped(Effect.repeat(renew, Schedule.spaced(Duration.millis(RENEW_EVERY_MS))))
    // On a clean stop the leases go at once, so a replacement need not wait for them to expire;
    // bounded, so a Redis that does not answer cannot hold the shutdown (they expire anyway).
    yield* Effect.addFinalizer(() =>
      Effect.forEach([...held], ([shard, entry]) => releaseEntry(shard, entry), { concurrency: 16, discard: true }).pipe(
        Effect.timeout("1 second"),
        Effect.ignore
      )
    )

    return ShardLeases.of({
      owner,
      tryClaim,
      claim,
      release: (shard) => Effect.suspend(() => {
        const entry = held.get(shard)
        return entry === undefined ? Effect.void : releaseEntry(shard, entry)
      }),
      lost: (cell) =>
        Effect.suspend(() => {
          const entry = entries.get(cell)
          // Released (or never ours): nothing to lose any more.
          return entry === undefined ? Effect.never : Deferred.await(entry.lost)
        }),
      awaitHeld: (cell) =>
        Effect.gen(function*() {
          while (clock.currentTimeMillisUnsafe() >= cell.until) {
            if (cell.until === Number.NEGATIVE_INFINITY) return yield* Effect.never
            yield* Effect.sleep(Duration.millis(POLL_MS))
          }
        }),
      holders: (shards) =>
        Effect.forEach(shards, (shard) =>
          held.has(shard)
            ? Effect.succeed<string | undefined>(owner)
            : call(() => client.get(leaseKey(prefix, shard))).pipe(Effect.map(leaseHolder)), { concurrency: 32 }).pipe(
          // Unknown holders count as taken: nobody claims blind while Redis does not answer.
          Effect.catch(() => Effect.succeed(shards.map(() => "unknown")))
        )
    })
  })

export const RedisShardLeasesLive = Layer.effect(
  ShardLeases,
  Effect.gen(function*() {
    const config = yield* AppConfig
    const redis = yield* RedisClient
    const fence = yield* PublishFence
    return yield* makeLeases(redis, config.shardStore.prefix, fence)
  })
)

/** Without Redis there is nothing to coordinate with: every shard is always held, under this one cell. */
export const FOREVER: LeaseCell = Object.freeze({ until: Number.POSITIVE_INFINITY, epoch: 0 })
const forever = () => FOREVER

export const NoShardLeases = Layer.succeed(
  ShardLeases,
  ShardLeases.of({
    owner: "local",
    tryClaim: () => Effect.sync(forever),
    claim: () => Effect.sync(forever),
    release: () => Effect.void,
    lost: () => Effect.never,
    awaitHeld: () => Effect.void,
    holders: (shards) => Effect.succeed(shards.map(() => undefined))
  })
)
