// One shard, one process. With Redis configured, each owned shard is held by a lease that expires
// on its own within seconds and is renewed while the shard lives. A starting process waits a little
// longer than that expiry for a held lease (so it can take over from a crashed one) and stops with
// a clear error when a live owner keeps renewing: a misconfigured deployment cannot run a shard twice.
import { hostname } from "node:os"
import { randomBytes } from "node:crypto"
import { Context, Data, Deferred, Duration, Effect, Layer, Schedule } from "effect"
import { AppConfig } from "../Config/AppConfig.ts"
import { RedisClient, type RedisConnection } from "../Redis/RedisClient.ts"
import { ShardPlan } from "./ShardPlan.ts"

export const LEASE_TTL_MS = 10_000
const RENEW_EVERY_MS = 3_000
/** A held lease is waited for this long: past its expiry, so a crashed owner's lease runs out. */
const TAKEOVER_WAIT_MS = LEASE_TTL_MS + 2_000
const POLL_MS = 500

export class ShardClaimed extends Data.TaggedError("ShardClaimed")<{ readonly shard: number; readonly owner: string }> {
  override get message() {
    return `shard ${this.shard} is run by another live gateway process (${this.owner}): give each process its own ` +
      `shards with DISCORD_SHARD_IDS / [shards] ids, or stop the other process first`
  }
}

export class ShardLeases extends Context.Service<ShardLeases, {
  /** Fails if a lease is lost to another process while the shards run (a split brain). */
  readonly lost: Effect.Effect<never, ShardClaimed>
}>()("gateway/ShardLeases") {}

export const leaseKey = (prefix: string, shard: number) => `${prefix}lease:${shard}`

// Renew or release only a lease we still hold (compare-and-act, atomically).
const RENEW = `if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("PEXPIRE", KEYS[1], ARGV[2]) end
if redis.call("SET", KEYS[1], ARGV[1], "NX", "PX", ARGV[2]) then return 1 end
return 0`
const RELEASE = `if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) end return 0`

const makeLeases = (redis: RedisConnection, prefix: string, shards: ReadonlyArray<number>) =>
  Effect.gen(function*() {
    const owner = `${hostname()}:${process.pid}:${randomBytes(3).toString("hex")}`
    const client = redis.client
    const call = <A>(run: () => Promise<A>) => Effect.tryPromise({ try: run, catch: (e) => e })

    const claim = (shard: number) =>
      Effect.gen(function*() {
        const key = leaseKey(prefix, shard)
        const deadline = Date.now() + TAKEOVER_WAIT_MS
        let said = false
        for (;;) {
          const ok = yield* call(() => client.set(key, owner, "PX", LEASE_TTL_MS, "NX")).pipe(Effect.orDie)
          if (ok === "OK") return
          const holder = (yield* call(() => client.get(key)).pipe(Effect.orDie)) ?? "unknown"
          if (Date.now() >= deadline) return yield* new ShardClaimed({ shard, owner: holder })
          if (!said) {
            said = true
            yield* Effect.logInfo(`shard ${shard} is leased by ${holder}; waiting up to ${TAKEOVER_WAIT_MS / 1000}s for it to expire`)
          }
          yield* Effect.sleep(Duration.millis(POLL_MS))
        }
      })

    yield* Effect.forEach(shards, claim, { concurrency: 16, discard: true })
    const lost = yield* Deferred.make<never, ShardClaimed>()

    const renew = Effect.gen(function*() {
      for (const shard of shards) {
        const key = leaseKey(prefix, shard)
        const result = yield* call(() => client.eval(RENEW, 1, key, owner, LEASE_TTL_MS)).pipe(
          // Redis unreachable: nobody else can take the lease either; keep running, try again.
          Effect.catch(() => Effect.succeed(-1))
        )
        if (result === 0) {
          const holder = (yield* call(() => client.get(key)).pipe(Effect.catch(() => Effect.succeed(null)))) ?? "unknown"
          yield* Deferred.fail(lost, new ShardClaimed({ shard, owner: holder }))
        }
      }
    })
    yield* Effect.forkScoped(Effect.repeat(renew, Schedule.spaced(Duration.millis(RENEW_EVERY_MS))))
    // On a clean stop the leases go at once, so a replacement need not wait for them to expire.
    yield* Effect.addFinalizer(() =>
      Effect.forEach(shards, (shard) => call(() => client.eval(RELEASE, 1, leaseKey(prefix, shard), owner)).pipe(Effect.ignore), {
        concurrency: 16,
        discard: true
      })
    )
    yield* Effect.logDebug(`leased shards ${shards.join(",")} as ${owner}`)
    return ShardLeases.of({ lost: Deferred.await(lost) })
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

/** Without Redis there is nothing to coordinate with. */
export const NoShardLeases = Layer.succeed(ShardLeases, ShardLeases.of({ lost: Effect.never }))
