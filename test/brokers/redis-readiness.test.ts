// Issue 11: /readyz said "ready" while Redis refused every write (OOM), because "connected" was all
// it asked. Against a private redis-server: the event path reports the broker problem while
// publishes fail and clears it once they succeed, and an outage (server killed mid-load, then back)
// is logged in our words, never with ioredis' own sentences about its options.
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Layer, Redacted } from "effect"
import { Redis } from "ioredis"
import { Broker } from "../../src/Broker/Broker.ts"
import type { DispatchEvent } from "../../src/Broker/DispatchEvent.ts"
import { Outbox, makeOutbox } from "../../src/Broker/Outbox.ts"
import { makeRedisBroker } from "../../src/Broker/RedisBroker.ts"
import { runEventPath } from "../../src/EventPath.ts"
import { makeRedisClient } from "../../src/Redis/RedisClient.ts"
import { Readiness, makeReadiness } from "../../src/Resilience/Readiness.ts"
import { collectLogs } from "../support/logs.ts"
import { freePort, REDIS_URL, serviceAvailable, startRedisServer, unique } from "./support.ts"

// The private server needs the redis-server binary, like the other Redis outage drills.
const available = await serviceAvailable("Redis", REDIS_URL)

const RAW_CLIENT_WORDING = /max retries per request|maxRetriesPerRequest|enableOfflineQueue|Stream isn't writeable|Connection is closed|Socket timeout/

const events = (name: string, from: number, count: number): Array<DispatchEvent> =>
  Array.from({ length: count }, (_, i) => ({
    shard: 0,
    t: name,
    seq: from + i,
    data: Buffer.from(`{"n":${from + i}}`),
    receipt: { accepted: () => {}, current: () => true },
    epoch: 0
  }))

const privateServer = Effect.acquireRelease(
  Effect.promise(async () => startRedisServer(await freePort())),
  (server) => Effect.promise(() => server.kill())
)

const admin = (url: string) =>
  Effect.acquireRelease(
    Effect.sync(() => new Redis(url, { maxRetriesPerRequest: 1, lazyConnect: false })),
    (r) => Effect.sync(() => r.disconnect())
  )

const setup = (url: string) =>
  Effect.gen(function*() {
    const logs = collectLogs()
    // The client's own connection lines are collected too.
    const connection = yield* makeRedisClient([Redacted.make(url)]).pipe(Effect.provide(logs.layer))
    const broker = makeRedisBroker(connection, { encoding: "json", messageTimeoutMs: 0, maxLength: 100_000 })
    const outbox = yield* makeOutbox(10_000)
    const readiness = makeReadiness()
    const layer = Layer.mergeAll(Layer.succeed(Outbox, outbox), Layer.succeed(Broker, broker), Layer.succeed(Readiness, readiness), logs.layer)
    const path = yield* Effect.forkScoped(runEventPath.pipe(Effect.provide(layer)))
    return { outbox, readiness, logs, path }
  })

const until = (what: string, check: () => boolean | Promise<boolean>, timeoutMs = 20_000) =>
  Effect.promise(async () => {
    const deadline = Date.now() + timeoutMs
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
      await new Promise((r) => setTimeout(r, 50))
    }
  })

describe.skipIf(!available)("event path on Redis", () => {
  it.live("/readyz fails while Redis refuses writes (OOM) and recovers when it accepts them again", () =>
    Effect.gen(function*() {
      const server = yield* privateServer
      const redis = yield* admin(server.url)
      const stream = unique("MESSAGE_CREATE")
      const { outbox, readiness, logs, path } = yield* setup(server.url)
      yield* Effect.promise(() => redis.config("SET", "maxmemory", "1"))
      for (const e of events(stream, 1, 10)) outbox.offer(e)
      yield* until("a failing publish reported", () => readiness.problems().length > 0)
      const [problem] = readiness.problems()
      assert.match(problem!, /^broker: publishes are failing: publish to redis:\/\/127\.0\.0\.1:\d+ failed: XADD .*: Redis refuses writes because it reached maxmemory \(OOM\)/)
      assert.strictEqual(yield* Effect.promise(() => redis.exists(stream)), 0)
      yield* Effect.promise(() => redis.config("SET", "maxmemory", "0"))
      yield* until("all 10 events in the stream", async () => (await redis.xlen(stream)) === 10)
      yield* until("the problem cleared", () => readiness.problems().length === 0)
      yield* outbox.end
      yield* Fiber.join(path)
      assert.isFalse(logs.lines.some((l) => RAW_CLIENT_WORDING.test(l)), logs.lines.join("\n"))
    }))

  it.live("a Redis killed mid-load and restarted: everything arrives, outage lines in our words", () =>
    Effect.gen(function*() {
      const port = yield* Effect.promise(() => freePort())
      let server = yield* Effect.promise(() => startRedisServer(port))
      yield* Effect.addFinalizer(() => Effect.promise(() => server.kill()))
      const stream = unique("MESSAGE_CREATE")
      const { outbox, readiness, logs, path } = yield* setup(server.url)
      // Keep publishing while the server dies, so commands are in flight at the moment it goes.
      const feeder = yield* Effect.forkScoped(Effect.gen(function*() {
        for (let i = 0; i < 200; i++) {
          for (const e of events(stream, i * 50 + 1, 50)) outbox.offer(e)
          yield* Effect.sleep("5 millis")
        }
      }))
      yield* Effect.sleep("100 millis")
      yield* Effect.promise(() => server.kill())
      yield* until("a failing publish reported", () => readiness.problems().length > 0)
      yield* Effect.sleep("300 millis")
      server = yield* Effect.promise(() => startRedisServer(port))
      yield* Fiber.join(feeder)
      yield* outbox.end
      yield* Fiber.join(path)
      assert.deepStrictEqual(readiness.problems(), [])
      const redis = yield* admin(server.url)
      // The first server had no persistence: what it held died with it; everything after arrives.
      const entries = yield* Effect.promise(() => redis.xrange(stream, "-", "+"))
      const seqs = entries.map(([, fields]) => Number(fields[5]))
      assert.strictEqual(seqs.at(-1), 10_000)
      for (let i = 1; i < seqs.length; i++) assert.isTrue(seqs[i]! > seqs[i - 1]!, "in order, none twice")
      const outage = logs.lines.filter((l) => /publishing to the redis broker|connection to Redis/.test(l))
      console.log(`Redis killed mid-load: ${seqs.length} of 10000 events in the new server's stream; outage lines:\n${outage.join("\n")}`)
      assert.isTrue(outage.some((l) => l.startsWith("Warn: publishing to the redis broker failed")), logs.lines.join("\n"))
      assert.isTrue(outage.some((l) => l.startsWith("Warn: the connection to Redis at")), logs.lines.join("\n"))
      assert.isFalse(logs.lines.some((l) => RAW_CLIENT_WORDING.test(l)), logs.lines.join("\n"))
    }))
})
