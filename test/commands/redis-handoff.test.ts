// Shards moving between gateway processes, for the Redis command source: two source instances
// with two ShardOwnerships stand for two processes of one bot. A shard acquired at run time has
// its inbox read; a shard released hands the entries it held to the next owner at once (not after
// the reclaim idle time), and nothing is lost or sent twice across the handoff.
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Layer } from "effect"
import { Redacted } from "effect"
import { Redis } from "ioredis"
import { ShardOwnership } from "../../src/Cluster/ShardOwnership.ts"
import { CommandStats } from "../../src/Commands/CommandStats.ts"
import { CommandForwarder } from "../../src/Commands/Forwarder.ts"
import { defaultRedisCommandOptions, makeRedisCommandSource, type RedisCommandOptions } from "../../src/Commands/RedisCommandSource.ts"
import { defaultRedisForwarderOptions, makeRedisForwarder } from "../../src/Commands/RedisForwarder.ts"
import { inboxStream, SEND_STREAM } from "../../src/Commands/RedisNames.ts"
import { makeRedisClient, type RedisConnection } from "../../src/Redis/RedisClient.ts"
import { ReadinessLive } from "../../src/Resilience/Readiness.ts"
import { Supervision } from "../../src/Resilience/Supervisor.ts"
import { REDIS_URL, serviceAvailable, unique } from "../brokers/support.ts"
import { redisDatabase, routerLayer } from "./support.ts"

const available = await serviceAvailable("Redis", REDIS_URL)
const URL_13 = redisDatabase(REDIS_URL, 13)

// Reclaiming by idle time is out of reach here (a minute, checked every minute): whatever moves
// between the two processes moves by the handoff.
const options = (group: string): RedisCommandOptions => ({
  ...defaultRedisCommandOptions(group),
  reclaimIdleMs: 60_000,
  reclaimEveryMs: 60_000,
  keepAliveEveryMs: 300,
  blockMs: 200
})

const testClient = Effect.acquireRelease(
  Effect.sync(() => new Redis(URL_13, { maxRetriesPerRequest: 1 })),
  (r) => Effect.promise(() => r.quit().catch(() => undefined))
)

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
const gatewayProcess = (connection: RedisConnection, group: string, shardCount: number, paceMs: number, overrides: Partial<RedisCommandOptions> = {}) => {
  const sent: Array<number> = []
  const handle: { ownership?: ShardOwnership["Service"] } = {}
  const forwarder = Layer.effect(
    CommandForwarder,
    Effect.map(CommandStats, (stats) => makeRedisForwarder(connection, group, defaultRedisForwarderOptions(stats)))
  )
  const run = Effect.gen(function*() {
    handle.ownership = yield* ShardOwnership
    const source = yield* makeRedisCommandSource(connection, { ...options(group), ...overrides })
    yield* source.run
  }).pipe(
    Effect.scoped,
    Effect.provide(routerLayer({
      shardIds: [],
      shardCount,
      automatic: true,
      // Each send waits for the window first, as a shard's sender does; then it is synchronous.
      pace: () => Effect.sleep(paceMs),
      submit: (_shard, payload) => Effect.sync(() => void sent.push(JSON.parse(payload).d.n)),
      forwarder
    })),
    Effect.provide(Layer.merge(ReadinessLive, Supervision.layer))
  )
  const ownership = () => {
    if (handle.ownership === undefined) throw new Error("the process is not running yet")
    return handle.ownership
  }
  return { sent, run, ownership }
}

const pendingCount = (redis: Redis, stream: string, group: string) =>
  redis.xpending(stream, group).then((r) => Number((r as Array<unknown>)[0]), () => 0)

/** A test's Redis client, a group of its own, shard 0's inbox (deleted at the end) and the gateway's connection. */
const handoffSetup = (name: string) =>
  Effect.gen(function*() {
    const redis = yield* testClient
    const group = unique(name)
    const inbox = inboxStream(group, 0)
    yield* Effect.addFinalizer(() => Effect.promise(() => redis.del(inbox)))
    const connection = yield* makeRedisClient([Redacted.make(URL_13)])
    return { redis, group, inbox, connection }
  })

/** Runs both processes; their fibers, once each has its ShardOwnership. */
const runBoth = (a: ReturnType<typeof gatewayProcess>, b: ReturnType<typeof gatewayProcess>) =>
  Effect.gen(function*() {
    const fa = yield* Effect.forkChild(a.run)
    const fb = yield* Effect.forkChild(b.run)
    yield* until("both running", () => {
      try {
        return a.ownership() !== undefined && b.ownership() !== undefined
      } catch {
        return false
      }
    })
    return [fa, fb] as const
  })

describe.skipIf(!available)("Redis command inboxes following shard ownership", () => {
  it.live("reads the inbox of a shard acquired at run time, what was waiting there first, then what comes through SEND", () =>
    Effect.gen(function*() {
      const redis = yield* testClient
      const group = unique("handoff")
      const sendIds: Array<string> = []
      yield* Effect.addFinalizer(() =>
        Effect.promise(async () => {
          await redis.xgroup("DESTROY", SEND_STREAM, group).catch(() => undefined)
          if (sendIds.length > 0) await redis.xdel(SEND_STREAM, ...sendIds)
          await redis.del(inboxStream(group, 0), inboxStream(group, 1))
        })
      )
      const connection = yield* makeRedisClient([Redacted.make(URL_13)])
      const a = gatewayProcess(connection, group, 2, 0)
      const fiber = yield* Effect.forkChild(a.run)
      yield* until("the SEND group", () => redis.xinfo("GROUPS", SEND_STREAM).then((gs) => JSON.stringify(gs).includes(group), () => false))
      // Shard 1 waits for a process: its commands wait in its inbox, unread.
      for (let n = 0; n < 3; n++) yield* Effect.promise(() => redis.xadd(inboxStream(group, 1), "*", "data", JSON.stringify({ op: 3, d: { n } })))
      yield* Effect.sleep(500)
      assert.deepStrictEqual(a.sent, [])
      assert.isFalse(a.ownership().owns(1))
      yield* a.ownership().acquire(1)
      yield* until("the waiting commands", () => a.sent.length === 3)
      const id = yield* Effect.promise(() => redis.xadd(SEND_STREAM, "*", "data", JSON.stringify({ op: 3, shard_id: 1, d: { n: 3 } })))
      sendIds.push(id!)
      yield* until("the command through SEND", () => a.sent.length === 4)
      assert.deepStrictEqual(a.sent, [0, 1, 2, 3])
      yield* until("inbox acks", async () => (await pendingCount(redis, inboxStream(group, 1), group)) === 0 && (await redis.xlen(inboxStream(group, 1))) === 0)
      yield* Fiber.interrupt(fiber)
    }), 30_000)

  it.live("hands a released shard's pending commands to the next process at once: none lost, none sent twice, none stale later", () =>
    Effect.gen(function*() {
      const { redis, group, inbox, connection } = yield* handoffSetup("handoff")
      // A sends slowly (so it holds a backlog when the shard moves); B at once.
      const a = gatewayProcess(connection, group, 1, 40)
      const b = gatewayProcess(connection, group, 1, 0)
      const [fa, fb] = yield* runBoth(a, b)
      const COUNT = 40
      const pipeline = redis.pipeline()
      for (let n = 0; n < COUNT; n++) pipeline.xadd(inbox, "*", "data", JSON.stringify({ op: 3, d: { n } }))
      yield* Effect.promise(() => pipeline.exec())
      yield* a.ownership().acquire(0)
      yield* until("A sending", () => a.sent.length >= 5)
      // The shard moves: A lets go first (as a handoff does), then B takes it.
      yield* a.ownership().release(0)
      const sentByA = a.sent.length
      assert.isBelow(sentByA, COUNT)
      yield* b.ownership().acquire(0)
      // Well before the 60 s reclaim idle time: only the handoff can bring them over this soon.
      yield* until("B sending the rest", () => sentByA + b.sent.length >= COUNT, 8_000)
      yield* Effect.sleep(500)
      assert.strictEqual(a.sent.length, sentByA)
      assert.deepStrictEqual([...a.sent, ...b.sent], Array.from({ length: COUNT }, (_, n) => n))
      yield* until("all acknowledged and deleted", async () => (await pendingCount(redis, inbox, group)) === 0 && (await redis.xlen(inbox)) === 0)
      // The shard comes back to A: only what is new is sent, nothing A had queued before.
      yield* b.ownership().release(0)
      yield* a.ownership().acquire(0)
      yield* Effect.promise(() => redis.xadd(inbox, "*", "data", JSON.stringify({ op: 3, d: { n: COUNT } })))
      yield* until("A sending the new command", () => a.sent.length === sentByA + 1)
      yield* Effect.sleep(500)
      assert.deepStrictEqual(a.sent.slice(sentByA), [COUNT])
      assert.strictEqual(b.sent.length, COUNT - sentByA)
      yield* Fiber.interrupt(fa)
      yield* Fiber.interrupt(fb)
    }), 30_000)

  it.live("a process that stops hands the SEND commands it was given on at once, not after the reclaim idle time", () =>
    Effect.gen(function*() {
      const { redis, group, connection } = yield* handoffSetup("stopping")
      const consumerA = `${group}-A`
      // A will stop holding SEND entries; B runs shard 0 and looks for entries to take over often.
      const a = gatewayProcess(connection, group, 1, 0, { consumer: consumerA })
      const b = gatewayProcess(connection, group, 1, 0, { consumer: `${group}-B`, reclaimEveryMs: 200 })
      const [fa, fb] = yield* runBoth(a, b)
      yield* b.ownership().acquire(0)
      yield* until("both groups on SEND", async () => {
        const groups = (await redis.xinfo("GROUPS", SEND_STREAM).catch(() => [])) as Array<Array<unknown>>
        return groups.some((row) => row[1] === group) && (await pendingCount(redis, SEND_STREAM, group)) === 0
      })
      // SEND entries Redis gives A as it stops (its read answered, A interrupted before routing
      // them): added and read for A in one transaction, so A's own reader cannot take them first.
      const COUNT = 5
      const transaction = redis.multi()
      for (let n = 0; n < COUNT; n++) transaction.xadd(SEND_STREAM, "*", "data", JSON.stringify({ op: 3, shard_id: 0, d: { n } }))
      transaction.xreadgroup("GROUP", group, consumerA, "COUNT", COUNT, "STREAMS", SEND_STREAM, ">")
      yield* Effect.promise(() => transaction.exec())
      assert.strictEqual(yield* Effect.promise(() => pendingCount(redis, SEND_STREAM, group)), COUNT)
      yield* Fiber.interrupt(fa)
      // Far below the 60 s reclaim idle time: only A's hand-off can bring them to B this soon.
      yield* until("B sending what A was given", () => b.sent.length >= COUNT, 8_000)
      assert.deepStrictEqual([...b.sent].sort(), Array.from({ length: COUNT }, (_, n) => n))
      assert.deepStrictEqual(a.sent, [])
      yield* Fiber.interrupt(fb)
    }), 30_000)
})
