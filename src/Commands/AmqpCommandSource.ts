// Commands from RabbitMQ. Every gateway consumes <group>:SEND (competing consumers: each message
// goes to one of them), routes it by publishing one message per target shard to that shard's
// inbox queue, and acks the SEND message once RabbitMQ confirmed them. The gateway that runs a
// shard consumes its inbox and acks a message once the payload was written to Discord.
//
// Unacknowledged messages go back to their queue when a channel closes (a crash, a lost
// connection, a shutdown), and RabbitMQ delivers them again: at-least-once. Prefetch bounds what a
// process holds; a shard's backlog waits in its queue.
//
// The inboxes consumed are those of the shards this process runs now (ShardOwnership). When a
// shard arrives its inbox consumer starts; when it leaves the consumer is cancelled and the
// messages it still holds unsent are given back (nack, requeue): cancelling a consumer does not
// requeue what it was delivered, only closing the channel does.
import { Effect, Layer, Queue } from "effect"
import type { Channel, ConfirmChannel, ConsumeMessage } from "amqplib"
import { ShardOwnership } from "../Cluster/ShardOwnership.ts"
import { AmqpCommandLink, declareInbox, inboxQueue, sendQueue } from "./AmqpCommandLink.ts"
import { decodeEnvelope } from "./Command.ts"
import { BrokerCommandSource, type CommandSource } from "./CommandSource.ts"
import { errorText } from "../Resilience/OutageLog.ts"
import { CommandRouter, describeOwned } from "./Router.ts"
import type { Part } from "./Targets.ts"

/** Unacknowledged SEND messages per consumer: routing is quick, so this only batches. */
export const SEND_PREFETCH = 100
/** Unacknowledged inbox messages per shard (waiting for the shard's send budget). */
export const INBOX_PREFETCH = 200

interface Delivery {
  readonly channel: ConfirmChannel
  readonly message: ConsumeMessage
}

/** An inbox message handed to its shard's queue. */
interface InboxDelivery extends Delivery {
  /** Written to Discord and acknowledged. */
  sent: boolean
  /** Its shard left: no longer to be sent here. */
  released: boolean
}

const CANCEL_TIMEOUT = "3 seconds"

export const makeAmqpCommandSource = Effect.gen(function*() {
  const router = yield* CommandRouter
  const ownership = yield* ShardOwnership
  const shared = yield* AmqpCommandLink
  const { link, group, generation } = shared
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

  const requeue = ({ channel, message }: Delivery) => {
    if (shared.closed.has(channel)) return
    try {
      channel.nack(message, false, true)
    } catch {
      // Closed meanwhile: requeued by RabbitMQ anyway.
    }
  }

  // ---- per-shard inbox consumers, following the shards run here -------------------------------

  /** Shards whose inbox is consumed here (or is to be, once there is a channel). */
  const local = new Set(ownership.owned())
  /** The consumer of each local shard's inbox on the current channel. */
  const consumers = new Map<number, { readonly channel: ConfirmChannel; readonly tag: string }>()
  /** Inbox messages handed to a shard's queue and not sent yet. */
  const unsent = new Map<number, Set<InboxDelivery>>()
  /** Shards being released: messages still arriving for them wait here for the cancel to finish. */
  const leaving = new Map<number, Array<Delivery>>()
  /** The channel intake consumes on; undefined while intake is stopped. */
  let consuming: ConfirmChannel | undefined

  const onInbox = (channel: ConfirmChannel, shard: number, message: ConsumeMessage) => {
    if (!local.has(shard)) {
      const strays = leaving.get(shard)
      if (strays !== undefined) strays.push({ channel, message })
      else requeue({ channel, message })
      return
    }
    // Decoded right here, synchronously, so a shard's payloads keep their queue order.
    const decoded = decodeEnvelope(message.content)
    if (!decoded.ok) {
      runFork(router.refuse(decoded.refusal, `AMQP queue ${inboxQueue(group, shard, generation)}`, message.content))
      ack(channel, message)
      return
    }
    const delivery: InboxDelivery = { channel, message, sent: false, released: false }
    let waiting = unsent.get(shard)
    if (waiting === undefined) unsent.set(shard, waiting = new Set())
    waiting.add(delivery)
    router.sendLocal(shard, {
      payload: decoded.value.payload,
      sent: Effect.sync(() => {
        delivery.sent = true
        waiting.delete(delivery)
        ack(channel, message)
      }),
      wanted: () => {
        if (delivery.released) return false
        if (!shared.closed.has(channel)) return true
        waiting.delete(delivery)
        return false
      }
    })
  }

  const startInbox = async (channel: ConfirmChannel, shard: number) => {
    if (!local.has(shard) || consumers.get(shard)?.channel === channel) return
    let known = shared.declared.get(channel)
    if (known === undefined) shared.declared.set(channel, known = new Set())
    if (!known.has(shard)) {
      await declareInbox(channel, group, shard, generation)
      known.add(shard)
    }
    // Prefetch (per consumer) is the channel's last setting: INBOX_PREFETCH, set by `consume`.
    const inbox = await channel.consume(inboxQueue(group, shard, generation), (message) => {
      if (message !== null) onInbox(channel, shard, message)
    }, { noAck: false })
    if (local.has(shard) && consuming === channel) consumers.set(shard, { channel, tag: inbox.consumerTag })
    else await channel.cancel(inbox.consumerTag)
  }

  const cancel = (consumer: { readonly channel: ConfirmChannel; readonly tag: string } | undefined) =>
    consumer === undefined || shared.closed.has(consumer.channel)
      ? Effect.void
      : Effect.tryPromise(() => consumer.channel.cancel(consumer.tag)).pipe(Effect.timeout(CANCEL_TIMEOUT), Effect.ignore)

  yield* ownership.watch({
    acquired: (shard) =>
      Effect.suspend(() => {
        local.add(shard)
        const channel = consuming
        if (channel === undefined) return Effect.void
        return Effect.tryPromise(() => startInbox(channel, shard)).pipe(
          Effect.catch((cause) =>
            Effect.andThen(
              Effect.logWarning(`consuming the command inbox of shard ${shard} failed (${errorText(cause)}); reconnecting`),
              Effect.sync(() => link.reset("consuming an inbox failed"))
            )
          )
        )
      }),
    releasing: (shard) =>
      Effect.gen(function*() {
        local.delete(shard)
        const strays: Array<Delivery> = []
        leaving.set(shard, strays)
        const consumer = consumers.get(shard)
        consumers.delete(shard)
        const held = Array.from(unsent.get(shard) ?? [])
        unsent.delete(shard)
        for (const delivery of held) delivery.released = true
        // A job found wanted just before may be between its write to Discord and its ack
        // (synchronous, but its fiber may have yielded): let it get there.
        yield* Effect.yieldNow
        // Cancelled first, so what is given back is not delivered to this consumer again.
        yield* cancel(consumer)
        leaving.delete(shard)
        for (const delivery of held) if (!delivery.sent) requeue(delivery)
        for (const delivery of strays) requeue(delivery)
      })
  })

  const run = Effect.gen(function*() {
    const ingress = yield* Queue.unbounded<Delivery>()
    let sendTag: { readonly channel: ConfirmChannel; readonly tag: string } | undefined

    const consume = async (channel: ConfirmChannel) => {
      consuming = channel
      // What the closed channel held is delivered again by RabbitMQ: nothing to give back.
      for (const waiting of unsent.values()) for (const delivery of waiting) if (shared.closed.has(delivery.channel)) waiting.delete(delivery)
      // Prefetch applies to consumers started after it (per consumer).
      await channel.prefetch(SEND_PREFETCH)
      const send = await channel.consume(sendQueue(group), (message) => {
        if (message !== null) Queue.offerUnsafe(ingress, { channel, message })
      }, { noAck: false })
      sendTag = { channel, tag: send.consumerTag }
      await channel.prefetch(INBOX_PREFETCH)
      for (const shard of local) await startInbox(channel, shard)
    }

    // Stop consuming (the finalizer runs when intake is interrupted); SEND messages not routed
    // yet go straight back to the queue for another gateway.
    yield* Effect.addFinalizer(() =>
      Effect.gen(function*() {
        shared.hooks.onChannel = undefined
        consuming = undefined
        const current = [sendTag, ...consumers.values()].filter((c) => c !== undefined && c.channel === link.channel())
        consumers.clear()
        sendTag = undefined
        yield* Effect.forEach(current, cancel, { concurrency: "unbounded", discard: true })
        for (const delivery of yield* Queue.clear(ingress)) requeue(delivery)
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
      `reading commands from AMQP queue ${sendQueue(group)} and the inbox queues of ` +
        (ownership.automatic ? `the shards this process runs (now: ${describeOwned(ownership.owned())})` : `shard(s) ${describeOwned(ownership.owned())}`)
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

export const AmqpCommandSourceLive: Layer.Layer<BrokerCommandSource, never, AmqpCommandLink | CommandRouter | ShardOwnership> = Layer.effect(
  BrokerCommandSource,
  Effect.map(makeAmqpCommandSource, (source) => ({ source }))
)
