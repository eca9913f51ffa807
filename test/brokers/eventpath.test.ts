// The event path in-process: the outbox as a Stream into a broker Sink, with a scripted broker.
// A publisher killed by a defect is restarted and loses nothing; chunks are at most 512 events;
// receipts follow acceptance; full outboxes pause the shards and wake them at half; /readyz
// reports failing publishes and clears them; ending the outbox ends the path once all is delivered;
// events whose lease this process lost are dropped before every attempt.
import { assert, describe, it } from "@effect/vitest"
import { Context, Deferred, Effect, Fiber, Layer, Metric } from "effect"
import { allPublished, Broker, BrokerError, type BrokerService } from "../../src/Broker/Broker.ts"
import type { DispatchEvent } from "../../src/Broker/DispatchEvent.ts"
import { MAX_CHUNK, Outbox, makeOutbox } from "../../src/Broker/Outbox.ts"
import { runEventPath } from "../../src/EventPath.ts"
import { fencedTotal, GatewayCounters, GatewayStats, publishedTotal } from "../../src/Metrics/GatewayStats.ts"
import { Readiness, makeReadiness } from "../../src/Resilience/Readiness.ts"
import { supervise } from "../../src/Resilience/Supervisor.ts"
import { collectLogs } from "../support/logs.ts"

const fast = { baseMs: 1, capMs: 1 }

/** Events for two shards with increasing seqs; each receipt records what was acknowledged. */
const makeEvents = (count: number) => {
  const acked = new Map<number, Array<number>>([[0, []], [1, []]])
  const events: Array<DispatchEvent> = Array.from({ length: count }, (_, i) => {
    const shard = i % 2
    return { shard, t: "MESSAGE_CREATE", seq: i + 1, data: Buffer.from(`{"n":${i}}`), receipt: { accepted: (seq) => void acked.get(shard)!.push(seq), current: () => true }, epoch: 0 }
  })
  return { events, acked }
}

const key = (e: DispatchEvent) => `${e.shard}:${e.seq}`

/** A broker that records every chunk it accepted; `script` can make an attempt fail or die. */
const scriptedBroker = (script: (attempt: number, chunk: ReadonlyArray<DispatchEvent>) => Effect.Effect<void, BrokerError>) => {
  const accepted: Array<ReadonlyArray<DispatchEvent>> = []
  let attempts = 0
  const broker: BrokerService = {
    name: "scripted",
    connected: () => true,
    publish: (chunk) =>
      Effect.suspend(() => Effect.andThen(script(++attempts, chunk), Effect.sync(() => (accepted.push(chunk), allPublished))))
  }
  return { broker, accepted, attempts: () => attempts }
}

const environment = (broker: BrokerService, capacity: number) =>
  Effect.gen(function*() {
    const outbox = yield* makeOutbox(capacity)
    const readiness = makeReadiness()
    const logs = collectLogs()
    const layer = Layer.mergeAll(
      Layer.succeed(Outbox, outbox),
      Layer.succeed(Broker, broker),
      Layer.succeed(Readiness, readiness),
      logs.layer
    )
    return { outbox, readiness, logs, layer }
  })

describe("event path", () => {
  it.live("a publisher killed by a defect is restarted and every event arrives, in order, acknowledged", () =>
    Effect.gen(function*() {
      const { events, acked } = makeEvents(2_000)
      // The second chunk reaches the broker, then the publisher dies before it hears back: the
      // restarted publisher must send that chunk again (at least once), then everything after it.
      const scripted = scriptedBroker((attempt, chunk) =>
        attempt === 2 ? Effect.andThen(Effect.sync(() => void scripted.accepted.push(chunk)), Effect.die(new Error("publisher defect"))) : Effect.void
      )
      const { outbox, readiness, logs, layer } = yield* environment(scripted.broker, 10_000)
      for (const e of events) outbox.offer(e)
      const publisher = yield* Effect.forkChild(supervise(runEventPath, { name: "publisher", backoff: fast }).pipe(Effect.provide(layer)))
      yield* outbox.end
      yield* Fiber.join(publisher)

      const received = scripted.accepted.flat()
      const firstSeen: Array<DispatchEvent> = []
      const seen = new Set<string>()
      for (const e of received) {
        if (!seen.has(key(e))) firstSeen.push(e)
        seen.add(key(e))
      }
      assert.deepStrictEqual(firstSeen.map(key), events.map(key), "every event, in order")
      const second = scripted.accepted[1]!
      assert.strictEqual(received.length, events.length + second.length, "only the chunk in hand at the defect came twice")
      assert.deepStrictEqual(scripted.accepted[2]!.map(key), second.map(key), "and it came again right after the restart")
      assert.isTrue(scripted.accepted.every((chunk) => chunk.length >= 1 && chunk.length <= MAX_CHUNK))
      assert.strictEqual(scripted.accepted[0]!.length, MAX_CHUNK, "a full outbox is read in chunks of 512")
      for (const shard of [0, 1]) {
        const seqs = acked.get(shard)!
        assert.deepStrictEqual(seqs, events.filter((e) => e.shard === shard).map((e) => e.seq), `shard ${shard}: each event acknowledged once, in order`)
      }
      assert.strictEqual(outbox.size(), 0)
      assert.isTrue(logs.lines.some((l) => l.startsWith("Error: publisher died (publisher defect); restarting it")), logs.lines.join("\n"))
      assert.deepStrictEqual(readiness.brokenParts(), [])
    }))

  it.live("receipts wait for the broker: nothing is acknowledged before it accepted the chunk", () =>
    Effect.gen(function*() {
      const { events, acked } = makeEvents(10)
      const release = yield* Deferred.make<void>()
      const scripted = scriptedBroker(() => Deferred.await(release))
      const { outbox, layer } = yield* environment(scripted.broker, 100)
      for (const e of events) outbox.offer(e)
      const publisher = yield* Effect.forkChild(runEventPath.pipe(Effect.provide(layer)))
      while (scripted.attempts() === 0) yield* Effect.sleep("1 millis")
      assert.deepStrictEqual([...acked.values()].flat(), [])
      assert.strictEqual(outbox.size(), 10)
      yield* Deferred.succeed(release, undefined)
      yield* outbox.end
      yield* Fiber.join(publisher)
      assert.deepStrictEqual(acked.get(0), [1, 3, 5, 7, 9])
      assert.deepStrictEqual(acked.get(1), [2, 4, 6, 8, 10])
    }))

  it.live("a full outbox refuses the next event (the shard keeps it and pauses) and wakes it once it drained to half", () =>
    Effect.gen(function*() {
      const { events } = makeEvents(101)
      const scripted = scriptedBroker(() => Effect.void)
      const { outbox, layer } = yield* environment(scripted.broker, 100)
      const answers = events.map((e) => outbox.offer(e))
      assert.isTrue(answers.slice(0, 100).every(Boolean))
      assert.isFalse(answers[100], "the 101st event is refused: the outbox never holds more than its capacity")
      assert.strictEqual(outbox.size(), 100)
      let woken = 0
      outbox.onSpace(() => woken++)
      assert.strictEqual(woken, 0)
      const publisher = yield* Effect.forkChild(runEventPath.pipe(Effect.provide(layer)))
      yield* outbox.end
      yield* Fiber.join(publisher)
      assert.strictEqual(woken, 1)
      assert.strictEqual(scripted.accepted.flat().length, 100)
    }))

  it.live("/readyz reports failing publishes while they fail and clears once one succeeds", () =>
    Effect.gen(function*() {
      const { events, acked } = makeEvents(3)
      let refusing = true
      const scripted = scriptedBroker(() =>
        refusing
          ? Effect.fail(new BrokerError({ broker: "scripted", reason: "publish failed: OOM command not allowed when used memory > 'maxmemory'" }))
          : Effect.void
      )
      const { outbox, readiness, logs, layer } = yield* environment(scripted.broker, 100)
      for (const e of events) outbox.offer(e)
      const publisher = yield* Effect.forkChild(runEventPath.pipe(Effect.provide(layer)))
      while (scripted.attempts() < 2) yield* Effect.sleep("5 millis")
      assert.deepStrictEqual(readiness.problems(), ["broker: publishes are failing: publish failed: OOM command not allowed when used memory > 'maxmemory'"])
      assert.deepStrictEqual([...acked.values()].flat(), [])
      refusing = false
      while (scripted.accepted.length === 0) yield* Effect.sleep("5 millis")
      assert.deepStrictEqual(readiness.problems(), [])
      yield* outbox.end
      yield* Fiber.join(publisher)
      assert.deepStrictEqual([...acked.values()].flat().sort(), [1, 2, 3])
      const warnings = logs.lines.filter((l) => l.startsWith("Warn:"))
      assert.strictEqual(warnings.length, 1, "the outage is logged once when it starts")
      assert.match(warnings[0]!, /publishing to the scripted broker failed: .*OOM.*holding events in memory \(3 now, shards pause at 100\)/)
      assert.isTrue(logs.lines.some((l) => /^Info: publishing to the scripted broker works again after/.test(l)), logs.lines.join("\n"))
    }))

  it.live("an ended outbox ends the path after delivering what it held; later offers are refused", () =>
    Effect.gen(function*() {
      const { events } = makeEvents(5)
      const scripted = scriptedBroker(() => Effect.void)
      const { outbox, layer } = yield* environment(scripted.broker, 100)
      for (const e of events.slice(0, 4)) outbox.offer(e)
      yield* outbox.end
      assert.isFalse(outbox.offer(events[4]!))
      yield* runEventPath.pipe(Effect.provide(layer))
      assert.deepStrictEqual(scripted.accepted.flat().map(key), events.slice(0, 4).map(key))
      assert.strictEqual(outbox.size(), 0)
    }))

  it.live("drops events whose lease this process lost before each attempt, retries included: not published, receipts not told, counted, logged once per shard and lease", () =>
    Effect.gen(function*() {
      const acked: Array<string> = []
      let shard1Held = true
      const events: Array<DispatchEvent> = Array.from({ length: 1_200 }, (_, i) => {
        const shard = i % 3 === 0 ? 1 : 0
        const current = shard === 1 ? () => shard1Held : () => true
        return { shard, t: "MESSAGE_CREATE", seq: i + 1, data: Buffer.from("{}"), epoch: 7, receipt: { accepted: (seq) => void acked.push(`${shard}:${seq}`), current } }
      })
      // The first attempt fails (a broker outage); shard 1's lease lapses before the retry.
      const scripted = scriptedBroker((attempt) =>
        attempt === 1
          ? Effect.andThen(Effect.sync(() => (shard1Held = false)), Effect.fail(new BrokerError({ broker: "scripted", reason: "down" })))
          : Effect.void
      )
      const { outbox, logs, layer } = yield* environment(scripted.broker, 10_000)
      const stats = new GatewayCounters(Context.make(Metric.MetricRegistry, new Map()))
      for (const e of events) outbox.offer(e)
      yield* outbox.end
      yield* runEventPath.pipe(Effect.provide(Layer.merge(layer, Layer.succeed(GatewayStats, stats))))

      const published = scripted.accepted.flat()
      const shard0 = events.filter((e) => e.shard === 0)
      assert.deepStrictEqual(published.map(key), shard0.map(key), "only the held shard's events reach the broker, in order")
      assert.deepStrictEqual(acked, shard0.map((e) => `0:${e.seq}`), "and only their receipts are told")
      assert.strictEqual(outbox.size(), 0, "dropped events leave the outbox")
      assert.strictEqual(Metric.withAttributes(fencedTotal, { where: "local" }).valueUnsafe(stats.context).count, events.length - shard0.length)
      assert.strictEqual(Metric.withAttributes(publishedTotal, { broker: "scripted" }).valueUnsafe(stats.context).count, shard0.length)
      const fenced = logs.lines.filter((l) => l.includes("no longer held"))
      assert.lengthOf(fenced, 1, `one line for the shard however many chunks carried its events:\n${logs.lines.join("\n")}`)
      assert.match(fenced[0]!, /^Warn: shard 1 is no longer held by this process \(its lease of epoch 7 lapsed or moved to another process\).*new owner replays them from the checkpoint/)
    }))

  it.live("a chunk whose events are all stale is dropped without waiting for the broker", () =>
    Effect.gen(function*() {
      const acked: Array<number> = []
      const events: Array<DispatchEvent> = Array.from({ length: 5 }, (_, i) => (
        { shard: 2, t: "TYPING_START", seq: i + 1, data: Buffer.from("{}"), epoch: 3, receipt: { accepted: (seq) => void acked.push(seq), current: () => false } }
      ))
      const scripted = scriptedBroker(() => Effect.fail(new BrokerError({ broker: "scripted", reason: "down" })))
      const { outbox, readiness, layer } = yield* environment(scripted.broker, 100)
      for (const e of events) outbox.offer(e)
      yield* outbox.end
      yield* runEventPath.pipe(Effect.provide(layer))
      assert.strictEqual(scripted.attempts(), 0)
      assert.deepStrictEqual(acked, [])
      assert.strictEqual(outbox.size(), 0)
      assert.deepStrictEqual(readiness.brokenParts(), [])
    }))
})
