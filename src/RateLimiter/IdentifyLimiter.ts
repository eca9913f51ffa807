// Discord's identify rule (DISCORD_GATEWAY.md §9): one IDENTIFY per 5 s per bucket
// shard_id % max_concurrency, buckets in parallel. Each bucket has a hold in the IdentifyStore
// (in Redis when there is one, so every process of the bot shares it), taken at the moment an
// IDENTIFY goes out and lasting IDENTIFY_HOLD_MS. Nothing is reserved ahead: a shard whose fiber
// wakes late (a busy event loop when 100 shards connect at once) just claims the hold when it
// runs, so lateness costs what it lasted and never a whole window.
import { Clock, Context, Duration, Effect, Layer, Redacted, Semaphore } from "effect"
import { AppConfig } from "../Config/AppConfig.ts"
import { RedisClient } from "../Redis/RedisClient.ts"
import { errorText, outageLog } from "../Resilience/OutageLog.ts"
import { SessionBudget } from "./SessionBudget.ts"
import { ShardPlan } from "../Cluster/ShardPlan.ts"
import { IdentifyStore, makeHolderIds, MemoryIdentifyStoreLive, RedisIdentifyStoreLive } from "./IdentifyStore.ts"
import type { IdentifyStoreShape } from "./IdentifyStore.ts"

/** Discord's 5 s window plus a margin for network jitter between two identifies of one bucket. */
export const IDENTIFY_HOLD_MS = 5_000 + 200
/**
 * A claim answered later than this after it was asked (slow store, busy event loop) is renewed
 * before the IDENTIFY goes out: the hold must have been taken at most this long before sending,
 * so two identifies of a bucket are never closer than IDENTIFY_HOLD_MS − MAX_CLAIM_LAG_MS = 5.05 s.
 */
export const MAX_CLAIM_LAG_MS = 150

export class IdentifyLimiter extends Context.Service<IdentifyLimiter, {
  /** Waits for this shard's turn to send IDENTIFY (call it right before sending). */
  readonly acquire: (shard: number) => Effect.Effect<void>
}>()("gateway/IdentifyLimiter") {}

/** The application id is the first part of a bot token; it keys the budget without exposing the token. */
export const botIdOf = (token: string): string => {
  const head = token.split(".")[0] ?? ""
  try {
    const id = Buffer.from(head, "base64").toString("utf8")
    if (/^\d+$/.test(id)) return id
  } catch {
    // not a Discord-shaped token (tests): fall through
  }
  // Not a snowflake: a stable, non-reversible stand-in.
  let h = 0
  for (let i = 0; i < token.length; i++) h = (Math.imul(h, 31) + token.charCodeAt(i)) | 0
  return `h${(h >>> 0).toString(16)}`
}

export interface IdentifyGateOptions {
  readonly holdMs?: number
  readonly maxClaimLagMs?: number
  /** How the gate waits (tests model a late event loop with it); Effect.sleep by default. */
  readonly sleep?: (ms: number) => Effect.Effect<void>
}

export interface IdentifyGate {
  /** Returns when an IDENTIFY of bucket `key` may be sent right away, the hold taken for it. */
  readonly acquire: (key: string) => Effect.Effect<void>
}

/**
 * The pacing decisions, over any store. Within a process the callers of one bucket queue in
 * order, so only one of them asks the store at a time; across processes the store decides.
 */
export const makeIdentifyGate = (store: IdentifyStoreShape, options: IdentifyGateOptions = {}): IdentifyGate => {
  const holdMs = options.holdMs ?? IDENTIFY_HOLD_MS
  const maxLagMs = options.maxClaimLagMs ?? MAX_CLAIM_LAG_MS
  const sleep = options.sleep ?? ((ms: number) => Effect.sleep(Duration.millis(ms)))
  const nextHolder = makeHolderIds()
  const outage = outageLog("identify limiter store (identifies are paced within this process only meanwhile)")
  const buckets = new Map<string, { readonly lock: Semaphore.Semaphore; lastSentAt: number | undefined }>()
  const bucketOf = (key: string) => {
    let bucket = buckets.get(key)
    if (bucket === undefined) {
      bucket = { lock: Semaphore.makeUnsafe(1), lastSentAt: undefined }
      buckets.set(key, bucket)
    }
    return bucket
  }

  return {
    acquire: (key) => {
      const bucket = bucketOf(key)
      return bucket.lock.withPermits(1)(Effect.gen(function*() {
        const holder = nextHolder()
        for (;;) {
          const asked = yield* Clock.currentTimeMillis
          // Our own last identify of the bucket counts even if the store lost it (outage, restart).
          if (bucket.lastSentAt !== undefined && asked < bucket.lastSentAt + holdMs) {
            yield* sleep(bucket.lastSentAt + holdMs - asked)
            continue
          }
          const answer = yield* Effect.result(store.claim(key, holder, holdMs))
          const answered = yield* Clock.currentTimeMillis
          if (answer._tag === "Failure") {
            // Another process may have identified just before: let a whole hold pass, then go.
            yield* outage.failed(errorText(answer.failure))
            yield* sleep(holdMs)
            bucket.lastSentAt = yield* Clock.currentTimeMillis
            return
          }
          yield* outage.succeeded
          const waitMs = answer.success
          if (waitMs > 0) {
            yield* sleep(waitMs)
            continue
          }
          if (answered - asked <= maxLagMs) {
            bucket.lastSentAt = asked
            return
          }
          // The hold may have started long before we can send: renew it (same holder) first.
          yield* Effect.logDebug(`identify hold of ${key} answered after ${answered - asked} ms; renewing it before sending`)
        }
      }))
    }
  }
}

export const IdentifyLimiterLive = Layer.effect(
  IdentifyLimiter,
  Effect.gen(function*() {
    const store = yield* IdentifyStore
    const plan = yield* ShardPlan
    const config = yield* AppConfig
    const budget = yield* SessionBudget
    const botId = botIdOf(Redacted.value(config.token))
    const gate = makeIdentifyGate(store)
    return IdentifyLimiter.of({
      acquire: (shard) =>
        Effect.gen(function*() {
          // The daily budget first (it may mean hours); then the 5 s bucket, right before sending.
          yield* budget.spend
          const bucket = shard % plan.maxConcurrency
          const started = yield* Clock.currentTimeMillis
          yield* gate.acquire(`${botId}:${plan.maxConcurrency}:${bucket}`)
          const waited = (yield* Clock.currentTimeMillis) - started
          if (waited > 0) yield* Effect.logDebug(`waited ${waited} ms for identify bucket ${bucket}`)
        })
    })
  })
)

/** The identify limiter's holds in this process (no Redis configured). */
export const MemoryRateLimiterLive = MemoryIdentifyStoreLive

/** One identify budget for every process of the bot: the holds live in Redis. */
export const RedisRateLimiterLive: Layer.Layer<IdentifyStore, never, RedisClient> = RedisIdentifyStoreLive
