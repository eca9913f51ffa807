// The Redis Streams broker against a real Redis (REDIS_URL, default 127.0.0.1:6379), plus an
// outage drill against a private redis-server that the test kills and restarts.
import { decode } from "@msgpack/msgpack"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Layer, Redacted } from "effect"
import { Redis } from "ioredis"
import { Broker, BrokerError } from "../../src/Broker/Broker.ts"
import type { DispatchEvent } from "../../src/Broker/DispatchEvent.ts"
import { brokerLayer } from "../../src/Broker/layers.ts"
import { makeRedisBroker } from "../../src/Broker/RedisBroker.ts"
import { AppConfig } from "../../src/Config/AppConfig.ts"
import type { PayloadEncoding } from "../../src/Config/GatewayConfig.ts"
import { makeRedisClient, SOCKET_TIMEOUT_MS } from "../../src/Redis/RedisClient.ts"
import { fakeBatch, freePort, REDIS_URL, serviceAvailable, startRedisServer, testConfig, unique, waitFor } from "./support.ts"

const available = await serviceAvailable("Redis", REDIS_URL)

/** A plain ioredis connection for the test's own reads and cleanup. */
const reader = Effect.acquireRelease(
  Effect.sync(() => new Redis(REDIS_URL, { maxRetriesPerRequest: 1 })),
  (r) => Effect.promise(() => r.quit().catch(() => undefined))
)

interface Entry {
  readonly data: Buffer
  readonly shard: number
  readonly seq: number
}

/** Every entry of `stream`, oldest first (XREAD STREAMS <stream> 0-0), with raw field bytes. */
const readStream = (redis: Redis, stream: string) =>
  Effect.promise(async (): Promise<Array<Entry>> => {
    const reply = await redis.xreadBuffer("COUNT", 100_000, "STREAMS", stream, "0-0")
    if (reply === null) return []
    const [, entries] = reply[0]!
    return entries.map(([, fields]) => {
      const map = new Map<string, Buffer>()
      for (let i = 0; i < fields.length; i += 2) map.set(fields[i]!.toString(), fields[i + 1]!)
      assert.deepStrictEqual([...map.keys()].sort(), ["data", "seq", "shard"])
      return { data: map.get("data")!, shard: Number(map.get("shard")!.toString()), seq: Number(map.get("seq")!.toString()) }
    })
  })

const decodeData = (encoding: PayloadEncoding, data: Buffer): unknown =>
  encoding === "json" ? JSON.parse(data.toString("utf8")) : decode(data)

/** What the consumer must see for `name`: the events of that name, in publish order. */
const expected = (batch: ReadonlyArray<DispatchEvent>, name: string) =>
  batch.filter((e) => e.t === name).map((e) => ({ shard: e.shard, seq: e.seq, d: JSON.parse(e.data.toString()) as unknown }))

const client = (url = REDIS_URL) => makeRedisClient([Redacted.make(url)])

describe.skipIf(!available)("RedisBroker", () => {
  for (const encoding of ["json", "msgpack"] as const) {
    it.live(`publishes a batch to one stream per event name, read back exactly once (${encoding})`, () =>
      Effect.gen(function*() {
        const redis = yield* reader
        const names = [unique("MESSAGE_CREATE"), unique("GUILD_CREATE")]
        yield* Effect.addFinalizer(() => Effect.promise(() => redis.del(...names)))
        const broker = makeRedisBroker(yield* client(), { encoding, messageTimeoutMs: 60_000, maxLength: 1_000 })
        assert.isTrue(broker.connected())

        const first = fakeBatch(names, 300)
        const second = fakeBatch(names, 50, 301)
        yield* broker.publish(first)
        yield* broker.publish(second)

        for (const name of names) {
          const entries = yield* readStream(redis, name)
          const got = entries.map((e) => ({ shard: e.shard, seq: e.seq, d: decodeData(encoding, e.data) }))
          assert.deepStrictEqual(got, expected([...first, ...second], name))
        }
      }))
  }

  it.live("trims by age (MINID ~ from the server's own entry ids) when message_timeout > 0", () =>
    Effect.gen(function*() {
      const redis = yield* reader
      const name = unique("TYPING_START")
      yield* Effect.addFinalizer(() => Effect.promise(() => redis.del(name)))
      const broker = makeRedisBroker(yield* client(), { encoding: "json", messageTimeoutMs: 5, maxLength: 1_000 })
      yield* broker.publish(fakeBatch([name], 400))
      yield* Effect.sleep("30 millis")
      // The threshold comes from the previous reply's id: this batch still trims from before the
      // first one, the next trims everything older than this one minus 5 ms.
      yield* broker.publish(fakeBatch([name], 10, 401))
      yield* broker.publish(fakeBatch([name], 10, 411))
      // Approximate trimming drops only whole nodes (at most 100 entries or 4 KB each by
      // default), so the first 400 go while the two newer batches stay.
      const entries = yield* readStream(redis, name)
      assert.isAtMost(entries.length, 120)
      assert.deepStrictEqual(entries.slice(-20).map((e) => e.seq), Array.from({ length: 20 }, (_, i) => 401 + i))
    }))

  it.live("trims by length (MAXLEN ~) when messages never expire", () =>
    Effect.gen(function*() {
      const redis = yield* reader
      const name = unique("PRESENCE_UPDATE")
      yield* Effect.addFinalizer(() => Effect.promise(() => redis.del(name)))
      const broker = makeRedisBroker(yield* client(), { encoding: "json", messageTimeoutMs: 0, maxLength: 100 })
      for (let i = 0; i < 5; i++) yield* broker.publish(fakeBatch([name], 200, 1 + i * 200))
      const length = yield* Effect.promise(() => redis.xlen(name))
      assert.isAtLeast(length, 100)
      assert.isAtMost(length, 300)
    }))

  it.live("is wired in brokerLayer for [broker] type = \"redis\"", () =>
    Effect.gen(function*() {
      const redis = yield* reader
      const name = unique("READY")
      yield* Effect.addFinalizer(() => Effect.promise(() => redis.del(name)))
      const config = testConfig({ broker: { type: "redis", encoding: "msgpack", messageTimeoutMs: 60_000 } })
      const layer = brokerLayer(config).pipe(Layer.provide(AppConfig.layer(config)))
      yield* Effect.gen(function*() {
        const broker = yield* Broker
        assert.strictEqual(broker.name, "redis")
        yield* broker.publish(fakeBatch([name], 3))
      }).pipe(Effect.provide(layer))
      const entries = yield* readStream(redis, name)
      assert.deepStrictEqual(entries.map((e) => decode(e.data)), fakeBatch([name], 3).map((e) => JSON.parse(e.data.toString())))
    }))

  it.live("fails to start with an actionable error, without the password, when Redis is unreachable", () =>
    Effect.gen(function*() {
      const port = yield* Effect.promise(freePort)
      const config = testConfig({ broker: { type: "redis" }, redisUrls: [`redis://:hunter2secret@127.0.0.1:${port}`] })
      const exit = yield* Effect.exit(Effect.provide(Effect.gen(function*() { return yield* Broker }), brokerLayer(config).pipe(Layer.provide(AppConfig.layer(config)))))
      assert.isTrue(Exit.isFailure(exit))
      const error = Exit.isFailure(exit) ? exit.cause.reasons.find((r) => r._tag === "Fail")?.error : undefined
      assert.instanceOf(error, BrokerError)
      const text = (error as BrokerError).message
      assert.include(text, `127.0.0.1:${port}`)
      assert.include(text, "ECONNREFUSED")
      assert.notInclude(text, "hunter2secret")
    }))

  it.live("fails fast during an outage and recovers when the server is back", () =>
    Effect.gen(function*() {
      const port = yield* Effect.promise(freePort)
      let server = yield* Effect.promise(() => startRedisServer(port))
      yield* Effect.addFinalizer(() => Effect.promise(() => server.kill()))
      const connection = yield* client(server.url)
      const broker = makeRedisBroker(connection, { encoding: "json", messageTimeoutMs: 60_000, maxLength: 1_000 })
      const name = "MESSAGE_CREATE"

      yield* broker.publish(fakeBatch([name], 10))

      yield* Effect.promise(() => server.kill())
      // Whether or not ioredis has noticed yet, the publish must fail, and quickly.
      for (let attempt = 0; attempt < 3; attempt++) {
        const started = Date.now()
        const exit = yield* Effect.exit(broker.publish(fakeBatch([name], 10, 11)))
        assert.isTrue(Exit.isFailure(exit), "publish during the outage must fail")
        const error = Exit.isFailure(exit) ? exit.cause.reasons.find((r) => r._tag === "Fail")?.error : undefined
        assert.instanceOf(error, BrokerError)
        assert.isBelow(Date.now() - started, 2_000)
      }
      // connected() follows ioredis' status, which changes once the socket's close is processed.
      yield* Effect.promise(() => waitFor("connected() to turn false", async () => !broker.connected(), 2_000))

      server = yield* Effect.promise(() => startRedisServer(port))
      // ioredis redials on its own (backoff capped at 1 s); the event path's retry would succeed then.
      const started = Date.now()
      let delivered = false
      while (!delivered && Date.now() - started < 20_000) {
        const exit = yield* Effect.exit(broker.publish(fakeBatch([name], 10, 21)))
        delivered = Exit.isSuccess(exit)
        if (!delivered) yield* Effect.sleep("100 millis")
      }
      assert.isTrue(delivered, "publish works again after the server restarted")
      assert.isTrue(broker.connected())
      const check = new Redis(server.url)
      const entries = yield* Effect.promise(() => check.xrange(name, "-", "+").finally(() => check.quit()))
      // The restarted server is empty (no persistence): exactly the batch published after it.
      assert.deepStrictEqual(entries.map(([, fields]) => fields[fields.indexOf("seq") + 1]), Array.from({ length: 10 }, (_, i) => String(21 + i)))
    }), 60_000)

  it.live("turns a hung server into a BrokerError within the socket timeout, then recovers", () =>
    Effect.gen(function*() {
      const port = yield* Effect.promise(freePort)
      const server = yield* Effect.promise(() => startRedisServer(port))
      yield* Effect.addFinalizer(() => Effect.promise(() => server.kill()))
      const broker = makeRedisBroker(yield* client(server.url), { encoding: "json", messageTimeoutMs: 60_000, maxLength: 1_000 })
      yield* broker.publish(fakeBatch(["MESSAGE_CREATE"], 5))

      server.pause()
      const started = Date.now()
      const exit = yield* Effect.exit(broker.publish(fakeBatch(["MESSAGE_CREATE"], 5, 6)))
      const elapsed = Date.now() - started
      assert.isTrue(Exit.isFailure(exit), "publish to a hung server must fail")
      assert.isBelow(elapsed, SOCKET_TIMEOUT_MS + 3_000)

      server.resume()
      yield* Effect.promise(() =>
        waitFor("a publish to succeed after the server resumed", async () =>
          Exit.isSuccess(await Effect.runPromiseExit(broker.publish(fakeBatch(["MESSAGE_CREATE"], 5, 11)))), 15_000)
      )
    }), 60_000)
})
