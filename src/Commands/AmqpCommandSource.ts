// Commands from RabbitMQ. Every gateway consumes <group>:SEND (competing consumers: each message
// goes to one of them), routes it by publishing one message per target shard to that shard's
// inbox queue, and acks the SEND message once RabbitMQ confirmed them. The gateway that runs a
// shard consumes its inbox and acks a message once the payload was written to Discord.
//
// Unacknowledged messages go back to their queue when a channel closes (a crash, a lost
// connection, a shutdown), and RabbitMQ delivers them again: at-least-once. Prefetch bounds what a
// process holds; a shard's backlog waits in its queue.
import { Effect, Layer, Queue } from "effect"
import type { Channel, ConfirmChannel, ConsumeMessage } from "amqplib"
import { AmqpCommandLink, inboxQueue, sendQueue } from "./AmqpCommandLink.ts"
import { decodeEnvelope } from "./Command.ts"
import { BrokerCommandSource, type CommandSource } from "./CommandSource.ts"
import { errorText } from "../Resilience/OutageLog.ts"
import { CommandRouter, describeShards } from "./Router.ts"
import type { Part } from "./Targets.ts"

/** Unacknowledged SEND messages per consumer: routing is quick, so this only batches. */
export const SEND_PREFETCH = 100
/** Unacknowledged inbox messages per shard (waiting for the shard's send budget). */
export const INBOX_PREFETCH = 200

interface Delivery {
  readonly channel: ConfirmChannel
  readonly message: ConsumeMessage
}

const CANCEL_TIMEOUT = "3 seconds"

export const makeAmqpCommandSource = Effect.gen(function*() {
  const router = yield* CommandRouter
  const shared = yield* AmqpCommandLink
  const { link, group } = shared
  const context = yield* Effect.context<never>()
  const runFork = Effect.runForkWith(context)
  const sendSource = `AMQP queue ${sendQueue(group)}`

  const ack = (channel: Channel, message: ConsumeMessage) => {
    // A closed channel's messages are redelivered anyway; acking there would throw.
    if (shared.closed.has(channel as ConfirmChannel)) return
    try {
      channel.ack(message)
    } catch {
      // The channel closed in between: same as above.
    }
  }

  const run = Effect.gen(function*() {
    const ingress = yield* Queue.unbounded<Delivery>()
    const tags = new Map<ConfirmChannel, Array<string>>()

    const onInbox = (channel: ConfirmChannel, shard: number, message: ConsumeMessage) => {
      // Decoded right here, synchronously, so a shard's payloads keep their queue order.
      const decoded = decodeEnvelope(message.content)
      if (!decoded.ok) {
        runFork(router.refuse(decoded.refusal, `AMQP queue ${inboxQueue(group, shard)}`, message.content))
        ack(channel, message)
        return
      }
      router.sendLocal(shard, {
        payload: decoded.value.payload,
        sent: Effect.sync(() => ack(channel, message)),
        wanted: () => !shared.closed.has(channel)
      })
    }

    const consume = async (channel: ConfirmChannel) => {
      const mine: Array<string> = []
      tags.set(channel, mine)
      // Prefetch applies to consumers started after it (per consumer).
      await channel.prefetch(SEND_PREFETCH)
      const send = await channel.consume(sendQueue(group), (message) => {
        if (message !== null) Queue.offerUnsafe(ingress, { channel, message })
      }, { noAck: false })
      mine.push(send.consumerTag)
      await channel.prefetch(INBOX_PREFETCH)
      for (const shard of router.ownedShards) {
        const inbox = await channel.consume(inboxQueue(group, shard), (message) => {
          if (message !== null) onInbox(channel, shard, message)
        }, { noAck: false })
        mine.push(inbox.consumerTag)
      }
    }

    // Stop consuming (the finalizer runs when intake is interrupted); SEND messages not routed
    // yet go straight back to the queue for another gateway.
    yield* Effect.addFinalizer(() =>
      Effect.gen(function*() {
        shared.hooks.onChannel = undefined
        const channel = link.channel()
        const mine = channel === undefined ? undefined : tags.get(channel)
        if (channel !== undefined && mine !== undefined) {
          yield* Effect.tryPromise(() => Promise.all(mine.map((tag) => channel.cancel(tag)))).pipe(Effect.timeout(CANCEL_TIMEOUT), Effect.ignore)
        }
        for (const { channel: from, message } of yield* Queue.clear(ingress)) {
          if (shared.closed.has(from)) continue
          try {
            from.nack(message, false, true)
          } catch {
            // Closed meanwhile: requeued by RabbitMQ anyway.
          }
        }
      })
    )

    shared.hooks.onChannel = consume
    const current = link.channel()
    if (current !== undefined) {
      yield* Effect.tryPromise(() => consume(current)).pipe(
        Effect.catch((cause) =>
          Effect.andThen(
            Effect.logWarning(`consuming commands from ${link.endpoint} failed (${errorText(cause)}); reconnecting`),
            Effect.sync(() => link.reset("consuming commands failed"))
          )
        )
      )
    }
    yield* Effect.logInfo(
      `reading commands from AMQP queue ${sendQueue(group)} and the inbox queues of shard(s) ${describeShards(router.ownedShards)}`
    )

    // SEND messages: decode a batch, forward every part to its shard's inbox, then ack.
    return yield* Effect.forever(
      Effect.gen(function*() {
        const batch = yield* Queue.takeAll(ingress)
        const routed: Array<Delivery> = []
        const parts: Array<Part> = []
        for (const delivery of batch) {
          if (shared.closed.has(delivery.channel)) continue
          const command = yield* router.decode(delivery.message.content, sendSource)
          if (command === undefined) {
            ack(delivery.channel, delivery.message)
            continue
          }
          for (const part of router.parts(command)) parts.push(part)
          routed.push(delivery)
        }
        // Once every source message's channel is gone, RabbitMQ redelivers them: stop retrying.
        const forwarded = yield* router.forward(parts, () => routed.some((d) => !shared.closed.has(d.channel)))
        if (forwarded) for (const { channel, message } of routed) ack(channel, message)
      })
    )
  }).pipe(Effect.scoped)

  return { name: "amqp", run: Effect.asVoid(run) } satisfies CommandSource
})

export const AmqpCommandSourceLive: Layer.Layer<BrokerCommandSource, never, AmqpCommandLink | CommandRouter> = Layer.effect(
  BrokerCommandSource,
  Effect.map(makeAmqpCommandSource, (source) => ({ source }))
)
