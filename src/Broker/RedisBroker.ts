// Events into Redis Streams: one stream per event name (MESSAGE_CREATE, GUILD_CREATE, ...), one
// entry per event with the fields `data` (the payload's `d`), `shard` and `seq`. A batch goes out
// as one pipeline (one per stream on a Cluster, where a pipeline cannot span hash slots) and
// counts as published only when Redis answered every XADD with an entry id.
//
// Fenced publishes (events read under a shard lease, epoch > 0): each stream's entries go as one
// script (RedisFence.ts FENCED_XADD) that adds those whose epoch is still current for their shard
// and refuses the others, in the same round trip; the scripts of a batch share one pipeline (on a
// Cluster, each goes to its stream's node). The entries, their fields and trimming are the same.
import { Context, Effect, Layer } from "effect"
import { AppConfig } from "../Config/AppConfig.ts"
import type { PayloadEncoding } from "../Config/GatewayConfig.ts"
import { KNOWN_DISPATCH_EVENTS } from "../Discord/Events.ts"
import { RedisClient, type RedisConnection, redisErrorText } from "../Redis/RedisClient.ts"
import { allPublished, Broker, BrokerError, type Published, publishAttempt } from "./Broker.ts"
import type { DispatchEvent } from "./DispatchEvent.ts"
import { encodeData } from "./Encoding.ts"
import { PublishFence } from "./Fence.ts"
import { evalScript, FENCED_XADD, fenceKey, isNoScript, makeRedisFence, queueScript, type ScriptArg } from "./RedisFence.ts"

/** Length cap per stream when messages never expire (message_timeout = 0), trimmed approximately. */
export const DEFAULT_STREAM_MAX_LENGTH = 100_000
/** A batch without a complete answer by then is a failure (the event path retries it). */
export const PUBLISH_TIMEOUT_MS = 15_000

export interface RedisBrokerOptions {
  readonly encoding: PayloadEncoding
  /** Entries older than this are trimmed (approximately); 0 trims by `maxLength` instead. */
  readonly messageTimeoutMs: number
  readonly maxLength: number
  /** Prefix of the fence hashes' keys ([shard_store] prefix); "gateway:" when not given. */
  readonly fencePrefix?: string
  /** Where the broker notes each stream it published fenced events to (the fence raises them too). */
  readonly publishedStreams?: Set<string>
}

const fail = (reason: string, cause?: unknown) => new BrokerError({ broker: "redis", reason, cause })

/** Milliseconds part of a stream entry id ("1712345678901-0"). */
const idTime = (id: unknown): number | undefined => {
  if (typeof id !== "string") return undefined
  const ms = Number.parseInt(id, 10)
  return Number.isFinite(ms) ? ms : undefined
}

export const makeRedisBroker = (redis: RedisConnection, options: RedisBrokerOptions) => {
  // The newest entry time Redis itself assigned, per stream. Age trimming is computed from it
  // rather than from our clock, so a skew between this host and Redis cannot trim fresh events.
  // Until a stream's first reply is known its first XADD is left untrimmed.
  const lastIdTime = new Map<string, number>()

  const trim = (stream: string): ReadonlyArray<string> => {
    if (options.messageTimeoutMs <= 0) return ["MAXLEN", "~", String(options.maxLength)]
    const last = lastIdTime.get(stream)
    return last === undefined ? [] : ["MINID", "~", `${Math.max(0, last - options.messageTimeoutMs)}-0`]
  }

  const encoding = options.encoding
  const body = encoding === "json" ? (e: DispatchEvent): Buffer => e.data : (e: DispatchEvent) => encodeData(encoding, e)

  const fencePrefix = options.fencePrefix ?? "gateway:"
  const publishedStreams = options.publishedStreams ?? new Set<string>()

  /** Notes the id Redis gave an entry of `stream` (for age trimming). */
  const sawId = (stream: string, id: unknown): void => {
    const time = idTime(id)
    if (time === undefined) throw new Error(`XADD ${stream}: unexpected reply ${String(id)}`)
    if (time > (lastIdTime.get(stream) ?? 0)) lastIdTime.set(stream, time)
  }

  const sendGroup = async (events: ReadonlyArray<DispatchEvent>): Promise<void> => {
    const pipeline = redis.client.pipeline()
    for (const e of events) {
      pipeline.xadd(e.t, ...trim(e.t), "*", "data", body(e), "shard", String(e.shard), "seq", String(e.seq))
    }
    const replies = await pipeline.exec()
    if (replies === null || replies.length !== events.length) throw new Error("the pipeline was discarded")
    for (let i = 0; i < replies.length; i++) {
      const [error, id] = replies[i]!
      if (error) throw new Error(`XADD ${events[i]!.t}: ${error.message}`)
      sawId(events[i]!.t, id)
    }
  }

  const byStream = (batch: ReadonlyArray<DispatchEvent>): Map<string, Array<DispatchEvent>> => {
    const groups = new Map<string, Array<DispatchEvent>>()
    for (const e of batch) {
      const group = groups.get(e.t)
      if (group) group.push(e)
      else groups.set(e.t, [e])
    }
    return groups
  }

  // One stream's entries as FENCED_XADD's keys and arguments.
  const scriptCall = (stream: string, events: ReadonlyArray<DispatchEvent>) => {
    const [kind = "", , threshold = ""] = trim(stream)
    const args: Array<ScriptArg> = [kind, threshold]
    for (const e of events) args.push(String(e.shard), String(e.epoch), body(e), String(e.seq))
    return { keys: [stream, fenceKey(stream, fencePrefix)], args }
  }

  /** Reads one script's answer: the last id added (or null), then the 1-based positions of refused entries. */
  const settleScript = (stream: string, events: ReadonlyArray<DispatchEvent>, reply: unknown, refused: Array<DispatchEvent>): void => {
    const unexpected = () => new Error(`fenced XADD ${stream}: unexpected reply ${JSON.stringify(reply)}`)
    if (!Array.isArray(reply) || reply.length === 0) throw unexpected()
    for (let i = 1; i < reply.length; i++) {
      const event = events[Number(reply[i]) - 1]
      if (event === undefined) throw unexpected()
      refused.push(event)
    }
    // No id only when every entry was refused.
    if (reply[0] !== null) sawId(stream, reply[0])
    else if (reply.length - 1 !== events.length) throw unexpected()
  }

  const sendFenced = async (batch: ReadonlyArray<DispatchEvent>): Promise<Published> => {
    const groups = byStream(batch)
    const refused: Array<DispatchEvent> = []
    const calls = Array.from(groups, ([stream, events]) => {
      publishedStreams.add(stream)
      return { stream, events, ...scriptCall(stream, events) }
    })
    if (redis.cluster) {
      // Each script's keys share one slot; the Cluster client routes it to that slot's node.
      const replies = await Promise.all(calls.map((c) => evalScript(redis.client, FENCED_XADD, c.keys, c.args)))
      calls.forEach((c, i) => settleScript(c.stream, c.events, replies[i], refused))
    } else {
      const pipeline = redis.client.pipeline()
      for (const c of calls) queueScript(pipeline, FENCED_XADD, c.keys, c.args)
      const replies = await pipeline.exec()
      if (replies === null || replies.length !== calls.length) throw new Error("the pipeline was discarded")
      for (let i = 0; i < calls.length; i++) {
        const c = calls[i]!
        let [error, reply] = replies[i]!
        // The server lost its script cache (restart, SCRIPT FLUSH): that script did nothing; send its source.
        if (error && isNoScript(error)) [error, reply] = [null, await evalScript(redis.client, FENCED_XADD, c.keys, c.args)]
        if (error) throw new Error(`fenced XADD ${c.stream}: ${error.message}`)
        settleScript(c.stream, c.events, reply, refused)
      }
    }
    return refused.length === 0 ? allPublished : { refused }
  }

  const send = async (batch: ReadonlyArray<DispatchEvent>): Promise<Published> => {
    for (const e of batch) if (e.epoch > 0) return sendFenced(batch)
    if (!redis.cluster) await sendGroup(batch)
    else await Promise.all(Array.from(byStream(batch).values(), sendGroup))
    return allPublished
  }

  const attempt = {
    broker: "redis",
    endpoint: redis.endpoint,
    timeoutMs: PUBLISH_TIMEOUT_MS,
    timeoutReason: `no reply from ${redis.endpoint} within ${PUBLISH_TIMEOUT_MS / 1000}s`,
    explain: redisErrorText
  }

  return Broker.of({
    name: "redis",
    connected: redis.ready,
    publish: (batch) =>
      Effect.suspend(() => {
        if (batch.length === 0) return Effect.succeed(allPublished)
        // Fail fast: without an offline queue ioredis would reject each command anyway.
        if (!redis.ready()) return Effect.fail(fail(`not connected to ${redis.endpoint} (${redis.status()})`))
        return publishAttempt(attempt, () => send(batch))
      })
  })
}

/**
 * The Redis broker and its publish fence. The fence covers every stream the broker may publish
 * to: the configured event names (all known dispatches when every event is forwarded) and any
 * stream it has published fenced events to.
 */
export const RedisBrokerLive: Layer.Layer<Broker | PublishFence, never, AppConfig | RedisClient> = Layer.effectContext(
  Effect.gen(function*() {
    const config = yield* AppConfig
    const redis = yield* RedisClient
    const publishedStreams = new Set<string>()
    const configured: ReadonlySet<string> = config.events.all ? KNOWN_DISPATCH_EVENTS : config.events.names
    const broker = makeRedisBroker(redis, {
      encoding: config.broker.encoding,
      messageTimeoutMs: config.broker.messageTimeoutMs,
      maxLength: DEFAULT_STREAM_MAX_LENGTH,
      fencePrefix: config.shardStore.prefix,
      publishedStreams
    })
    const fence = makeRedisFence(redis, {
      prefix: config.shardStore.prefix,
      streams: function*() {
        yield* configured
        yield* publishedStreams
      }
    })
    return Context.make(Broker, broker).pipe(Context.add(PublishFence, fence))
  })
)
