// An existing group exchange declared with other settings (the Go gateway's older releases made
// it auto_delete): used as it is when events can still be routed by name, refused otherwise.
import { assert, describe, it } from "@effect/vitest"
import * as amqp from "amqplib"
import { Effect, Exit, Logger, Redacted } from "effect"
import { makeAmqpBroker, queueName } from "../../src/Broker/AmqpBroker.ts"
import { BrokerError } from "../../src/Broker/Broker.ts"
import { AMQP_URL, fakeBatch, serviceAvailable, unique } from "../brokers/support.ts"

const available = await serviceAvailable("RabbitMQ", AMQP_URL)

const admin = (group: string) =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const connection = await amqp.connect(AMQP_URL)
      return { connection, channel: await connection.createChannel() }
    }),
    ({ connection, channel }) =>
      Effect.promise(async () => {
        await channel.deleteQueue(queueName(group, "MESSAGE_CREATE")).catch(() => undefined)
        await channel.deleteExchange(group).catch(() => undefined)
        await connection.close().catch(() => undefined)
      })
  )

const broker = (group: string) =>
  makeAmqpBroker({ url: Redacted.make(AMQP_URL), group, encoding: "json", messageTimeoutMs: 0, events: ["MESSAGE_CREATE"] })

const failureOf = (exit: Exit.Exit<unknown, unknown>) =>
  Exit.isFailure(exit) ? exit.cause.reasons.find((r) => r._tag === "Fail")?.error : undefined

describe.skipIf(!available)("an existing group exchange with other settings", () => {
  const usable: ReadonlyArray<readonly [string, amqp.Options.AssertExchange, string, string]> = [
    ["auto_delete (the Go gateway before 2022-03)", { durable: true, autoDelete: true }, "direct", "auto_delete"],
    ["not durable", { durable: false }, "direct", "durable"],
    ["with arguments", { durable: true, arguments: { "alternate-exchange": "elsewhere" } }, "direct", "alternate-exchange"],
    ["a topic exchange", { durable: true }, "topic", "type"]
  ]
  for (const [name, options, type, differs] of usable) {
    it.live(`is used as it is when ${name}, with a warning saying what differs`, () =>
      Effect.gen(function*() {
        const group = unique("migration_x")
        const { channel } = yield* admin(group)
        yield* Effect.promise(() => channel.assertExchange(group, type, options))
        const warnings: Array<string> = []
        const collect = Logger.layer([
          Logger.make((options) => {
            if (options.logLevel === "Warn") {
              warnings.push(Array.isArray(options.message) ? options.message.join(" ") : String(options.message))
            }
          })
        ])
        const published = yield* Effect.gen(function*() {
          const events = yield* broker(group)
          yield* events.publish(fakeBatch(["MESSAGE_CREATE"], 3))
        }).pipe(Effect.scoped, Effect.provide(collect), Effect.exit)
        assert.isTrue(Exit.isSuccess(published), String(published))
        const waiting = yield* Effect.promise(() => channel.checkQueue(queueName(group, "MESSAGE_CREATE")))
        assert.strictEqual(waiting.messageCount, 3)
        // Still the exchange as it was: a passive check, nothing redeclared.
        assert.strictEqual(warnings.length, 1, warnings.join("\n"))
        assert.include(warnings[0], `RabbitMQ exchange "${group}" already exists with other settings`)
        assert.include(warnings[0], `inequivalent arg '${differs}'`)
      }))
  }

  for (const [name, type, options] of [["fanout", "fanout", {}], ["internal", "direct", { internal: true }]] as const) {
    it.live(`still stops the start for a ${name} exchange, which cannot take events by name`, () =>
      Effect.gen(function*() {
        const group = unique("migration_x")
        const { channel } = yield* admin(group)
        yield* Effect.promise(() => channel.assertExchange(group, type, { durable: true, ...options }))
        const exit = yield* Effect.exit(Effect.scoped(broker(group)))
        const error = failureOf(exit)
        assert.instanceOf(error, BrokerError)
        assert.include((error as BrokerError).message, "PRECONDITION_FAILED")
        assert.include((error as BrokerError).message, "needs a direct (or topic) exchange")
      }))
  }
})
