// Events into RabbitMQ: a durable direct exchange named after [broker] group, routing key = event
// name, and a durable queue "<group>:<EVENT>" per event so events wait for consumers that start
// later. Messages are persistent; a batch counts as published once RabbitMQ confirmed every one.
// RabbitMQ cannot check a lease epoch, so there is no server-side fence: the event path drops
// events whose lease this process lost before each batch, and the epoch travels in a header.
import { Effect, Layer, type Redacted } from "effect"
import type { ConfirmChannel, Message, Options } from "amqplib"
import { AppConfig } from "../Config/AppConfig.ts"
import type { PayloadEncoding } from "../Config/GatewayConfig.ts"
import { allPublished, Broker, BrokerError, publishAttempt } from "./Broker.ts"
import type { DispatchEvent } from "./DispatchEvent.ts"
import { encodeData } from "./Encoding.ts"
import { type AmqpLink, makeAmqpLink } from "./AmqpLink.ts"
import { errorText as message } from "../Resilience/OutageLog.ts"

/** A batch not confirmed by then is a failure (the event path retries it). */
export const PUBLISH_TIMEOUT_MS = 15_000

export interface AmqpBrokerOptions {
  readonly url: Redacted.Redacted<string>
  /** Exchange name and queue-name prefix. */
  readonly group: string
  readonly encoding: PayloadEncoding
  /** Per-message TTL in milliseconds; 0 means none. */
  readonly messageTimeoutMs: number
  /** Event names whose queues are declared up front; others are declared on first publish. */
  readonly events: Iterable<string>
}

export const queueName = (group: string, event: string): string => `${group}:${event}`

const fail = (reason: string, cause?: unknown) => new BrokerError({ broker: "amqp", reason, cause })

/** RabbitMQ refuses to redeclare an exchange or queue with other settings; say what to do. */
const explainDeclareError = (error: unknown, group: string): Error => {
  const text = message(error)
  if (!text.includes("PRECONDITION_FAILED")) return error instanceof Error ? error : new Error(text)
  return new Error(
    `${text}; the gateway needs "${group}" to be a durable direct exchange and its "${group}:EVENT" queues ` +
      `durable without extra arguments: delete the conflicting one or choose another [broker] group`
  )
}

/** Channel-level state the broker keeps alongside a link's channel. */
interface ChannelState {
  /** Events whose queue is declared and bound on this channel. */
  readonly declared: Set<string>
  /** Routing keys RabbitMQ returned as unroutable during the current batch. */
  returned: Set<string>
}

export const makeAmqpBroker = (options: AmqpBrokerOptions) =>
  Effect.gen(function*() {
    const { group } = options
    // Every event name ever published, so a fresh connection re-declares all their queues
    // (RabbitMQ may have come back without them).
    const known = new Set(options.events)
    const states = new WeakMap<ConfirmChannel, ChannelState>()

    const declare = async (channel: ConfirmChannel, state: ChannelState, events: Iterable<string>) => {
      const missing = Array.from(events).filter((e) => !state.declared.has(e))
      // amqplib queues RPCs per channel, so these go out back to back and are answered in order.
      await Promise.all(missing.map(async (event) => {
        await channel.assertQueue(queueName(group, event), { durable: true })
        await channel.bindQueue(queueName(group, event), group, event)
        state.declared.add(event)
      }))
    }

    const setup = async (channel: ConfirmChannel) => {
      const state: ChannelState = { declared: new Set(), returned: new Set() }
      // `mandatory` messages that reach no queue come back here (before their confirm).
      channel.on("return", (msg: Message) => void state.returned.add(msg.fields.routingKey))
      try {
        // The exchange itself is declared by the link (`exchange` below).
        await declare(channel, state, known)
      } catch (error) {
        throw explainDeclareError(error, group)
      }
      states.set(channel, state)
    }

    const link: AmqpLink = yield* makeAmqpLink({ url: options.url, setup, exchange: group, connectionName: `spectacles-gateway (${group})` })

    const properties = (e: DispatchEvent): Options.Publish => ({
      persistent: true,
      mandatory: true,
      contentType: options.encoding === "json" ? "application/json" : "application/msgpack",
      type: e.t,
      // epoch: the shard lease the event was read under (only with leases), for consumers that fence themselves.
      headers: e.epoch > 0 ? { shard: e.shard, seq: e.seq, epoch: e.epoch } : { shard: e.shard, seq: e.seq },
      ...(options.messageTimeoutMs > 0 ? { expiration: String(options.messageTimeoutMs) } : {})
    })
    const encoding = options.encoding
    const body = encoding === "json" ? (e: DispatchEvent) => e.data : (e: DispatchEvent) => encodeData(encoding, e)

    // Resolves when the channel's write buffer drained; rejects if the channel closes first.
    const drained = (channel: ConfirmChannel) =>
      new Promise<void>((resolve, reject) => {
        const onDrain = () => {
          channel.removeListener("close", onClose)
          resolve()
        }
        const onClose = () => {
          channel.removeListener("drain", onDrain)
          reject(new Error("channel closed while waiting for it to drain"))
        }
        channel.once("drain", onDrain)
        channel.once("close", onClose)
      })

    const send = async (channel: ConfirmChannel, state: ChannelState, batch: ReadonlyArray<DispatchEvent>, signal: AbortSignal) => {
      const names = new Set<string>()
      for (const e of batch) names.add(e.t)
      for (const name of names) known.add(name)
      await declare(channel, state, names).catch((error: unknown) => {
        throw explainDeclareError(error, group)
      })
      state.returned = new Set()
      for (const e of batch) {
        if (signal.aborted) return
        // false: the socket buffer is full; wait for it to drain before writing more (flow control).
        if (!channel.publish(group, e.t, body(e), properties(e))) await drained(channel)
      }
      // Rejects on a nack or when the channel closes with messages unconfirmed.
      await channel.waitForConfirms()
      if (state.returned.size > 0) {
        const lost = Array.from(state.returned)
        // Someone deleted or unbound the queue: declare it again before the retry.
        for (const event of lost) state.declared.delete(event)
        throw new Error(`RabbitMQ returned events with no queue bound (${lost.map((e) => queueName(group, e)).join(", ")}); re-declaring them`)
      }
    }

    const attempt = {
      broker: "amqp",
      endpoint: link.endpoint,
      timeoutMs: PUBLISH_TIMEOUT_MS,
      timeoutReason: `no confirmation from ${link.endpoint} within ${PUBLISH_TIMEOUT_MS / 1000}s`,
      explain: message,
      // The connection is in an unknown state (hung broker?): start over on a fresh one.
      onTimeout: () => link.reset("publish timed out")
    }

    return Broker.of({
      name: "amqp",
      connected: () => link.channel() !== undefined && link.blocked() === undefined,
      publish: (batch) =>
        Effect.suspend(() => {
          if (batch.length === 0) return Effect.succeed(allPublished)
          const channel = link.channel()
          const state = channel && states.get(channel)
          if (channel === undefined || state === undefined) {
            const why = link.lastError()
            return Effect.fail(fail(`not connected to ${link.endpoint}${why ? ` (${why})` : ""}; reconnecting`))
          }
          const blocked = link.blocked()
          if (blocked !== undefined) return Effect.fail(fail(`RabbitMQ at ${link.endpoint} is blocking publishers (${blocked})`))
          return Effect.as(publishAttempt(attempt, (signal) => send(channel, state, batch, signal)), allPublished)
        })
    })
  })

export const AmqpBrokerLive: Layer.Layer<Broker, BrokerError, AppConfig> = Layer.effect(
  Broker,
  Effect.gen(function*() {
    const config = yield* AppConfig
    if (config.amqp.url === undefined) {
      return yield* fail("no URL configured; set AMQP_URL or url in [amqp], e.g. amqp://guest:guest@localhost:5672")
    }
    return yield* makeAmqpBroker({
      url: config.amqp.url,
      group: config.broker.group,
      encoding: config.broker.encoding,
      messageTimeoutMs: config.broker.messageTimeoutMs,
      events: config.events.all ? [] : config.events.names
    })
  })
)
