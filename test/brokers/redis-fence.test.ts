// Fencing on the Redis Streams broker against a real Redis: a publish carrying a lease epoch older
// than its shard's fence is refused in the same round trip (not in the stream, reported as
// refused), a current one is added with the usual fields; raise() fences every stream the gateway
// may publish to; in a mixed batch only the stale shard's entries are refused, and through the
// event path the others keep their order and receipts. Each test has its own streams and prefix.
import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Layer, Metric, Redacted } from "effect"
import { Redis } from "ioredis"
import { Broker } from "../../src/Broker/Broker.ts"
import type { DispatchEvent } from "../../src/Broker/DispatchEvent.ts"
import { PublishFence } from "../../src/Broker/Fence.ts"
import { makeOutbox, Outbox } from "../../src/Broker/Outbox.ts"
import { makeRedisBroker, RedisBrokerLive } from "../../src/Broker/RedisBroker.ts"
import { fenceKey } from "../../src/Broker/RedisFence.ts"
import { AppConfig } from "../../src/Config/AppConfig.ts"
import { KNOWN_DISPATCH_EVENTS } from "../../src/Discord/Events.ts"
import { runEventPath } from "../../src/EventPath.ts"
import { fencedTotal, GatewayCounters, GatewayStats } from "../../src/Metrics/GatewayStats.ts"
import { makeRedisClient, RedisClient } from "../../src/Redis/RedisClient.ts"
import { makeReadiness, Readiness } from "../../src/Resilience/Readiness.ts"
import { collectLogs } from "../support/logs.ts"
import { freePort, REDIS_URL, serviceAvailable, startRedisServer, testConfig, unique } from "./support.ts"

const available = await serviceAvailable("Redis", REDIS_URL)

const reader = Effect.acquireRelease(
  Effect.sync(() => new Redis(REDIS_URL, { maxRetriesPerRequest: 1 })),
  (r) => Effect.promise(() => r.quit().catch(() => undefined))
)

/** An event read under lease `epoch`; `acked` records the seqs its receipt was told. */
export const leasedEvent = (t: string, shard: number, seq: number, epoch: number, acked?: Array<string>): DispatchEvent => ({
  t,
  shard,
  seq,
  epoch,
  data: Buffer.from(JSON.stringify({ shard, seq })),
  receipt: { accepted: (s) => void acked?.push(`${shard}:${s}`), current: () => true }
})

/** (field, value) pairs of every entry of `stream`, oldest first. */
const entries = (redis: Redis, stream: string) =>
  Effect.promise(async () => (await redis.xrange(stream, "-", "+")).map(([, fields]) => fields))

const shardSeq = (fields: ReadonlyArray<string>) => `${fields[3]}:${fields[5]}`

const cleanup = (redis: Redis, keys: ReadonlyArray<string>) => Effect.addFinalizer(() => Effect.promise(() => redis.del(...keys)))

describe.skipIf(!available)("Redis publish fence", () => {
  it.live("refuses a publish whose epoch is below the shard's fence, in the same call, and adds a current one", () =>
    Effect.gen(function*() {
      const redis = yield* reader
      const prefix = `${unique("fence")}:`
      const stream = unique("MESSAGE_CREATE")
      yield* cleanup(redis, [stream, fenceKey(stream, prefix)])
      const broker = makeRedisBroker(yield* makeRedisClient([Redacted.make(REDIS_URL)]), {
        encoding: "json", messageTimeoutMs: 60_000, maxLength: 1_000, fencePrefix: prefix
      })

      const first = yield* broker.publish([leasedEvent(stream, 0, 1, 5)])
      assert.deepStrictEqual(first.refused, [])
      // The publish raised the fence to the epoch it carried.
      assert.strictEqual(yield* Effect.promise(() => redis.hget(fenceKey(stream, prefix), "0")), "5")

      const stale = leasedEvent(stream, 0, 2, 4)
      const second = yield* broker.publish([stale])
      assert.deepStrictEqual(second.refused, [stale])
      const third = yield* broker.publish([leasedEvent(stream, 0, 3, 5), leasedEvent(stream, 0, 4, 6)])
      assert.deepStrictEqual(third.refused, [])

      const got = yield* entries(redis, stream)
      assert.deepStrictEqual(got.map(shardSeq), ["0:1", "0:3", "0:4"], "the stale entry is not in the stream")
      // Same fields, same order as an unfenced XADD.
      assert.deepStrictEqual(got[0], ["data", JSON.stringify({ shard: 0, seq: 1 }), "shard", "0", "seq", "1"])
      assert.strictEqual(yield* Effect.promise(() => redis.hget(fenceKey(stream, prefix), "0")), "6")
    }))

  it.live("raise() fences every configured stream and every stream published to: an older epoch's later publish is refused", () =>
    Effect.gen(function*() {
      const redis = yield* reader
      const prefix = `${unique("fence")}:`
      const configured = [unique("GUILD_CREATE"), unique("TYPING_START")]
      const other = unique("PRESENCE_UPDATE")
      yield* cleanup(redis, [...configured, other].flatMap((s) => [s, fenceKey(s, prefix)]))
      const config = {
        ...testConfig({ broker: { type: "redis" }, events: { all: false, names: new Set(configured) } }),
        shardStore: { type: "redis" as const, prefix, path: "/tmp/unused.json" }
      }
      const layer = RedisBrokerLive.pipe(Layer.provide(RedisClient.layer), Layer.provide(AppConfig.layer(config)))
      yield* Effect.gen(function*() {
        const broker = yield* Broker
        const fence = yield* PublishFence
        // A stream outside the configured names that this process published to is fenced too.
        yield* broker.publish([leasedEvent(other, 3, 1, 7)])

        yield* fence.raise(3, 8)
        for (const stream of [...configured, other]) {
          assert.strictEqual(yield* Effect.promise(() => redis.hget(fenceKey(stream, prefix), "3")), "8", stream)
        }
        const stale = [...configured, other].map((t, i) => leasedEvent(t, 3, 10 + i, 7))
        const result = yield* broker.publish(stale)
        assert.sameMembers([...result.refused], stale)
        // Other shards are not affected, and raising never lowers a fence.
        assert.deepStrictEqual((yield* broker.publish([leasedEvent(configured[0]!, 4, 1, 1)])).refused, [])
        yield* fence.raise(3, 2)
        assert.strictEqual(yield* Effect.promise(() => redis.hget(fenceKey(configured[1]!, prefix), "3")), "8")
        assert.lengthOf((yield* broker.publish([leasedEvent(configured[1]!, 3, 20, 7)])).refused, 1)
      }).pipe(Effect.provide(layer))

      assert.deepStrictEqual((yield* entries(redis, other)).map(shardSeq), ["3:1"])
      assert.deepStrictEqual((yield* entries(redis, configured[0]!)).map(shardSeq), ["4:1"])
      assert.deepStrictEqual(yield* entries(redis, configured[1]!), [])
    }))

  it.live("without configured names, raise() covers every known dispatch event", () =>
    Effect.gen(function*() {
      const redis = yield* reader
      const prefix = `${unique("fence")}:`
      const keys = [...KNOWN_DISPATCH_EVENTS].map((s) => fenceKey(s, prefix))
      yield* cleanup(redis, keys)
      const config = { ...testConfig({ broker: { type: "redis" } }), shardStore: { type: "redis" as const, prefix, path: "/tmp/unused.json" } }
      const layer = RedisBrokerLive.pipe(Layer.provide(RedisClient.layer), Layer.provide(AppConfig.layer(config)))
      yield* Effect.flatMap(PublishFence, (fence) => fence.raise(2, 3)).pipe(Effect.provide(layer))
      const values = yield* Effect.promise(() => Promise.all(keys.map((k) => redis.hget(k, "2"))))
      assert.isTrue(values.every((v) => v === "3"), `every known event's fence holds epoch 3 (${values.filter((v) => v !== "3").length} do not)`)
    }))

  it.live("a mixed batch through the event path: only the stale shard's entries are refused; the rest keep order and receipts", () =>
    Effect.gen(function*() {
      const redis = yield* reader
      const prefix = `${unique("fence")}:`
      const streams = [unique("MESSAGE_CREATE"), unique("MESSAGE_UPDATE")]
      yield* cleanup(redis, streams.flatMap((s) => [s, fenceKey(s, prefix)]))
      // Another process claimed shard 0 at epoch 9 (and raised the fence); this one still holds shard 1 at epoch 4.
      for (const s of streams) yield* Effect.promise(() => redis.hset(fenceKey(s, prefix), "0", "9"))
      const acked: Array<string> = []
      const batch = Array.from({ length: 40 }, (_, i) => leasedEvent(streams[i % 2]!, i % 4 === 0 ? 0 : 1, i + 1, i % 4 === 0 ? 8 : 4, acked))
      const broker = makeRedisBroker(yield* makeRedisClient([Redacted.make(REDIS_URL)]), {
        encoding: "json", messageTimeoutMs: 0, maxLength: 1_000, fencePrefix: prefix
      })
      const outbox = yield* makeOutbox(1_000)
      const stats = new GatewayCounters(Context.make(Metric.MetricRegistry, new Map()))
      const logs = collectLogs()
      for (const e of batch) outbox.offer(e)
      yield* outbox.end
      yield* runEventPath.pipe(
        Effect.provide(Layer.mergeAll(
          Layer.succeed(Outbox, outbox),
          Layer.succeed(Broker, broker),
          Layer.succeed(Readiness, makeReadiness()),
          Layer.succeed(GatewayStats, stats),
          logs.layer
        ))
      )
      const current = batch.filter((e) => e.shard === 1)
      assert.deepStrictEqual(acked, current.map((e) => `1:${e.seq}`), "receipts of the current shard, in order; none for the stale one")
      for (const s of streams) {
        assert.deepStrictEqual((yield* entries(redis, s)).map(shardSeq), current.filter((e) => e.t === s).map((e) => `1:${e.seq}`))
      }
      assert.strictEqual(outbox.size(), 0, "refused events leave the outbox too")
      assert.strictEqual(Metric.withAttributes(fencedTotal, { where: "redis" }).valueUnsafe(stats.context).count, 10)
      const warnings = logs.lines.filter((l) => l.includes("refused"))
      assert.lengthOf(warnings, 1, logs.lines.join("\n"))
      assert.include(warnings[0]!, "shard 0")
      assert.include(warnings[0]!, "epoch 8")
    }))

  it.live("trims like the plain path: by age from the server's ids (MINID ~), or by length (MAXLEN ~)", () =>
    Effect.gen(function*() {
      const redis = yield* reader
      const prefix = `${unique("fence")}:`
      const [byAge, byLength] = [unique("TYPING_START"), unique("PRESENCE_UPDATE")]
      yield* cleanup(redis, [byAge, byLength].flatMap((s) => [s, fenceKey(s, prefix)]))
      const connection = yield* makeRedisClient([Redacted.make(REDIS_URL)])
      const events = (t: string, count: number, from: number) => Array.from({ length: count }, (_, i) => leasedEvent(t, 0, from + i, 1))

      const aging = makeRedisBroker(connection, { encoding: "json", messageTimeoutMs: 5, maxLength: 1_000, fencePrefix: prefix })
      yield* aging.publish(events(byAge, 400, 1))
      yield* Effect.sleep("30 millis")
      yield* aging.publish(events(byAge, 10, 401))
      yield* aging.publish(events(byAge, 10, 411))
      const aged = yield* entries(redis, byAge)
      assert.isAtMost(aged.length, 120)
      assert.deepStrictEqual(aged.slice(-20).map(shardSeq), Array.from({ length: 20 }, (_, i) => `0:${401 + i}`))

      const capped = makeRedisBroker(connection, { encoding: "json", messageTimeoutMs: 0, maxLength: 100, fencePrefix: prefix })
      for (let i = 0; i < 5; i++) yield* capped.publish(events(byLength, 200, 1 + i * 200))
      const length = yield* Effect.promise(() => redis.xlen(byLength))
      assert.isAtLeast(length, 100)
      assert.isAtMost(length, 300)
    }))

  it.live("sends the script's source again when Redis lost its script cache", () =>
    Effect.gen(function*() {
      const port = yield* Effect.promise(freePort)
      const server = yield* Effect.promise(() => startRedisServer(port))
      yield* Effect.addFinalizer(() => Effect.promise(() => server.kill()))
      const broker = makeRedisBroker(yield* makeRedisClient([Redacted.make(server.url)]), { encoding: "json", messageTimeoutMs: 0, maxLength: 1_000 })
      yield* broker.publish([leasedEvent("READY", 0, 1, 2)])
      const own = new Redis(server.url)
      yield* Effect.addFinalizer(() => Effect.promise(() => own.quit()))
      yield* Effect.promise(() => own.script("FLUSH"))
      const result = yield* broker.publish([leasedEvent("READY", 0, 2, 1), leasedEvent("READY", 0, 3, 2)])
      assert.deepStrictEqual(result.refused.map((e) => e.seq), [2])
      assert.deepStrictEqual((yield* entries(own, "READY")).map(shardSeq), ["0:1", "0:3"])
    }))
})
