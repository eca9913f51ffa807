// The AMQP broker against a real RabbitMQ (AMQP_URL, default guest@127.0.0.1:5672), plus an outage
// drill through a TCP proxy the test cuts and restores.
import { decode } from "@msgpack/msgpack"
import { assert, describe, it } from "@effect/vitest"
import * as amqp from "amqplib"
import type { GetMessage } from "amqplib"
import { Effect, Exit, Layer, Redacted } from "effect"
import { makeAmqpBroker, queueName } from "../../src/Broker/AmqpBroker.ts"
import { Broker, BrokerError } from "../../src/Broker/Broker.ts"
import type { DispatchEvent } from "../../src/Broker/DispatchEvent.ts"
import { brokerLayer } from "../../src/Broker/layers.ts"
import { AppConfig } from "../../src/Config/AppConfig.ts"
import { AMQP_URL, fakeBatch, freePort, serviceAvailable, startTcpProxy, testConfig, unique, waitFor } from "./support.ts"

const available = await serviceAvailable("RabbitMQ", AMQP_URL)

/**
 * The test's own consumer connection. Registers cleanup of the group's exchange and queues, so
 * every test leaves RabbitMQ as it found it.
 */
const consumer = (group: string, events: ReadonlyArray<string>) =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const connection = await amqp.connect(AMQP_URL)
      const channel = await connection.createChannel()
      return { connection, channel }
    }),
    ({ connection, channel }) =>
      Effect.promise(async () => {
        for (const event of events) await channel.deleteQueue(queueName(group, event)).catch(() => undefined)
        await channel.deleteExchange(group).catch(() => undefined)
        await connection.close().catch(() => undefined)
      })
  )

/** Everything waiting in `queue`, taken with basic.get until it is empty. */
const drain = (channel: amqp.Channel, queue: string) =>
  Effect.promise(async () => {
    const messages: Array<GetMessage> = []
    for (;;) {
      const message = await channel.get(queue, { noAck: true })
      if (message === false) return messages
      messages.push(message)
    }
  })

const failureOf = (exit: Exit.Exit<unknown, unknown>) =>
  Exit.isFailure(exit) ? exit.cause.reasons.find((r) => r._tag === "Fail")?.error : undefined

const seqs = (batch: ReadonlyArray<DispatchEvent>, event: string) => batch.filter((e) => e.t === event).map((e) => e.seq)

describe.skipIf(!available)("AmqpBroker", () => {
  for (const encoding of ["json", "msgpack"] as const) {
    it.live(`publishes to group:EVENT queues that a consumer started later reads exactly once (${encoding})`, () =>
      Effect.gen(function*() {
        const group = unique("test")
        // MESSAGE_CREATE is declared up front, GUILD_CREATE lazily on its first publish.
        const events = ["MESSAGE_CREATE", "GUILD_CREATE"]
        const { channel } = yield* consumer(group, events)
        const batch = fakeBatch(events, 300)
        yield* Effect.scoped(Effect.gen(function*() {
          const broker = yield* makeAmqpBroker({
            url: Redacted.make(AMQP_URL),
            group,
            encoding,
            messageTimeoutMs: 60_000,
            events: ["MESSAGE_CREATE"]
          })
          assert.isTrue(broker.connected())
          yield* broker.publish(batch.slice(0, 200))
          yield* broker.publish(batch.slice(200))
        }))

        // The publisher is gone; the events wait in durable queues.
        for (const event of events) {
          const messages = yield* drain(channel, queueName(group, event))
          assert.deepStrictEqual(messages.map((m) => m.properties.headers?.["seq"]), seqs(batch, event))
          for (const [i, m] of messages.entries()) {
            const sent = batch.filter((e) => e.t === event)[i]!
            assert.strictEqual(m.fields.exchange, group)
            assert.strictEqual(m.fields.routingKey, event)
            assert.strictEqual(m.properties.contentType, encoding === "json" ? "application/json" : "application/msgpack")
            assert.strictEqual(m.properties.deliveryMode, 2)
            assert.strictEqual(m.properties.expiration, "60000")
            assert.strictEqual(m.properties.type, event)
            assert.strictEqual(m.properties.headers?.["shard"], sent.shard)
            const d = encoding === "json" ? JSON.parse(m.content.toString("utf8")) : decode(m.content)
            assert.deepStrictEqual(d, JSON.parse(sent.data.toString()))
          }
        }
      }))
  }

  it.live("carries the lease epoch in the epoch header when the event was read under a lease, and no epoch header without one", () =>
    Effect.gen(function*() {
      const group = unique("test")
      const { channel } = yield* consumer(group, ["RESUMED"])
      const broker = yield* makeAmqpBroker({ url: Redacted.make(AMQP_URL), group, encoding: "json", messageTimeoutMs: 0, events: [] })
      const [unleased, leased] = fakeBatch(["RESUMED"], 2)
      yield* broker.publish([unleased!, { ...leased!, epoch: 12 }])
      const messages = yield* drain(channel, queueName(group, "RESUMED"))
      assert.deepStrictEqual(messages.map((m) => m.properties.headers), [
        { shard: unleased!.shard, seq: unleased!.seq },
        { shard: leased!.shard, seq: leased!.seq, epoch: 12 }
      ])
    }))

  it.live("omits the expiration when message_timeout is 0", () =>
    Effect.gen(function*() {
      const group = unique("test")
      const { channel } = yield* consumer(group, ["READY"])
      const broker = yield* makeAmqpBroker({ url: Redacted.make(AMQP_URL), group, encoding: "json", messageTimeoutMs: 0, events: [] })
      yield* broker.publish(fakeBatch(["READY"], 1))
      const [message] = yield* drain(channel, queueName(group, "READY"))
      assert.isDefined(message)
      assert.isUndefined(message!.properties.expiration)
    }))

  it.live("is wired in brokerLayer: declares the configured events' queues at startup", () =>
    Effect.gen(function*() {
      const group = unique("test")
      const { channel } = yield* consumer(group, ["READY", "RESUMED"])
      const config = testConfig({
        broker: { type: "amqp", group, encoding: "json", messageTimeoutMs: 60_000 },
        events: { all: false, names: new Set(["READY", "RESUMED"]) }
      })
      yield* Effect.gen(function*() {
        const broker = yield* Broker
        assert.strictEqual(broker.name, "amqp")
        // Both queues exist before anything was published.
        const ready = yield* Effect.promise(() => channel.checkQueue(queueName(group, "READY")))
        const resumed = yield* Effect.promise(() => channel.checkQueue(queueName(group, "RESUMED")))
        assert.strictEqual(ready.messageCount + resumed.messageCount, 0)
        yield* broker.publish(fakeBatch(["RESUMED"], 2))
      }).pipe(Effect.provide(brokerLayer(config).pipe(Layer.provide(AppConfig.layer(config)))))
      const messages = yield* drain(channel, queueName(group, "RESUMED"))
      assert.deepStrictEqual(messages.map((m) => m.properties.headers?.["seq"]), [1, 2])
    }))

  it.live("fails a batch whose queue was deleted, then re-declares it so the retry is delivered", () =>
    Effect.gen(function*() {
      const group = unique("test")
      const { channel } = yield* consumer(group, ["MESSAGE_DELETE"])
      const broker = yield* makeAmqpBroker({ url: Redacted.make(AMQP_URL), group, encoding: "json", messageTimeoutMs: 0, events: ["MESSAGE_DELETE"] })
      yield* broker.publish(fakeBatch(["MESSAGE_DELETE"], 1))
      yield* Effect.promise(() => channel.deleteQueue(queueName(group, "MESSAGE_DELETE")))

      const batch = fakeBatch(["MESSAGE_DELETE"], 3, 2)
      const exit = yield* Effect.exit(broker.publish(batch))
      const error = failureOf(exit)
      assert.instanceOf(error, BrokerError)
      assert.include((error as BrokerError).message, "no queue bound")

      yield* broker.publish(batch) // what the Publisher's retry does
      const messages = yield* drain(channel, queueName(group, "MESSAGE_DELETE"))
      assert.deepStrictEqual(messages.map((m) => m.properties.headers?.["seq"]), [2, 3, 4])
    }))

  it.live("fails to start with an actionable error that never shows the password", () =>
    Effect.gen(function*() {
      const port = yield* Effect.promise(freePort)
      const refused = yield* Effect.exit(
        makeAmqpBroker({ url: Redacted.make(`amqp://guest:s3cret-pw@127.0.0.1:${port}`), group: "x", encoding: "json", messageTimeoutMs: 0, events: [] })
      )
      const refusedError = failureOf(refused)
      assert.instanceOf(refusedError, BrokerError)
      assert.include((refusedError as BrokerError).message, "ECONNREFUSED")
      assert.notInclude((refusedError as BrokerError).message, "s3cret-pw")

      const target = new URL(AMQP_URL)
      target.password = "wrong-pw-42"
      const denied = yield* Effect.exit(
        makeAmqpBroker({ url: Redacted.make(target.toString()), group: "x", encoding: "json", messageTimeoutMs: 0, events: [] })
      )
      const deniedError = failureOf(denied)
      assert.instanceOf(deniedError, BrokerError)
      assert.include((deniedError as BrokerError).message, "ACCESS")
      assert.notInclude((deniedError as BrokerError).message, "wrong-pw-42")
    }))

  // (An exchange that differs only in settings the gateway can live with, e.g. the Go gateway's
  // auto_delete one or a topic exchange, is used as it is: test/migration/.)
  it.live("explains an exchange that cannot route events by name instead of retrying blindly", () =>
    Effect.gen(function*() {
      const group = unique("test")
      const { channel } = yield* consumer(group, [])
      yield* Effect.promise(() => channel.assertExchange(group, "fanout", { durable: false }))
      const exit = yield* Effect.exit(makeAmqpBroker({ url: Redacted.make(AMQP_URL), group, encoding: "json", messageTimeoutMs: 0, events: [] }))
      const error = failureOf(exit)
      assert.instanceOf(error, BrokerError)
      assert.include((error as BrokerError).message, "PRECONDITION_FAILED")
      assert.include((error as BrokerError).message, "[broker] group")
    }))

  it.live("fails fast while the line to RabbitMQ is cut and reconnects by itself when it is back", () =>
    Effect.gen(function*() {
      const group = unique("test")
      const { channel } = yield* consumer(group, ["MESSAGE_CREATE"])
      const target = new URL(AMQP_URL)
      const proxy = yield* Effect.acquireRelease(
        Effect.promise(() => startTcpProxy({ host: target.hostname, port: Number(target.port || 5672) })),
        (p) => Effect.promise(() => p.close())
      )
      const viaProxy = new URL(AMQP_URL)
      viaProxy.hostname = "127.0.0.1"
      viaProxy.port = String(proxy.port)
      const broker = yield* makeAmqpBroker({
        url: Redacted.make(viaProxy.toString()),
        group,
        encoding: "json",
        messageTimeoutMs: 0,
        events: ["MESSAGE_CREATE"]
      })
      yield* broker.publish(fakeBatch(["MESSAGE_CREATE"], 10))

      yield* Effect.promise(() => proxy.cut())
      // Cut mid-flight or after the drop was noticed: either way a BrokerError, and soon.
      for (let attempt = 0; attempt < 3; attempt++) {
        const started = Date.now()
        const exit = yield* Effect.exit(broker.publish(fakeBatch(["MESSAGE_CREATE"], 10, 11)))
        assert.instanceOf(failureOf(exit), BrokerError)
        assert.isBelow(Date.now() - started, 2_000)
        yield* Effect.sleep("50 millis")
      }
      assert.isFalse(broker.connected())
      // Once the drop is known, a publish does not even try.
      const started = Date.now()
      const fast = yield* Effect.exit(broker.publish(fakeBatch(["MESSAGE_CREATE"], 10, 11)))
      assert.include((failureOf(fast) as BrokerError).message, "not connected")
      assert.isBelow(Date.now() - started, 100)

      yield* Effect.promise(() => proxy.restore())
      yield* Effect.promise(() =>
        waitFor("a publish to succeed after the line came back", async () =>
          Exit.isSuccess(await Effect.runPromiseExit(broker.publish(fakeBatch(["MESSAGE_CREATE"], 10, 21)))), 20_000)
      )
      assert.isTrue(broker.connected())
      const delivered = (yield* drain(channel, queueName(group, "MESSAGE_CREATE"))).map((m) => m.properties.headers?.["seq"] as number)
      // Everything confirmed is there: the first batch, and the one published after the restore
      // (possibly more than once: duplicates are allowed, losses are not).
      for (let seq = 1; seq <= 10; seq++) assert.include(delivered, seq)
      for (let seq = 21; seq <= 30; seq++) assert.include(delivered, seq)
    }), 60_000)
})
