// The AMQP connection for commands (separate from the event publisher's, so a slow consumer
// side never holds up event confirms). Topology, on the [broker] group exchange (direct, durable,
// as the event broker declares it):
//
//   queue <group>:SEND          key SEND           bots publish here; every gateway consumes
//   queue <group>:SEND:<shard>  key SEND:<shard>   a shard's inbox; its gateway consumes
//
// All queues are durable, without arguments (limits go in a RabbitMQ policy, as for events).
import { Context, Effect, Layer } from "effect"
import type { ConfirmChannel } from "amqplib"
import { AppConfig } from "../Config/AppConfig.ts"
import { type AmqpLink, makeAmqpLink } from "../Broker/AmqpLink.ts"
import { BrokerError } from "../Broker/Broker.ts"
import { ShardOwnership } from "../Cluster/ShardOwnership.ts"
import { ShardPlan } from "../Cluster/ShardPlan.ts"

export const SEND_KEY = "SEND"
export const sendQueue = (group: string): string => `${group}:${SEND_KEY}`
/** A later generation's inboxes (resharding) are named apart: shard 1 of 4 is not shard 1 of 8. */
export const inboxKey = (shard: number, generation = 0): string => (generation === 0 ? `${SEND_KEY}:${shard}` : `${SEND_KEY}:g${generation}:${shard}`)
export const inboxQueue = (group: string, shard: number, generation = 0): string => `${group}:${inboxKey(shard, generation)}`

export interface AmqpCommandLinkShape {
  readonly link: AmqpLink
  readonly group: string
  /** The shards' generation (resharding); 0 when absent. */
  readonly generation: number
  /** `onChannel` runs on every new channel after the topology is declared (the source consumes there). */
  readonly hooks: { onChannel: ((channel: ConfirmChannel) => Promise<void>) | undefined }
  /** Inbox queues known to exist, per channel (declared once per connection). */
  readonly declared: WeakMap<ConfirmChannel, Set<number>>
  /** Channels that have closed: their unacknowledged messages are delivered again elsewhere. */
  readonly closed: WeakSet<ConfirmChannel>
}

export class AmqpCommandLink extends Context.Service<AmqpCommandLink, AmqpCommandLinkShape>()("gateway/AmqpCommandLink") {}

/** Declares (idempotently) the inbox queue of `shard` and binds it. */
export const declareInbox = async (channel: ConfirmChannel, group: string, shard: number, generation = 0) => {
  await channel.assertQueue(inboxQueue(group, shard, generation), { durable: true })
  await channel.bindQueue(inboxQueue(group, shard, generation), group, inboxKey(shard, generation))
}

export const AmqpCommandLinkLive: Layer.Layer<AmqpCommandLink, BrokerError, AppConfig | ShardPlan | ShardOwnership> = Layer.effect(
  AmqpCommandLink,
  Effect.gen(function*() {
    const config = yield* AppConfig
    const ownership = yield* ShardOwnership
    const generation = (yield* ShardPlan).generation ?? 0
    const group = config.broker.group
    if (config.amqp.url === undefined) {
      return yield* new BrokerError({ broker: "amqp", reason: "no URL configured; set AMQP_URL or url in [amqp], e.g. amqp://guest:guest@localhost:5672" })
    }
    const hooks: AmqpCommandLinkShape["hooks"] = { onChannel: undefined }
    const declared = new WeakMap<ConfirmChannel, Set<number>>()
    const closed = new WeakSet<ConfirmChannel>()
    const setup = async (channel: ConfirmChannel) => {
      channel.on("close", () => closed.add(channel))
      await channel.assertQueue(sendQueue(group), { durable: true })
      await channel.bindQueue(sendQueue(group), group, SEND_KEY)
      const known = new Set<number>()
      // The inboxes of the shards run now; one that arrives later is declared when consumed.
      for (const shard of ownership.owned()) {
        await declareInbox(channel, group, shard, generation)
        known.add(shard)
      }
      declared.set(channel, known)
      await hooks.onChannel?.(channel)
    }
    const link = yield* makeAmqpLink({ url: config.amqp.url, setup, exchange: group, connectionName: `spectacles-gateway commands (${group})` })
    return AmqpCommandLink.of({ link, group, generation, hooks, declared, closed })
  })
)
