// Issue 11: "one AMQP event went missing when its queue was deleted mid-load". What RabbitMQ
// confirms belongs to the queue: deleting the queue deletes it, and `mandatory` only returns
// messages that find no queue at publish time. These tests pin down what the gateway can and
// cannot promise there (docs/brokers.md, "What a confirm promises").
import { assert, describe, it } from "@effect/vitest"
import * as amqp from "amqplib"
import type { GetMessage } from "amqplib"
import { Effect, Exit, Redacted } from "effect"
import { makeAmqpBroker, queueName } from "../../src/Broker/AmqpBroker.ts"
import { AMQP_URL, fakeBatch, serviceAvailable, unique } from "./support.ts"

const available = await serviceAvailable("RabbitMQ", AMQP_URL)

const EVENT = "MESSAGE_DELETE"

/** The test's own channel; removes the group's exchange and the given queues afterwards. */
const admin = (group: string, queues: ReadonlyArray<string>) =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const connection = await amqp.connect(AMQP_URL)
      return { connection, channel: await connection.createChannel() }
    }),
    ({ connection, channel }) =>
      Effect.promise(async () => {
        for (const queue of queues) await channel.deleteQueue(queue).catch(() => undefined)
        await channel.deleteExchange(group).catch(() => undefined)
        await connection.close().catch(() => undefined)
      })
  )

const drainSeqs = (channel: amqp.Channel, queue: string) =>
  Effect.promise(async () => {
    const messages: Array<GetMessage> = []
    for (;;) {
      const message = await channel.get(queue, { noAck: true })
      if (message === false) return messages.map((m) => m.properties.headers?.["seq"] as number)
      messages.push(message)
    }
  })

/** Publishes like the event path does: a batch that fails is published again, until accepted. */
const publishUntilAccepted = (publish: Effect.Effect<void, unknown>) =>
  Effect.gen(function*() {
    for (let attempt = 1; attempt <= 5; attempt++) {
      if (Exit.isSuccess(yield* Effect.exit(publish))) return attempt
    }
    return assert.fail("not accepted after 5 attempts")
  })

describe.skipIf(!available)("AMQP queue deleted while the gateway publishes", () => {
  it.live("an event confirmed before the deletion goes with the queue; later ones are returned, re-declared and delivered", () =>
    Effect.gen(function*() {
      const group = unique("test")
      const queue = queueName(group, EVENT)
      const { channel } = yield* admin(group, [queue])
      const broker = yield* makeAmqpBroker({ url: Redacted.make(AMQP_URL), group, encoding: "json", messageTimeoutMs: 0, events: [EVENT] })
      // Confirmed by RabbitMQ: the gateway would now checkpoint past seq 1.
      yield* broker.publish(fakeBatch([EVENT], 1))
      yield* Effect.promise(() => channel.deleteQueue(queue))
      const attempts = yield* publishUntilAccepted(broker.publish(fakeBatch([EVENT], 3, 2)))
      assert.strictEqual(attempts, 2, "the first attempt came back unroutable and failed")
      assert.deepStrictEqual(yield* drainSeqs(channel, queue), [2, 3, 4], "seq 1 was deleted with the queue")
    }))

  it.live("with another queue bound to the same event, the deletion is not noticed until the gateway reconnects", () =>
    Effect.gen(function*() {
      const group = unique("test")
      const queue = queueName(group, EVENT)
      const copy = unique("copy")
      const { connection, channel } = yield* admin(group, [queue, copy])
      const broker = yield* makeAmqpBroker({ url: Redacted.make(AMQP_URL), group, encoding: "json", messageTimeoutMs: 0, events: [EVENT] })
      yield* Effect.promise(async () => {
        await channel.assertQueue(copy, { durable: false, autoDelete: false })
        await channel.bindQueue(copy, group, EVENT)
        await channel.deleteQueue(queue)
      })
      // Routed to the copy, so nothing is returned: accepted at once, the gateway's queue stays gone.
      assert.strictEqual(yield* publishUntilAccepted(broker.publish(fakeBatch([EVENT], 2))), 1)
      assert.deepStrictEqual(yield* drainSeqs(channel, copy), [1, 2])
      // A passive declare of a missing queue closes its channel: use one of its own.
      const exists = yield* Effect.promise(async () => {
        const probe = await connection.createChannel()
        probe.on("error", () => undefined)
        return probe.checkQueue(queue).then(() => true, () => false)
      })
      assert.isFalse(exists)
    }))
})
