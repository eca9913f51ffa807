// Commands from Redis Streams.
//
// Bots XADD commands to the stream SEND (field `data`). Every gateway process reads SEND through
// the consumer group [broker] group, so each entry goes to one of them, which only routes it: it
// appends the payload for each target shard to that shard's inbox stream and then XACKs the SEND
// entry. The process that runs a shard reads its inbox with the same group and XACKs (and
// XDELs) an inbox entry once the payload was written to Discord. A shard's backlog therefore
// waits in Redis, not in memory, and a shard that is reconnecting delays only its own commands.
//
// An entry stays pending in the group while its process works on it. If the process dies, the
// entries it held are claimed by a running process (XAUTOCLAIM) once nobody has touched them for
// RECLAIM_IDLE_MS, and a process keeps touching the entries it holds (XCLAIM to itself) so that
// commands merely waiting for a shard's send budget are not claimed away. A process that stops
// hands the SEND entries it was given and did not forward on at once (as below), so a rolling
// restart does not hold commands back for RECLAIM_IDLE_MS.
//
// SEND entries are forwarded by a fiber of their own. While it waits (an inbox is full: see
// RedisForwarder.ts), SEND is not read any further, so a flood waits in SEND, where Redis keeps
// it, instead of being trimmed away or piling up in memory; the inboxes are read all along.
//
// The inboxes read are those of the shards this process runs now (ShardOwnership). When a shard
// leaves, its inbox is no longer read, its jobs still queued here are dropped unacknowledged, and
// the entries this process held for it are handed to the next one at once: claimed to ourselves
// with a long idle time (XCLAIM ... IDLE), so the next owner's XAUTOCLAIM takes them right away
// instead of after RECLAIM_IDLE_MS. When a shard arrives, what its inbox has pending that way is
// taken over first (XAUTOCLAIM), then its inbox is read with the others.
import { randomBytes } from "node:crypto"
import { hostname } from "node:os"
import { Deferred, Effect, Layer, Queue, type Scope, Semaphore } from "effect"
import { Cluster, type Redis } from "ioredis"
import { AppConfig } from "../Config/AppConfig.ts"
import { ShardPlan } from "../Cluster/ShardPlan.ts"
import { RedisClient, type RedisConnection, redisErrorText } from "../Redis/RedisClient.ts"
import { ShardOwnership } from "../Cluster/ShardOwnership.ts"
import { CommandRouter, describeOwned } from "./Router.ts"
import { BrokerCommandSource, type CommandSource } from "./CommandSource.ts"
import { backoffDelayMs, Backoffs } from "../Resilience/Backoff.ts"
import { outageLog } from "../Resilience/OutageLog.ts"
import { forkSupervised } from "../Resilience/Supervisor.ts"
import { inboxNamespace, inboxStream, SEND_STREAM } from "./RedisNames.ts"
import { refusal } from "./Refusal.ts"
import type { Part } from "./Targets.ts"

export interface RedisCommandOptions {
  readonly group: string
  /** Unique per process: pending entries are tracked per consumer. */
  readonly consumer: string
  /** An entry pending this long without its holder touching it is taken over. */
  readonly reclaimIdleMs: number
  readonly reclaimEveryMs: number
  /** How often a process touches the entries it holds; well below reclaimIdleMs. */
  readonly keepAliveEveryMs: number
  /** XREADGROUP BLOCK time: also how quickly a shard whose backlog cleared is read again. */
  readonly blockMs: number
  /** The shards' generation (resharding): its inboxes are named apart. 0 when absent. */
  readonly generation?: number | undefined
}

export const RECLAIM_IDLE_MS = 60_000

export const defaultRedisCommandOptions = (group: string): RedisCommandOptions => ({
  group,
  consumer: `${hostname()}:${process.pid}:${randomBytes(3).toString("hex")}`,
  reclaimIdleMs: RECLAIM_IDLE_MS,
  reclaimEveryMs: 15_000,
  keepAliveEveryMs: 10_000,
  blockMs: 2_000
})

/** Entries taken per stream per read. */
const READ_COUNT = 100
/** Inbox entries a shard may hold (taken, not yet acknowledged) before its inbox is no longer read. */
export const INBOX_WINDOW = 200
/** Idle consumers (nothing pending) older than this are removed from the group. */
const CONSUMER_MAX_IDLE_MS = 3_600_000
const READ_TIMEOUT_MARGIN_MS = 10_000
const COMMAND_TIMEOUT_MS = 10_000

/** While a SEND batch is being forwarded, the reader waits this long for it before reading the inboxes alone. */
const SEND_BUSY_WAIT_MS = 250

/**
 * The idle time handed-off entries get: above any reclaim idle time, so the next owner takes them
 * at once, and below the clock (Redis turns an IDLE reaching before the epoch into zero).
 */
export const HANDED_OFF_IDLE_MS = 86_400_000

// Touches the given ids if, and only if, they are still pending for this consumer, atomically,
// so a keep-alive never takes back an entry another process has reclaimed. Returns one status
// per id: "" (still ours, touched), the name of the consumer now holding it (taken over), or
// "!" (pending for nobody: acknowledged by whoever took it over, or deleted from the stream).
const KEEP_ALIVE_SCRIPT = `
local kept = {}
local status = {}
for i = 3, #ARGV do
  local pending = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)
  if #pending == 0 then
    status[#status + 1] = '!'
  elseif pending[1][2] == ARGV[2] then
    kept[#kept + 1] = ARGV[i]
    status[#status + 1] = ''
  else
    status[#status + 1] = pending[1][2]
  end
end
if #kept > 0 then
  local args = {'XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0}
  for _, id in ipairs(kept) do args[#args + 1] = id end
  args[#args + 1] = 'JUSTID'
  redis.call(unpack(args))
end
return status
`

// Gives the given ids, those still pending for this consumer only (atomically, as above), a long
// idle time (ARGV[3]) so that whoever runs their shard next takes them over at once. Returns how
// many were handed off.
const HAND_OFF_SCRIPT = `
local kept = {}
for i = 4, #ARGV do
  local pending = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)
  if #pending > 0 and pending[1][2] == ARGV[2] then kept[#kept + 1] = ARGV[i] end
end
if #kept > 0 then
  local args = {'XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0}
  for _, id in ipairs(kept) do args[#args + 1] = id end
  args[#args + 1] = 'IDLE'
  args[#args + 1] = ARGV[3]
  args[#args + 1] = 'JUSTID'
  redis.call(unpack(args))
end
return #kept
`

interface Entry {
  readonly id: string
  /** undefined: the entry was deleted (trimmed) while pending, or has no `data` field. */
  readonly data: Buffer | undefined
  readonly deleted: boolean
}

const asString = (value: unknown): string => (Buffer.isBuffer(value) ? value.toString("utf8") : String(value))

/** `[[id, [field, value, ...] | null], ...]` as returned by XREADGROUP / XAUTOCLAIM (buffers). */
const parseEntries = (raw: unknown): Array<Entry> => {
  if (!Array.isArray(raw)) return []
  const entries: Array<Entry> = []
  for (const item of raw) {
    if (!Array.isArray(item)) continue
    const id = asString(item[0])
    const fields = item[1]
    if (!Array.isArray(fields)) {
      entries.push({ id, data: undefined, deleted: true })
      continue
    }
    let data: Buffer | undefined
    for (let i = 0; i + 1 < fields.length; i += 2) {
      if (asString(fields[i]) === "data") data = Buffer.isBuffer(fields[i + 1]) ? fields[i + 1] : Buffer.from(asString(fields[i + 1]))
    }
    entries.push({ id, data, deleted: false })
  }
  return entries
}

/**
 * XREADGROUP's reply as [stream, entries] pairs. Under RESP2 it is a list of pairs; under RESP3
 * (which ioredis 6 may negotiate) a map, which a raw `call` hands back flattened.
 */
const streamReplies = (reply: unknown): Array<readonly [string, unknown]> => {
  if (!Array.isArray(reply)) return []
  if (reply.length > 0 && Array.isArray(reply[0])) return reply.map((pair: Array<unknown>) => [asString(pair[0]), pair[1]] as const)
  const pairs: Array<readonly [string, unknown]> = []
  for (let i = 0; i + 1 < reply.length; i += 2) pairs.push([asString(reply[i]), reply[i + 1]])
  return pairs
}

const withTimeout = <A>(what: string, ms: number, promise: () => Promise<A>) =>
  // ioredis's own words ("Reached the max retries per request limit ...") become ours.
  Effect.tryPromise({ try: promise, catch: redisErrorText }).pipe(
    Effect.timeoutOrElse({ duration: ms, orElse: () => Effect.fail(`no reply to ${what} within ${ms / 1000}s`) })
  )

type ClusterOverrides = NonNullable<Parameters<Cluster["duplicate"]>[1]>

/** A separate connection for XREADGROUP BLOCK: the shared client's socket timeout would cut it. */
const blockingClient = (redis: RedisConnection): Effect.Effect<Redis | Cluster, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync(() => {
      // No spaces: Redis refuses them in client names.
      const connectionName = "spectacles-gateway-commands"
      const client: Redis | Cluster = redis.client instanceof Cluster
        ? redis.client.duplicate(undefined, {
          redisOptions: { ...redis.client.options.redisOptions, socketTimeout: undefined, connectionName }
        } as ClusterOverrides)
        : redis.client.duplicate({ socketTimeout: undefined, connectionName })
      // Failures surface as rejected reads; the reader logs them.
      client.on("error", () => undefined)
      return client
    }),
    (client) => Effect.sync(() => client.disconnect())
  )

export const makeRedisCommandSource = (redis: RedisConnection, options: RedisCommandOptions) =>
  Effect.gen(function*() {
    const router = yield* CommandRouter
    const ownership = yield* ShardOwnership
    const { group, consumer } = options
    const inboxGroup = inboxNamespace(group, options.generation)
    /** The inboxes of the shards run here now, by stream: what they deliver is routed to the shard. */
    const inboxes = new Map<string, number>()
    /** Inboxes read now: those above, once what was left pending in them is taken over. */
    const opened = new Set<string>()
    /** Shards that arrived and whose inbox is not opened yet, in order. */
    const arrivals = yield* Queue.unbounded<number>()
    for (const shard of ownership.owned()) {
      inboxes.set(inboxStream(inboxGroup, shard), shard)
      // Static shards are read from the start, as they always were; those of an automatic cluster
      // may have entries handed off by a process that ran them before.
      if (ownership.automatic) Queue.offerUnsafe(arrivals, shard)
      else opened.add(inboxStream(inboxGroup, shard))
    }
    /** SEND and the inboxes read now. */
    const streams = () => [SEND_STREAM, ...opened]
    /** Ids taken by this consumer and not yet acknowledged, per stream. */
    const held = new Map<string, Set<string>>()
    /** Ids whose acknowledgement is queued or in flight. */
    const acking = new Map<string, Set<string>>()
    const setIn = (map: Map<string, Set<string>>, stream: string) => {
      let set = map.get(stream)
      if (set === undefined) map.set(stream, set = new Set())
      return set
    }
    const ackQueue = yield* Queue.unbounded<{ readonly stream: string; readonly id: string }>()
    /** Keep-alives and hand-offs one at a time, so a keep-alive never touches what was just handed off. */
    const touching = Semaphore.makeUnsafe(1)
    const sendSource = `Redis stream ${SEND_STREAM}`

    const ack = (stream: string, id: string) =>
      Effect.sync(() => {
        setIn(acking, stream).add(id)
        Queue.offerUnsafe(ackQueue, { stream, id })
      })

    // ---- acknowledging (kept running after intake stops, until the shards are gone) ---------

    const writeAcks = (batch: ReadonlyArray<{ readonly stream: string; readonly id: string }>) =>
      withTimeout("XACK", COMMAND_TIMEOUT_MS, async () => {
        const byStream = new Map<string, Array<string>>()
        for (const { stream, id } of batch) {
          const ids = byStream.get(stream)
          if (ids) ids.push(id)
          else byStream.set(stream, [id])
        }
        const pipeline = redis.client.pipeline()
        for (const [stream, ids] of byStream) {
          pipeline.xack(stream, group, ...ids)
          // Inbox entries are this group's alone: delete them, so an inbox holds only its backlog.
          if (stream !== SEND_STREAM) pipeline.xdel(stream, ...ids)
        }
        const replies = await pipeline.exec()
        if (replies === null) throw new Error("the pipeline was discarded")
        for (const [error] of replies) {
          // The group or stream is gone (deleted, or Redis restarted empty): nothing left to ack.
          if (error && !error.message.includes("NOGROUP")) throw error
        }
      })

    const settle = (batch: ReadonlyArray<{ readonly stream: string; readonly id: string }>) => {
      for (const { stream, id } of batch) {
        held.get(stream)?.delete(id)
        acking.get(stream)?.delete(id)
      }
    }

    // Registered before the acker is forked, so it runs after the acker was interrupted.
    yield* Effect.addFinalizer(() =>
      Effect.gen(function*() {
        const rest = yield* Queue.clear(ackQueue)
        if (rest.length === 0) return
        yield* writeAcks(rest).pipe(
          Effect.catch((reason) => Effect.logWarning(`could not acknowledge ${rest.length} sent command(s) at shutdown (${reason}); they may be sent again`))
        )
      })
    )

    const ackOutage = outageLog("acknowledging commands in Redis")
    yield* forkSupervised(
      Effect.forever(
        Effect.gen(function*() {
          const batch = yield* Queue.takeAll(ackQueue)
          for (let attempt = 1;; attempt++) {
            const result = yield* Effect.result(writeAcks(batch))
            if (result._tag === "Success") break
            yield* ackOutage.failed(result.failure)
            yield* Effect.sleep(backoffDelayMs(Backoffs.brokerOutage, attempt, Math.random()))
          }
          yield* ackOutage.succeeded
          settle(batch)
        })
      ),
      { name: "redis command acknowledgements" }
    )

    // Keep-alive: touch what we hold so it is not reclaimed while it waits for its shard.
    yield* forkSupervised(
      Effect.forever(
        Effect.gen(function*() {
          yield* Effect.sleep(options.keepAliveEveryMs)
          for (const [stream, ids] of held) {
            const pending = acking.get(stream) ?? new Set<string>()
            const mine = Array.from(ids).filter((id) => !pending.has(id))
            for (let i = 0; i < mine.length; i += 500) {
              let chunk = mine.slice(i, i + 500)
              // Not what was handed off meanwhile: touching it would make its next owner wait.
              const status = yield* touching.withPermits(1)(Effect.suspend(() => {
                chunk = chunk.filter((id) => ids.has(id) && !pending.has(id))
                if (chunk.length === 0) return Effect.succeed(undefined)
                return withTimeout("EVAL", COMMAND_TIMEOUT_MS, () => redis.client.eval(KEEP_ALIVE_SCRIPT, 1, stream, group, consumer, ...chunk)).pipe(
                  Effect.catch((reason) => Effect.as(Effect.logDebug(`keeping ${stream} entries failed: ${reason}`), undefined))
                )
              }))
              if (!Array.isArray(status) || status.length !== chunk.length) continue
              // Only what is still ours to lose: acknowledged meanwhile by this process is fine.
              const takenBy = new Map<string, number>()
              let vanished = 0
              for (let n = 0; n < chunk.length; n++) {
                const id = chunk[n]!
                const holder = asString(status[n])
                if (holder === "" || !ids.has(id) || pending.has(id)) continue
                ids.delete(id)
                if (holder === "!") vanished++
                else takenBy.set(holder, (takenBy.get(holder) ?? 0) + 1)
              }
              for (const [holder, n] of takenBy) {
                yield* Effect.logWarning(
                  `${n} command(s) of ${stream} were taken over by gateway process ${holder} while this one held them ` +
                    `(was it stalled for over ${options.reclaimIdleMs / 1000}s?); those not yet sent are dropped here, those already sent may be sent twice`
                )
              }
              if (vanished > 0) {
                yield* Effect.logWarning(
                  `${vanished} command(s) of ${stream} held by this process are no longer pending for anyone: deleted from the stream ` +
                    `(by XDEL, XTRIM or a Redis that lost its data) or taken over and finished by another gateway process; those not yet sent are dropped here`
                )
              }
            }
          }
        })
      ),
      { name: "redis command keep-alive" }
    )

    // ---- routing what was read or reclaimed ---------------------------------------------------

    /** SEND batches read or reclaimed, waiting for the forwarding fiber, and the one it works on. */
    const sendBatches = yield* Queue.unbounded<{ readonly entries: ReadonlyArray<Entry>; readonly done: Deferred.Deferred<void> }>()
    let sendBusy = 0
    let lastSendDone: Deferred.Deferred<void> | undefined

    const routeSend = (entries: ReadonlyArray<Entry>) =>
      Effect.gen(function*() {
        const stream = SEND_STREAM
        const mine = setIn(held, stream)
        const routed: Array<string> = []
        const parts: Array<Part> = []
        for (const entry of entries) {
          if (entry.data === undefined) {
            if (!entry.deleted) yield* router.refuse(refusal("malformed", `a ${SEND_STREAM} entry needs a "data" field`), sendSource, "")
            yield* ack(stream, entry.id)
            continue
          }
          const command = yield* router.decode(entry.data, sendSource)
          if (command === undefined) {
            yield* ack(stream, entry.id)
            continue
          }
          for (const part of router.parts(command)) parts.push(part)
          routed.push(entry.id)
        }
        // Every target, local or not, goes to its shard's inbox; then the SEND entries are done.
        // Unless they were taken over meanwhile: their new holder forwards them.
        const forwarded = yield* router.forward(parts, () => routed.some((id) => mine.has(id)))
        if (forwarded) for (const id of routed) yield* ack(stream, id)
      })

    // One batch at a time, in the order read: waits while an inbox is full (backpressure).
    const sendForwarder = Effect.forever(
      Effect.gen(function*() {
        const batch = yield* Queue.take(sendBatches)
        yield* routeSend(batch.entries).pipe(
          Effect.ensuring(Effect.sync(() => {
            sendBusy--
            Deferred.doneUnsafe(batch.done, Effect.void)
          }))
        )
      })
    )

    const handle = (stream: string, entries: ReadonlyArray<Entry>) =>
      Effect.gen(function*() {
        if (entries.length === 0) return
        // Read or taken over while its shard was leaving: straight on to the shard's next process.
        if (stream !== SEND_STREAM && !inboxes.has(stream)) return yield* handOff(stream, entries.map((e) => e.id))
        const mine = setIn(held, stream)
        for (const entry of entries) mine.add(entry.id)
        if (stream === SEND_STREAM) {
          const done = Deferred.makeUnsafe<void>()
          sendBusy++
          lastSendDone = done
          Queue.offerUnsafe(sendBatches, { entries, done })
          return
        }
        const shard = inboxes.get(stream)!
        const source = `Redis inbox of shard ${shard}`
        for (const entry of entries) {
          const payload = entry.data === undefined ? undefined : yield* router.decodeRouted(entry.data, source)
          if (payload === undefined) {
            yield* ack(stream, entry.id)
            continue
          }
          const id = entry.id
          router.sendLocal(shard, { payload, sent: ack(stream, id), wanted: () => mine.has(id) })
        }
      })

    // ---- shards arriving and leaving -----------------------------------------------------------

    function handOff(stream: string, list: ReadonlyArray<string>, to = "the shard's next gateway process") {
      return touching.withPermits(1)(Effect.gen(function*() {
        let handed = 0
        for (let i = 0; i < list.length; i += 500) {
          const chunk = list.slice(i, i + 500)
          const n = yield* withTimeout("EVAL", COMMAND_TIMEOUT_MS, () => redis.client.eval(HAND_OFF_SCRIPT, 1, stream, group, consumer, HANDED_OFF_IDLE_MS, ...chunk))
          handed += Number(n)
        }
        if (handed > 0) yield* Effect.logInfo(`handed ${handed} pending command(s) of ${stream} on to ${to}`)
      })).pipe(
        Effect.catch((reason) =>
          Effect.logWarning(
            `could not hand ${list.length} pending command(s) of ${stream} on to ${to} (${reason}); ` +
              `it takes them over once they were idle for ${options.reclaimIdleMs / 1000}s`
          )
        )
      )
    }

    yield* ownership.watch({
      acquired: (shard) =>
        Effect.sync(() => {
          inboxes.set(inboxStream(inboxGroup, shard), shard)
          Queue.offerUnsafe(arrivals, shard)
        }),
      releasing: (shard) =>
        Effect.gen(function*() {
          const stream = inboxStream(inboxGroup, shard)
          inboxes.delete(stream)
          opened.delete(stream)
          // A read still blocking on the inbox may yet deliver entries to this process: end it
          // and wait for them (`handle` hands them straight on), so the next owner finds them.
          const read = reading
          if (read !== undefined && read.names.includes(stream)) {
            if (blocking.id !== undefined) {
              const id = String(blocking.id)
              yield* withTimeout("CLIENT UNBLOCK", COMMAND_TIMEOUT_MS, () => redis.client.call("CLIENT", ["UNBLOCK", id])).pipe(Effect.ignore)
            }
            yield* Effect.timeoutOption(Deferred.await(read.done), options.blockMs + READ_TIMEOUT_MARGIN_MS)
          }
          const mine = held.get(stream)
          if (mine === undefined) return
          const acked = setIn(acking, stream)
          // Their jobs are no longer wanted (not sent, not kept alive), and the queue is emptied.
          const unsent = Array.from(mine).filter((id) => !acked.has(id))
          for (const id of unsent) mine.delete(id)
          // A job found wanted just before may be between its write to Discord and its
          // acknowledgement (synchronous, but its fiber may have yielded): let it get there.
          yield* Effect.yieldNow
          const left = unsent.filter((id) => !acked.has(id))
          if (left.length > 0) yield* handOff(stream, left)
        })
    })

    // ---- intake: group setup, the blocking reader and the reclaimer ---------------------------

    /** The XREADGROUP in flight: a leaving shard's inbox may be in it. */
    let reading: { readonly names: ReadonlyArray<string>; readonly done: Deferred.Deferred<void> } | undefined
    /** The blocking connection's CLIENT ID (standalone Redis), once known. */
    const blocking: { id: number | undefined } = { id: undefined }

    /** Streams whose group is known to exist (forgotten on NOGROUP: Redis may have restarted empty). */
    const groupsReady = new Set<string>()
    const ensureGroups = (streams: ReadonlyArray<string>) =>
      withTimeout("XGROUP CREATE", COMMAND_TIMEOUT_MS, async () => {
        const pipeline = redis.client.pipeline()
        // SEND from its end: a new group does not replay commands other groups left there. An inbox
        // from its start: everything in it was forwarded to this group, possibly before it existed.
        for (const stream of streams) pipeline.xgroup("CREATE", stream, group, stream === SEND_STREAM ? "$" : "0", "MKSTREAM")
        const replies = await pipeline.exec()
        if (replies === null) throw new Error("the pipeline was discarded")
        for (const [error] of replies) if (error && !error.message.includes("BUSYGROUP")) throw error
      }).pipe(Effect.tap(() => Effect.sync(() => streams.forEach((s) => groupsReady.add(s)))))
    const ensureAllGroups = Effect.suspend(() => {
      const missing = streams().filter((s) => !groupsReady.has(s))
      return missing.length === 0 ? Effect.void : ensureGroups(missing)
    })

    const inboxRoom = (stream: string) => INBOX_WINDOW - setIn(held, stream).size

    const reader = Effect.gen(function*() {
      const client = yield* blockingClient(redis)
      // A new connection has a new id.
      client.on("ready", () => void (blocking.id = undefined))
      const outage = outageLog(`reading commands from Redis at ${redis.endpoint}`)
      let announced = false
      const readOnce = Effect.gen(function*() {
        // Dialled on first use (lazyConnect); afterwards ioredis redials by itself.
        if (client.status === "wait" || client.status === "end") yield* withTimeout("connect", COMMAND_TIMEOUT_MS, () => client.connect())
        yield* ensureAllGroups
        if (!announced) {
          announced = true
          yield* Effect.logInfo(
            `reading commands from Redis stream ${SEND_STREAM} (group ${group}, consumer ${consumer}) and the inboxes of ` +
              (ownership.automatic ? `the shards this process runs (now: ${describeOwned(ownership.owned())})` : `shard(s) ${describeOwned(ownership.owned())}`)
          )
        }
        // A SEND batch still being forwarded: usually a matter of milliseconds; if it takes longer
        // (an inbox is full), SEND is left unread until it is done, while the inboxes are read.
        if (sendBusy > 0 && lastSendDone !== undefined) yield* Effect.timeoutOption(Deferred.await(lastSendDone), SEND_BUSY_WAIT_MS)
        const readSend = sendBusy === 0
        const names = streams().filter((s) => s === SEND_STREAM ? readSend : inboxRoom(s) >= READ_COUNT)
        if (names.length === 0) return yield* Effect.sleep(SEND_BUSY_WAIT_MS)
        // Without SEND in the read, block briefly: SEND is to be read again as soon as it may.
        const blockMs = readSend ? options.blockMs : Math.min(options.blockMs, SEND_BUSY_WAIT_MS)
        const args: Array<string | number> = ["GROUP", group, consumer, "COUNT", READ_COUNT, "BLOCK", blockMs, "STREAMS", ...names]
        for (let i = 0; i < names.length; i++) args.push(">")
        // Standalone: the connection's id, so a leaving shard can cut the wait short (CLIENT UNBLOCK).
        if (!(client instanceof Cluster) && blocking.id === undefined) {
          blocking.id = Number(yield* withTimeout("CLIENT ID", COMMAND_TIMEOUT_MS, () => client.client("ID")))
        }
        const done = Deferred.makeUnsafe<void>()
        reading = { names, done }
        yield* Effect.gen(function*() {
          const reply = yield* withTimeout("XREADGROUP", blockMs + READ_TIMEOUT_MARGIN_MS, () => client.callBuffer("XREADGROUP", args)).pipe(
            Effect.tapError(() =>
              Effect.sync(() => {
                // A reply that never comes: start over on a fresh connection.
                if (client.status === "ready") client.disconnect(true)
              })
            )
          )
          yield* outage.succeeded
          for (const [stream, entries] of streamReplies(reply)) yield* handle(stream, parseEntries(entries))
        }).pipe(Effect.ensuring(Effect.sync(() => {
          reading = undefined
          Deferred.doneUnsafe(done, Effect.void)
        })))
      })
      for (let attempt = 1;;) {
        const result = yield* Effect.result(readOnce)
        if (result._tag === "Success") {
          attempt = 1
          continue
        }
        if (result.failure.includes("NOGROUP")) groupsReady.clear()
        yield* outage.failed(result.failure)
        yield* Effect.sleep(backoffDelayMs(Backoffs.redial, attempt++, Math.random()))
      }
    }).pipe(Effect.scoped)

    /** Takes over what was left pending in the stream for reclaimIdleMs (or handed off); how many. */
    const reclaimStream = (stream: string) =>
      Effect.gen(function*() {
        let room = stream === SEND_STREAM ? 5 * READ_COUNT : inboxRoom(stream)
        let cursor = "0-0"
        let claimed = 0
        while (room > 0) {
          const reply = yield* withTimeout("XAUTOCLAIM", COMMAND_TIMEOUT_MS, () =>
            redis.client.callBuffer("XAUTOCLAIM", [stream, group, consumer, options.reclaimIdleMs, cursor, "COUNT", Math.min(room, READ_COUNT)]))
          if (!Array.isArray(reply)) break
          const entries = parseEntries(reply[1]).filter((e) => !setIn(held, stream).has(e.id))
          claimed += entries.length
          room -= Math.max(1, entries.length)
          yield* handle(stream, entries)
          cursor = asString(reply[0])
          if (cursor === "0-0") break
        }
        return claimed
      })

    const reclaimOnce = Effect.gen(function*() {
      for (const stream of streams()) {
        // SEND waits, like the reader, while a batch of it is still being forwarded.
        if (stream === SEND_STREAM && sendBusy > 0) continue
        if (!groupsReady.has(stream)) continue
        const claimed = yield* reclaimStream(stream)
        if (claimed > 0) yield* Effect.logInfo(`took over ${claimed} command(s) in ${stream} left pending by a gateway process that stopped`)
      }
    })

    // An arriving shard: its group, then what a previous process handed off (or left idle long
    // enough), then its inbox joins the reads. Retried through outages while the shard stays.
    const openInbox = (shard: number) =>
      Effect.gen(function*() {
        const stream = inboxStream(inboxGroup, shard)
        if (inboxes.get(stream) !== shard || opened.has(stream)) return
        if (!groupsReady.has(stream)) yield* ensureGroups([stream])
        const claimed = yield* reclaimStream(stream)
        if (inboxes.get(stream) !== shard) return
        opened.add(stream)
        yield* Effect.logInfo(
          `reading the command inbox of shard ${shard}` + (claimed > 0 ? `; took over ${claimed} command(s) its previous gateway process left pending` : "")
        )
      })

    const opener = Effect.forever(
      Effect.gen(function*() {
        const shard = yield* Queue.take(arrivals)
        for (let attempt = 1;; attempt++) {
          const result = yield* Effect.result(openInbox(shard))
          if (result._tag === "Success") break
          if (result.failure.includes("NOGROUP")) groupsReady.clear()
          yield* Effect.logWarning(`opening the command inbox of shard ${shard} failed (${result.failure}); retrying`)
          yield* Effect.sleep(backoffDelayMs(Backoffs.redial, attempt, Math.random()))
        }
      })
    )

    const forgetIdleConsumers = Effect.gen(function*() {
      for (const stream of streams()) {
        const info = yield* withTimeout("XINFO CONSUMERS", COMMAND_TIMEOUT_MS, () => redis.client.call("XINFO", ["CONSUMERS", stream, group]))
        if (!Array.isArray(info)) continue
        for (const row of info) {
          if (!Array.isArray(row)) continue
          const fields = new Map<string, unknown>()
          for (let i = 0; i + 1 < row.length; i += 2) fields.set(asString(row[i]), row[i + 1])
          const name = asString(fields.get("name"))
          if (name === consumer || Number(fields.get("pending")) !== 0 || Number(fields.get("idle")) < CONSUMER_MAX_IDLE_MS) continue
          yield* withTimeout("XGROUP DELCONSUMER", COMMAND_TIMEOUT_MS, () => redis.client.call("XGROUP", ["DELCONSUMER", stream, group, name]))
        }
      }
    })

    const reclaimer = Effect.gen(function*() {
      for (let round = 0;; round++) {
        if (groupsReady.has(SEND_STREAM)) {
          yield* reclaimOnce.pipe(
            Effect.catch((reason) => {
              if (reason.includes("NOGROUP")) groupsReady.clear()
              return Effect.logDebug(`reclaiming commands failed: ${reason}`)
            })
          )
          if (round % 20 === 0) yield* forgetIdleConsumers.pipe(Effect.catch((reason) => Effect.logDebug(`removing idle consumers failed: ${reason}`)))
        }
        yield* Effect.sleep(options.reclaimEveryMs)
      }
    })

    /**
     * Stopping: SEND entries Redis gave this process that it did not forward (a read answered as it
     * was interrupted, a batch not forwarded yet) would wait reclaimIdleMs for another process.
     * Handed off, the next reclaim round of any other process takes them.
     */
    const handOffOwnSend = Effect.gen(function*() {
      if (!groupsReady.has(SEND_STREAM)) return
      const reply = yield* withTimeout("XPENDING", COMMAND_TIMEOUT_MS, () => redis.client.xpending(SEND_STREAM, group, "-", "+", 10_000, consumer))
      const ids = Array.isArray(reply) ? reply.flatMap((row) => (Array.isArray(row) ? [asString(row[0])] : [])) : []
      if (ids.length > 0) yield* handOff(SEND_STREAM, ids, "the group's other gateway processes (this one is stopping)")
    }).pipe(Effect.catch((reason) => Effect.logWarning(`could not hand this process's pending ${SEND_STREAM} commands on (${reason}); another process takes them over once they were idle for ${options.reclaimIdleMs / 1000}s`)))

    return {
      name: "redis",
      run: Effect.all([reader, reclaimer, sendForwarder, opener], { concurrency: 4, discard: true }).pipe(Effect.onExit(() => handOffOwnSend))
    } satisfies CommandSource
  })

export const RedisCommandSourceLive = (options?: Partial<RedisCommandOptions>) =>
  Layer.effect(
    BrokerCommandSource,
    Effect.gen(function*() {
      const config = yield* AppConfig
      const plan = yield* ShardPlan
      const redis = yield* RedisClient
      return {
        source: yield* makeRedisCommandSource(redis, { ...defaultRedisCommandOptions(config.broker.group), generation: plan.generation, ...options })
      }
    })
  )
