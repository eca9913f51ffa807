// Forwarding over Redis: appends each payload to its shard's inbox stream. Nothing is ever
// trimmed from an inbox (that would lose commands nobody has sent yet); instead an inbox holds at
// most `inboxLimit` entries. A payload for a full inbox waits, and so does whoever forwards it
// (the reader of SEND, or stdin): backpressure. Only an inbox that stays full without shrinking
// for `stuckAfterMs` (no process runs that shard, or it cannot send) has its payloads refused,
// each one counted as `inbox_full` and the inbox named in the log, so the other shards'
// commands keep flowing.
//
// The check and the append are one Lua script (every inbox shares the {SEND} slot, so this holds
// on a Cluster too): a length read and a separate XADD could overshoot with several processes.
import { Clock, Effect, Layer } from "effect"
import { AppConfig } from "../Config/AppConfig.ts"
import { RedisClient, type RedisConnection, redisErrorText } from "../Redis/RedisClient.ts"
import { type CommandCounters, CommandStats } from "./CommandStats.ts"
import { CommandForwarder, ForwardError } from "./Forwarder.ts"
import { INBOX_MAX_LENGTH, inboxNamespace, inboxStream } from "./RedisNames.ts"
import { ShardPlan } from "../Cluster/ShardPlan.ts"
import type { Part } from "./Targets.ts"

const FORWARD_TIMEOUT_MS = 10_000

export interface RedisForwarderOptions {
  /** Counts the refusals of payloads for an inbox that stays full. */
  readonly stats: CommandCounters
  readonly inboxLimit: number
  /** A full inbox that has not taken a payload for this long is "stuck": its payloads are refused. */
  readonly stuckAfterMs: number
  /** How often a full inbox is checked for room again. */
  readonly pollMs: number
}

export const defaultRedisForwarderOptions = (stats: CommandCounters): RedisForwarderOptions => ({
  stats,
  inboxLimit: INBOX_MAX_LENGTH,
  stuckAfterMs: 60_000,
  pollMs: 250
})

// KEYS: the inboxes. ARGV[1]: the limit; then (inbox index, payload) pairs, in order. Returns 1
// for each payload appended, 0 for each not appended because its inbox was full. Once an inbox
// is found full, later payloads for it are not appended either, so a shard's order holds.
const APPEND_SCRIPT = `
local limit = tonumber(ARGV[1])
local full = {}
local result = {}
for i = 2, #ARGV, 2 do
  local key = KEYS[tonumber(ARGV[i])]
  if not full[key] and redis.call('XLEN', key) < limit then
    redis.call('XADD', key, '*', 'data', ARGV[i + 1])
    result[#result + 1] = 1
  else
    full[key] = true
    result[#result + 1] = 0
  end
end
return result
`

const fail = (reason: string, cause?: unknown) => new ForwardError({ broker: "redis", reason, cause })

/** In our words, not ioredis's (see redisErrorText). */
const text = redisErrorText

export const makeRedisForwarder = (redis: RedisConnection, group: string, options: RedisForwarderOptions) => {
  const { stats } = options
  /**
   * Parts already appended, per `parts` array: the router retries a failed forward with the same
   * array, and those must not be appended twice.
   */
  const done = new WeakMap<ReadonlyArray<Part>, Set<number>>()
  /** Inboxes found stuck: payloads for them are refused without waiting, until one fits again. */
  const stuck = new Set<number>()

  /** One script run over the parts not yet appended; returns the indexes it could not append. */
  const appendOnce = (parts: ReadonlyArray<Part>, indexes: ReadonlyArray<number>) =>
    Effect.tryPromise({
      try: async () => {
        const keys: Array<string> = []
        const keyIndex = new Map<number, number>()
        const args: Array<string | number> = [options.inboxLimit]
        for (const i of indexes) {
          const shard = parts[i]!.shard
          let k = keyIndex.get(shard)
          if (k === undefined) {
            keys.push(inboxStream(group, shard))
            k = keys.length
            keyIndex.set(shard, k)
          }
          args.push(k, parts[i]!.payload)
        }
        const reply = await redis.client.eval(APPEND_SCRIPT, keys.length, ...keys, ...args)
        if (!Array.isArray(reply) || reply.length !== indexes.length) throw new Error(`unexpected reply to the append script: ${String(reply)}`)
        return reply.map(Number)
      },
      catch: (cause) => fail(`${redis.endpoint}: ${text(cause)}`, cause)
    }).pipe(
      Effect.timeoutOrElse({
        duration: FORWARD_TIMEOUT_MS,
        orElse: () => Effect.fail(fail(`no reply from ${redis.endpoint} within ${FORWARD_TIMEOUT_MS / 1000}s`))
      })
    )

  const refuse = (parts: ReadonlyArray<Part>, indexes: ReadonlyArray<number>, waitedMs: number) =>
    Effect.suspend(() => {
      for (let n = 0; n < indexes.length; n++) stats.refuse("inbox_full")
      // The router counts every part of a successful forward as forwarded; these were not.
      stats.forwarded -= indexes.length
      const shards = Array.from(new Set(indexes.map((i) => parts[i]!.shard))).sort((a, b) => a - b)
      const fresh = shards.filter((s) => !stuck.has(s))
      for (const s of shards) stuck.add(s)
      const line = `${indexes.length} command(s) for shard(s) ${shards.join(", ")} refused (inbox_full): ` +
        `${shards.map((s) => inboxStream(group, s)).join(", ")} holds ${options.inboxLimit} unsent commands` +
        (waitedMs > 0 ? ` and took none for ${Math.round(waitedMs / 1000)}s` : "") +
        `; is a gateway process running ${shards.length === 1 ? "that shard" : "those shards"} and connected to Discord?`
      // Once per inbox becoming stuck as a warning; while it stays stuck, quieter.
      return fresh.length > 0 ? Effect.logWarning(line) : Effect.logDebug(line)
    })

  const forward = (parts: ReadonlyArray<Part>) =>
    Effect.gen(function*() {
      if (!redis.ready()) return yield* Effect.fail(fail(`not connected to ${redis.endpoint} (${redis.status()})`))
      let appended = done.get(parts)
      if (appended === undefined) done.set(parts, appended = new Set())
      let lastProgress = yield* Clock.currentTimeMillis
      for (;;) {
        const rest: Array<number> = []
        for (let i = 0; i < parts.length; i++) if (!appended.has(i)) rest.push(i)
        if (rest.length === 0) return
        const result = yield* appendOnce(parts, rest)
        const now = yield* Clock.currentTimeMillis
        const full: Array<number> = []
        for (let n = 0; n < rest.length; n++) {
          if (result[n] === 1) {
            appended.add(rest[n]!)
            stuck.delete(parts[rest[n]!]!.shard)
            lastProgress = now
          } else full.push(rest[n]!)
        }
        if (full.length === 0) return
        const waited = now - lastProgress
        // Refused now: parts for inboxes already known stuck, or all of them once the wait is over.
        const refused = waited >= options.stuckAfterMs ? full : full.filter((i) => stuck.has(parts[i]!.shard))
        if (refused.length > 0) {
          yield* refuse(parts, refused, waited >= options.stuckAfterMs ? waited : 0)
          for (const i of refused) appended.add(i)
          continue
        }
        yield* Effect.sleep(options.pollMs)
      }
    })

  return CommandForwarder.of({ broker: "redis", forward })
}

export const RedisForwarderLive: Layer.Layer<CommandForwarder, never, AppConfig | ShardPlan | RedisClient | CommandStats> = Layer.effect(
  CommandForwarder,
  Effect.gen(function*() {
    const config = yield* AppConfig
    const plan = yield* ShardPlan
    const stats = yield* CommandStats
    // A later generation's inboxes are named apart (resharding): see inboxNamespace.
    return makeRedisForwarder(yield* RedisClient, inboxNamespace(config.broker.group, plan.generation), defaultRedisForwarderOptions(stats))
  })
)
