// Events into Redis Streams: one stream per event name (MESSAGE_CREATE, GUILD_CREATE, ...), one
// entry per event with the fields `data` (the payload's `d`), `shard` and `seq`. A batch goes out
// as one pipeline (one per stream on a Cluster, where a pipeline cannot span hash slots) and
// counts as published only when Redis answered every XADD with an entry id.
import { Effect, Layer } from "effect"
import { AppConfig } from "../Config/AppConfig.ts"
import type { PayloadEncoding } from "../Config/GatewayConfig.ts"
import { RedisClient, type RedisConnection } from "../Redis/RedisClient.ts"
import { Broker, BrokerError } from "./Broker.ts"
import type { DispatchEvent } from "./DispatchEvent.ts"
import { encodeData } from "./Encoding.ts"

/** Length cap per stream when messages never expire (message_timeout = 0), trimmed approximately. */
export const DEFAULT_STREAM_MAX_LENGTH = 100_000
/** A batch without a complete answer by then is a failure (the Publisher retries it). */
export const PUBLISH_TIMEOUT_MS = 15_000

export interface RedisBrokerOptions {
  readonly encoding: PayloadEncoding
  /** Entries older than this are trimmed (approximately); 0 trims by `maxLength` instead. */
  readonly messageTimeoutMs: number
  readonly maxLength: number
}

const fail = (reason: string, cause?: unknown) => new BrokerError({ broker: "redis", reason, cause })

/** Milliseconds part of a stream entry id ("1712345678901-0"). */
const idTime = (id: unknown): number | undefined => {
  if (typeof id !== "string") return undefined
  const ms = Number.parseInt(id, 10)
  return Number.isFinite(ms) ? ms : undefined
}

/** ioredis' wording for connection states, put in terms of what happened. */
const explain = (cause: unknown): string => {
  const text = cause instanceof Error ? cause.message : String(cause)
  if (text.includes("enableOfflineQueue")) return text.replace(/Stream isn't writeable and enableOfflineQueue options is false/, "the connection is down")
  if (text.includes("max retries per request")) return "the connection dropped before Redis answered"
  if (text.includes("Connection is closed")) return "the connection closed"
  return text
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
  const body = encoding === "json" ? (e: DispatchEvent): string | Buffer => e.data : (e: DispatchEvent) => encodeData(encoding, e)

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
      const time = idTime(id)
      if (time === undefined) throw new Error(`XADD ${events[i]!.t}: unexpected reply ${String(id)}`)
      if (time > (lastIdTime.get(events[i]!.t) ?? 0)) lastIdTime.set(events[i]!.t, time)
    }
  }

  const send = (batch: ReadonlyArray<DispatchEvent>): Promise<unknown> => {
    if (!redis.cluster) return sendGroup(batch)
    const byStream = new Map<string, Array<DispatchEvent>>()
    for (const e of batch) {
      const group = byStream.get(e.t)
      if (group) group.push(e)
      else byStream.set(e.t, [e])
    }
    return Promise.all(Array.from(byStream.values(), sendGroup))
  }

  return Broker.of({
    name: "redis",
    connected: redis.ready,
    publish: (batch) =>
      Effect.suspend(() => {
        if (batch.length === 0) return Effect.void
        // Fail fast: without an offline queue ioredis would reject each command anyway.
        if (!redis.ready()) return Effect.fail(fail(`not connected to ${redis.endpoint} (${redis.status()})`))
        return Effect.tryPromise({
          try: () => send(batch),
          catch: (cause) => fail(`publish to ${redis.endpoint} failed: ${explain(cause)}`, cause)
        }).pipe(
          Effect.timeoutOrElse({
            duration: PUBLISH_TIMEOUT_MS,
            orElse: () => Effect.fail(fail(`no reply from ${redis.endpoint} within ${PUBLISH_TIMEOUT_MS / 1000}s`))
          }),
          Effect.asVoid
        )
      })
  })
}

export const RedisBrokerLive: Layer.Layer<Broker, never, AppConfig | RedisClient> = Layer.effect(
  Broker,
  Effect.gen(function*() {
    const config = yield* AppConfig
    const redis = yield* RedisClient
    return makeRedisBroker(redis, {
      encoding: config.broker.encoding,
      messageTimeoutMs: config.broker.messageTimeoutMs,
      maxLength: DEFAULT_STREAM_MAX_LENGTH
    })
  })
)
