// Shards moving between gateway processes, for the AMQP command source: two source instances
// with two ShardOwnerships stand for two processes of one bot. A shard acquired at run time has
// its inbox queue consumed; a shard released gives back (requeues) what it held unsent, so the
// next owner sends it: nothing lost, nothing sent twice, nothing stale if it comes back.
import { assert, describe, it } from "@effect/vitest"
import * as amqp from "amqplib"
import { Effect, Fiber, Layer } from "effect"
import { ShardOwnership } from "../../src/Cluster/ShardOwnership.ts"
import { AmqpCommandLinkLive, declareInbox, inboxQueue, sendQueue } from "../../src/Commands/AmqpCommandLink.ts"
import { makeAmqpCommandSource } from "../../src/Commands/AmqpCommandSource.ts"
import { AppConfig } from "../../src/Config/AppConfig.ts"
import { ReadinessLive } from "../../src/Resilience/Readiness.ts"
import { Supervision } from "../../src/Resilience/Supervisor.ts"
import { AMQP_URL, serviceAvailable, testConfig, unique } from "../brokers/support.ts"
import { routerLayer } from "./support.ts"

const available = await serviceAvailable("RabbitMQ", AMQP_URL)

const until = (what: string, check: () => Promise<boolean> | boolean, timeoutMs = 10_000) =>
  Effect.promise(async () => {
    const deadline = Date.now() + timeoutMs
    while (Date.now() < deadline) {
      if (await check()) return
      await new Promise((r) => setTimeout(r, 25))
    }
    throw new Error(`timed out waiting for ${what}`)
  })

/** One gateway process of an automatic cluster: no shards at first; `ownership` once running. */
const gatewayProcess = (group: string, paceMs: number) => {
  const sent: Array<number> = []
  const handle: { ownership?: ShardOwnership["Service"] } = {}
  const run = Effect.gen(function*() {
    handle.ownership = yield* ShardOwnership
    const source = yield* makeAmqpCommandSource
    yield* source.run
  }).pipe(
    Effect.provide(AmqpCommandLinkLive),
    Effect.provide(AppConfig.layer(testConfig({ broker: { type: "amqp", group } }))),
    Effect.provide(routerLayer({
      shardIds: [],
      shardCount: 1,
      automatic: true,
      pace: () => Effect.sleep(paceMs),
      submit: (_shard, payload) => Effect.sync(() => void sent.push(JSON.parse(payload).d.n))
    })),
    Effect.provide(Layer.merge(ReadinessLive, Supervision.layer))
  )
  const ownership = () => handle.ownership
  return { sent, run, ownership }
}

describe.skipIf(!available)("AMQP command inboxes following shard ownership", () => {
  it.live("consumes a shard's inbox from when it is acquired, and requeues what it held when released: none lost, none twice", () =>
    Effect.gen(function*() {
      const group = unique("handoff")
      const connection = yield* Effect.acquireRelease(Effect.promise(() => amqp.connect(AMQP_URL)), (c) => Effect.promise(() => c.close().catch(() => undefined)))
      const channel = yield* Effect.promise(() => connection.createConfirmChannel())
      yield* Effect.promise(() => channel.assertExchange(group, "direct", { durable: true }))
      yield* Effect.promise(() => declareInbox(channel, group, 0))
      yield* Effect.addFinalizer(() =>
        Effect.promise(async () => {
          await channel.deleteQueue(inboxQueue(group, 0)).catch(() => undefined)
          await channel.deleteQueue(sendQueue(group)).catch(() => undefined)
          await channel.deleteExchange(group).catch(() => undefined)
        })
      )
      const publish = (n: number) =>
        Effect.promise(() =>
          new Promise<void>((resolve, reject) =>
            channel.sendToQueue(inboxQueue(group, 0), Buffer.from(JSON.stringify({ op: 3, d: { n } })), { persistent: true }, (e: unknown) => (e ? reject(e) : resolve()))
          )
        )
      const COUNT = 40
      for (let n = 0; n < COUNT; n++) yield* publish(n)
      // A sends slowly (so it holds a backlog when the shard moves); B at once.
      const a = gatewayProcess(group, 40)
      const b = gatewayProcess(group, 0)
      const fa = yield* Effect.forkChild(a.run)
      const fb = yield* Effect.forkChild(b.run)
      yield* until("both running", () => a.ownership() !== undefined && b.ownership() !== undefined)
      yield* Effect.sleep(500)
      assert.deepStrictEqual([...a.sent, ...b.sent], [])
      yield* a.ownership()!.acquire(0)
      yield* until("A sending", () => a.sent.length >= 5)
      yield* a.ownership()!.release(0)
      const sentByA = a.sent.length
      assert.isBelow(sentByA, COUNT)
      yield* b.ownership()!.acquire(0)
      yield* until("B sending the rest", () => sentByA + b.sent.length >= COUNT)
      yield* Effect.sleep(500)
      assert.strictEqual(a.sent.length, sentByA)
      assert.deepStrictEqual([...a.sent, ...b.sent], Array.from({ length: COUNT }, (_, n) => n))
      // The shard comes back to A: only what is new is sent, nothing A had queued before.
      yield* b.ownership()!.release(0)
      yield* a.ownership()!.acquire(0)
      yield* publish(COUNT)
      yield* until("A sending the new command", () => a.sent.length === sentByA + 1)
      yield* Effect.sleep(500)
      assert.deepStrictEqual(a.sent.slice(sentByA), [COUNT])
      assert.strictEqual(b.sent.length, COUNT - sentByA)
      const left = yield* Effect.promise(() => channel.checkQueue(inboxQueue(group, 0)))
      assert.strictEqual(left.messageCount, 0)
      yield* Fiber.interrupt(fa)
      yield* Fiber.interrupt(fb)
    }), 30_000)
})
