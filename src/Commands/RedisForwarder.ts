// Forwarding over Redis: XADD each payload to its shard's inbox stream, one pipeline per batch
// (every inbox shares the {SEND} slot, so this holds on a Cluster too). A batch succeeds once
// Redis answered every XADD with an entry id.
import { Effect, Layer } from "effect"
import { AppConfig } from "../Config/AppConfig.ts"
import { RedisClient, type RedisConnection } from "../Redis/RedisClient.ts"
import { CommandForwarder, ForwardError } from "./Forwarder.ts"
import { INBOX_MAX_LENGTH, inboxStream } from "./RedisNames.ts"
import type { Part } from "./Targets.ts"

const FORWARD_TIMEOUT_MS = 10_000

const fail = (reason: string, cause?: unknown) => new ForwardError({ broker: "redis", reason, cause })

const text = (cause: unknown) => (cause instanceof Error ? cause.message : String(cause))

export const makeRedisForwarder = (redis: RedisConnection, group: string) => {
  const send = async (parts: ReadonlyArray<Part>) => {
    const pipeline = redis.client.pipeline()
    for (const part of parts) {
      pipeline.xadd(inboxStream(group, part.shard), "MAXLEN", "~", String(INBOX_MAX_LENGTH), "*", "data", part.payload)
    }
    const replies = await pipeline.exec()
    if (replies === null || replies.length !== parts.length) throw new Error("the pipeline was discarded")
    for (let i = 0; i < replies.length; i++) {
      const [error] = replies[i]!
      if (error) throw new Error(`XADD ${inboxStream(group, parts[i]!.shard)}: ${error.message}`)
    }
  }
  return CommandForwarder.of({
    broker: "redis",
    forward: (parts) =>
      Effect.suspend(() => {
        if (!redis.ready()) return Effect.fail(fail(`not connected to ${redis.endpoint} (${redis.status()})`))
        return Effect.tryPromise({ try: () => send(parts), catch: (cause) => fail(`${redis.endpoint}: ${text(cause)}`, cause) }).pipe(
          Effect.timeoutOrElse({
            duration: FORWARD_TIMEOUT_MS,
            orElse: () => Effect.fail(fail(`no reply from ${redis.endpoint} within ${FORWARD_TIMEOUT_MS / 1000}s`))
          })
        )
      })
  })
}

export const RedisForwarderLive: Layer.Layer<CommandForwarder, never, AppConfig | RedisClient> = Layer.effect(
  CommandForwarder,
  Effect.gen(function*() {
    const config = yield* AppConfig
    return makeRedisForwarder(yield* RedisClient, config.broker.group)
  })
)
