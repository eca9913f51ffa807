// The Redis command source in-process, against a real Redis (REDIS_URL, default 127.0.0.1:6379),
// with short timings: routing SEND into inboxes, acknowledging, and what happens to entries held
// by a process that dies (taken over once idle) or that is merely waiting (kept alive).
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Layer, Logger, Redacted } from "effect"
import { Redis } from "ioredis"
import { inboxStream, SEND_STREAM } from "../../src/Commands/RedisNames.ts"
import { defaultRedisCommandOptions, makeRedisCommandSource, type RedisCommandOptions } from "../../src/Commands/RedisCommandSource.ts"
import { defaultRedisForwarderOptions, makeRedisForwarder, type RedisForwarderOptions } from "../../src/Commands/RedisForwarder.ts"
import { type CommandCounters, CommandStats } from "../../src/Commands/CommandStats.ts"
import { CommandForwarder } from "../../src/Commands/Forwarder.ts"
import { makeRedisClient, type RedisConnection } from "../../src/Redis/RedisClient.ts"
import { REDIS_URL, serviceAvailable, unique } from "../brokers/support.ts"
import { recorder, redisDatabase, routerLayer } from "./support.ts"

const available = await serviceAvailable("Redis", REDIS_URL)
// A database of its own: SEND is one stream per database, shared by every group reading it.
const URL_11 = redisDatabase(REDIS_URL, 11)

const fast = (group: string): RedisCommandOptions => ({
  ...defaultRedisCommandOptions(group),
  reclaimIdleMs: 1_500,
  reclaimEveryMs: 250,
  keepAliveEveryMs: 300,
  blockMs: 200
})

/** A plain client for the test's own writes, reads and cleanup. */
const testClient = Effect.acquireRelease(
  Effect.sync(() => new Redis(URL_11, { maxRetriesPerRequest: 1 })),
  (r) => Effect.promise(() => r.quit().catch(() => undefined))
)

/** Removes everything a test group left: its SEND group and entries, and its inboxes. */
const cleanup = (redis: Redis, group: string, shards: ReadonlyArray<number>, sendIds: Array<string>) =>
  Effect.promise(async () => {
    await redis.xgroup("DESTROY", SEND_STREAM, group).catch(() => undefined)
    if (sendIds.length > 0) await redis.xdel(SEND_STREAM, ...sendIds)
    await redis.del(...shards.map((s) => inboxStream(group, s)))
  })

/** One gateway process's command side: router + Redis source, running until interrupted. */
const consumer = (
  connection: RedisConnection,
  options: RedisCommandOptions,
  shards: { readonly shardIds: ReadonlyArray<number>; readonly shardCount: number },
  submit: (shard: number, payload: string) => Effect.Effect<void>,
  forwarding: Partial<Omit<RedisForwarderOptions, "stats">> = {},
  seen: { stats?: CommandCounters; readonly logs?: Array<{ level: string; message: string }> } = {}
) =>
  Effect.gen(function*() {
    seen.stats = yield* CommandStats
    const source = yield* makeRedisCommandSource(connection, options)
    yield* source.run
  }).pipe(
    Effect.scoped,
    Effect.provide(routerLayer({ ...shards, submit, forwarder: redisForwarder(connection, options.group, forwarding) })),
    Effect.provide(Logger.layer([
      Logger.make((o) => void seen.logs?.push({ level: o.logLevel, message: (o.message as Array<unknown>).map(String).join(" ") }))
    ], { mergeWithExisting: true }))
  )

const redisForwarder = (connection: RedisConnection, group: string, forwarding: Partial<Omit<RedisForwarderOptions, "stats">>) =>
  Layer.effect(
    CommandForwarder,
    Effect.map(CommandStats, (stats) => makeRedisForwarder(connection, group, { ...defaultRedisForwarderOptions(stats), ...forwarding }))
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

const pendingCount = (redis: Redis, stream: string, group: string) =>
  redis.xpending(stream, group).then((r) => Number((r as Array<unknown>)[0]))

describe.skipIf(!available)("Redis command source", () => {
  it.live("routes SEND entries into shard inboxes, sends the local ones, refuses and acks bad ones", () =>
    Effect.gen(function*() {
      const redis = yield* testClient
      const group = unique("cmdtest")
      const sendIds: Array<string> = []
      yield* Effect.addFinalizer(() => cleanup(redis, group, [0, 1], sendIds))
      const connection = yield* makeRedisClient([Redacted.make(URL_11)])
      const { sent, submit } = recorder()
      const fiber = yield* Effect.forkChild(consumer(connection, fast(group), { shardIds: [0], shardCount: 2 }, submit))
      yield* until("the SEND group", () => redis.xinfo("GROUPS", SEND_STREAM).then((gs) => JSON.stringify(gs).includes(group), () => false))
      const marker = unique("m")
      const add = (data: string | Buffer) => Effect.promise(() => redis.xadd(SEND_STREAM, "*", "data", data).then((id) => void sendIds.push(id!)))
      yield* add(JSON.stringify({ op: 3, shard_id: 0, d: { marker, n: 1 } }))
      yield* add(JSON.stringify({ op: 3, shard_id: 1, d: { marker, n: 2 } }))
      yield* add(JSON.stringify({ op: 3, d: { marker, n: 3 } }))
      yield* add(JSON.stringify({ op: 2, d: { token: "secret" } }))
      yield* add("not json")
      yield* Effect.promise(() => redis.xadd(SEND_STREAM, "*", "other", "field").then((id) => void sendIds.push(id!)))
      const mine = () => sent.filter((s) => s.payload.includes(marker))
      yield* until("the local sends", () => mine().length === 2)
      assert.deepStrictEqual(mine().map((s) => JSON.parse(s.payload).d.n).sort(), [1, 3])
      // Shard 1 runs elsewhere: its payloads wait in its inbox.
      const inbox1 = yield* Effect.promise(() => redis.xrange(inboxStream(group, 1), "-", "+"))
      assert.deepStrictEqual(inbox1.map(([, f]) => JSON.parse(f[1]!).d.n).sort(), [2, 3])
      // Everything read from SEND is acknowledged, the shard-0 inbox entries acked and deleted.
      yield* until("SEND acks", async () => (await pendingCount(redis, SEND_STREAM, group)) === 0)
      yield* until("inbox cleanup", async () => (await redis.xlen(inboxStream(group, 0))) === 0)
      yield* until("inbox acks", async () => (await pendingCount(redis, inboxStream(group, 0), group)) === 0)
      yield* Fiber.interrupt(fiber)
    }), 30_000)

  it.live("keeps held entries from being taken over, and takes over those of a process that died", () =>
    Effect.gen(function*() {
      const redis = yield* testClient
      const group = unique("cmdtest")
      yield* Effect.addFinalizer(() => cleanup(redis, group, [0], []))
      const connection = yield* makeRedisClient([Redacted.make(URL_11)])
      const shards = { shardIds: [0], shardCount: 1 }
      const inbox = inboxStream(group, 0)
      // Process A: its shard never becomes ready, so it holds what it reads.
      const a = yield* Effect.forkChild(consumer(connection, fast(group), shards, () => Effect.never))
      yield* until("A's inbox group", () => redis.xinfo("GROUPS", inbox).then((gs) => JSON.stringify(gs).includes(group), () => false))
      for (let n = 0; n < 5; n++) yield* Effect.promise(() => redis.xadd(inbox, "*", "data", JSON.stringify({ op: 3, d: { n } })))
      yield* until("A holding all 5", async () => (await pendingCount(redis, inbox, group)) === 5)
      // Process B: same shard (a restarted A, say). While A lives and keeps its entries fresh, B gets none.
      const { sent, submit } = recorder()
      const b = yield* Effect.forkChild(consumer(connection, fast(group), shards, submit))
      yield* Effect.sleep(3_500)
      assert.strictEqual(sent.length, 0)
      // A dies (its intake and upkeep stop, nothing is acknowledged): B takes over after the idle time.
      yield* Fiber.interrupt(a)
      yield* until("B sending A's commands", () => sent.length === 5, 10_000)
      assert.deepStrictEqual(sent.map((s) => JSON.parse(s.payload).d.n), [0, 1, 2, 3, 4])
      yield* until("B's acks", async () => (await pendingCount(redis, inbox, group)) === 0 && (await redis.xlen(inbox)) === 0)
      yield* Fiber.interrupt(b)
    }), 30_000)
  it.live("never trims an inbox: a full inbox holds SEND back until it drains, and nothing is lost or refused", () =>
    Effect.gen(function*() {
      const redis = yield* testClient
      const group = unique("cmdtest")
      const sendIds: Array<string> = []
      yield* Effect.addFinalizer(() => cleanup(redis, group, [0], sendIds))
      const connection = yield* makeRedisClient([Redacted.make(URL_11)])
      const inbox = inboxStream(group, 0)
      // A slow shard: each send takes 30 ms, and the inbox may hold 5 entries.
      const sent: Array<number> = []
      const submit = (_shard: number, payload: string) => Effect.as(Effect.sleep(30), void sent.push(JSON.parse(payload).d.n))
      const seen: { stats?: CommandCounters } = {}
      const fiber = yield* Effect.forkChild(
        consumer(connection, fast(group), { shardIds: [0], shardCount: 1 }, submit, { inboxLimit: 5, stuckAfterMs: 60_000, pollMs: 20 }, seen)
      )
      yield* until("the SEND group", () => redis.xinfo("GROUPS", SEND_STREAM).then((gs) => JSON.stringify(gs).includes(group), () => false))
      const COUNT = 60
      const pipeline = redis.pipeline()
      for (let n = 0; n < COUNT; n++) pipeline.xadd(SEND_STREAM, "*", "data", JSON.stringify({ op: 3, shard_id: 0, d: { n } }))
      for (const [, id] of (yield* Effect.promise(() => pipeline.exec()))!) sendIds.push(id as string)
      let longest = 0
      yield* until("all sent", async () => {
        longest = Math.max(longest, await redis.xlen(inbox))
        return sent.length >= COUNT
      }, 20_000)
      assert.deepStrictEqual(sent, Array.from({ length: COUNT }, (_, n) => n))
      assert.isAtMost(longest, 5)
      assert.strictEqual(seen.stats!.refusedTotal, 0)
      assert.strictEqual(seen.stats!.forwarded, COUNT)
      yield* until("SEND acks", async () => (await pendingCount(redis, SEND_STREAM, group)) === 0)
      yield* Fiber.interrupt(fiber)
    }), 30_000)

  it.live("refuses and counts commands for an inbox that stays full (nobody runs the shard), and the other shards go on", () =>
    Effect.gen(function*() {
      const redis = yield* testClient
      const group = unique("cmdtest")
      const sendIds: Array<string> = []
      yield* Effect.addFinalizer(() => cleanup(redis, group, [0, 1], sendIds))
      const connection = yield* makeRedisClient([Redacted.make(URL_11)])
      const { sent, submit } = recorder()
      const seen: { stats?: CommandCounters; logs: Array<{ level: string; message: string }> } = { logs: [] }
      // This process runs shard 0 of 2; shard 1's inbox fills up and is never read.
      const fiber = yield* Effect.forkChild(
        consumer(connection, fast(group), { shardIds: [0], shardCount: 2 }, submit, { inboxLimit: 5, stuckAfterMs: 500, pollMs: 20 }, seen)
      )
      yield* until("the SEND group", () => redis.xinfo("GROUPS", SEND_STREAM).then((gs) => JSON.stringify(gs).includes(group), () => false))
      const add = (data: string) => Effect.promise(() => redis.xadd(SEND_STREAM, "*", "data", data).then((id) => void sendIds.push(id!)))
      for (let n = 0; n < 12; n++) yield* add(JSON.stringify({ op: 3, shard_id: 1, d: { n } }))
      yield* add(JSON.stringify({ op: 3, shard_id: 0, d: { n: 100 } }))
      yield* until("the shard-0 command", () => sent.length === 1, 15_000)
      yield* until("SEND acks", async () => (await pendingCount(redis, SEND_STREAM, group)) === 0)
      // The first 5 wait in shard 1's inbox, in order; the other 7 were refused and counted.
      const inbox1 = yield* Effect.promise(() => redis.xrange(inboxStream(group, 1), "-", "+"))
      assert.deepStrictEqual(inbox1.map(([, f]) => JSON.parse(f[1]!).d.n), [0, 1, 2, 3, 4])
      assert.strictEqual(seen.stats!.refused.get("inbox_full"), 7)
      assert.strictEqual(seen.stats!.forwarded, 5 + 1)
      const warnings = seen.logs.filter((l) => /refused \(inbox_full\)/.test(l.message))
      assert.isAtLeast(warnings.length, 1)
      assert.include(warnings[0]!.message, inboxStream(group, 1))
      // Once shard 1 is read again (its inbox has room), its commands are taken again.
      yield* Effect.promise(() => redis.del(inboxStream(group, 1)))
      yield* add(JSON.stringify({ op: 3, shard_id: 1, d: { n: 200 } }))
      yield* until("the inbox taking commands again", async () => (await redis.xlen(inboxStream(group, 1))) === 1, 15_000)
      assert.strictEqual(seen.stats!.refused.get("inbox_full"), 7)
      yield* Fiber.interrupt(fiber)
    }), 30_000)

  it.live("warns of a takeover only when another consumer holds the entries, and says so when they were deleted instead", () =>
    Effect.gen(function*() {
      const redis = yield* testClient
      const group = unique("cmdtest")
      yield* Effect.addFinalizer(() => cleanup(redis, group, [0], []))
      const connection = yield* makeRedisClient([Redacted.make(URL_11)])
      const inbox = inboxStream(group, 0)
      const seen: { stats?: CommandCounters; logs: Array<{ level: string; message: string }> } = { logs: [] }
      // The shard never becomes ready: the process holds what it reads.
      const a = yield* Effect.forkChild(consumer(connection, fast(group), { shardIds: [0], shardCount: 1 }, () => Effect.never, {}, seen))
      yield* until("the inbox group", () => redis.xinfo("GROUPS", inbox).then((gs) => JSON.stringify(gs).includes(group), () => false))
      const ids: Array<string> = []
      for (let n = 0; n < 4; n++) ids.push((yield* Effect.promise(() => redis.xadd(inbox, "*", "data", JSON.stringify({ op: 3, d: { n } }))))!)
      yield* until("all 4 held", async () => (await pendingCount(redis, inbox, group)) === 4)
      // Several keep-alive rounds while nothing happens: no warning.
      yield* Effect.sleep(1_000)
      assert.deepStrictEqual(seen.logs.filter((l) => /taken over|no longer pending/.test(l.message)), [])
      // One is deleted (and its pending entry with it); one is claimed by another consumer.
      yield* Effect.promise(() => redis.xack(inbox, group, ids[0]!).then(() => redis.xdel(inbox, ids[0]!)))
      yield* Effect.promise(() => redis.xclaim(inbox, group, "other-gateway", 0, ids[1]!, "JUSTID"))
      yield* until("both warnings", () => seen.logs.filter((l) => /taken over|no longer pending/.test(l.message)).length >= 2)
      const warnings = seen.logs.filter((l) => /taken over|no longer pending/.test(l.message)).map((l) => l.message)
      assert.strictEqual(warnings.length, 2)
      assert.isTrue(warnings.some((m) => m.startsWith(`1 command(s) of ${inbox} were taken over by gateway process other-gateway`)))
      assert.isTrue(warnings.some((m) => m.startsWith(`1 command(s) of ${inbox} held by this process are no longer pending for anyone`)))
      yield* Fiber.interrupt(a)
    }), 30_000)
})
