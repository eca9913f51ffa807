// The event path: the outbox's events as a Stream, run into the broker's Sink. This is where the
// broker meets what watches it (metrics, readiness, the outage log), so neither Broker nor
// Observability needs to know the other. Per chunk, not per event: the hot path stays in the
// shards' socket callbacks (Outbox.offer).
import { Effect, Stream } from "effect"
import type { NonEmptyReadonlyArray } from "effect/Array"
import { Broker, brokerSink } from "./Broker/Broker.ts"
import type { DispatchEvent } from "./Broker/DispatchEvent.ts"
import { EventBytes } from "./Broker/EventBytes.ts"
import { Outbox } from "./Broker/Outbox.ts"
import { GatewayStats } from "./Metrics/GatewayStats.ts"
import { Readiness } from "./Resilience/Readiness.ts"
import { outageLog } from "./Resilience/OutageLog.ts"

/** Whether a (shard, epoch) pair was already logged: one log line per shard per lost lease. */
const onceEach = () => {
  const loggedEpoch = new Map<number, number>()
  return (shard: number, epoch: number): boolean => {
    if (loggedEpoch.get(shard) === epoch) return false
    loggedEpoch.set(shard, epoch)
    return true
  }
}

const REPEATS =
  "if this repeats, this process keeps losing its leases: look for long pauses (GC, CPU starvation, a frozen VM) or a slow shard store"

/** One warning per shard and lost lease, however many chunks carry its stale events. */
const fenceLog = (brokerName: string) => {
  const local = onceEach()
  const remote = onceEach()
  return (events: NonEmptyReadonlyArray<DispatchEvent>, where: string): Effect.Effect<void> => {
    const byShard = new Map<number, { epoch: number; count: number }>()
    for (const e of events) {
      const seen = byShard.get(e.shard)
      if (seen === undefined) byShard.set(e.shard, { epoch: e.epoch, count: 1 })
      else seen.count++
    }
    const lines: Array<string> = []
    for (const [shard, { epoch, count }] of byShard) {
      if (where === "local") {
        if (!local(shard, epoch)) continue
        lines.push(
          `shard ${shard} is no longer held by this process (its lease of epoch ${epoch} lapsed or moved to another process): ` +
            `dropping ${count} of its events instead of publishing them, and more may follow; the shard's new owner replays them ` +
            `from the checkpoint (counted in gateway_fenced_events_total{where="local"}); ${REPEATS}`
        )
      } else {
        if (!remote(shard, epoch)) continue
        lines.push(
          `the ${brokerName} broker refused ${count} events of shard ${shard} read under lease epoch ${epoch}: another process has ` +
            `claimed the shard since (it raised the fence), so they are dropped and its new owner replays them from the checkpoint ` +
            `(counted in gateway_fenced_events_total{where="${where}"}); ${REPEATS}`
        )
      }
    }
    return lines.length === 0 ? Effect.void : Effect.forEach(lines, (line) => Effect.logWarning(line), { discard: true })
  }
}

/**
 * Delivers every event offered to the outbox, in order, until the outbox ends (then returns once
 * the last chunk was accepted). Never fails: publishes are retried through outages, during which
 * /readyz reports the broker's problem and the shards pause once the outbox is full. Events whose
 * shard this process no longer holds are dropped (counted, logged once per shard and lease).
 */
export const runEventPath: Effect.Effect<void, never, Outbox | Broker | Readiness> = Effect.gen(function*() {
  const outbox = yield* Outbox
  const broker = yield* Broker
  const stats = yield* GatewayStats
  const readiness = yield* Readiness
  const eventBytes = yield* EventBytes
  const outage = outageLog(`publishing to the ${broker.name} broker`)
  const logFenced = fenceLog(broker.name)
  let failing = false
  // Whether an attempt at the chunk in hand failed: its events' bytes may still be held by the
  // client. True to start with: a restarted path is first handed the chunk a dead one was publishing.
  let attemptFailed = true
  const sink = brokerSink(broker, {
    failed: (error) =>
      Effect.suspend(() => {
        stats.publishFailed(broker.name)
        failing = true
        attemptFailed = true
        readiness.report("broker", `publishes are failing: ${error.reason}`)
        return outage.failed(`${error.reason}; holding events in memory (${outbox.size()} now, shards pause at ${outbox.capacity})`)
      }),
    fenced: (events, where) =>
      Effect.suspend(() => {
        stats.fenced(where, events.length)
        return logFenced(events, where)
      }),
    accepted: (chunk, published, durationMs) =>
      Effect.suspend(() => {
        if (published > 0) stats.publishedBatch(broker.name, published, durationMs)
        outbox.accepted(chunk)
        eventBytes.release(chunk, !attemptFailed)
        attemptFailed = false
        // A chunk dropped whole never reached the broker: it says nothing about an outage.
        if (!failing || published === 0) return Effect.void
        failing = false
        readiness.report("broker", undefined)
        return outage.succeeded
      })
  })
  yield* Stream.run(outbox.events, sink)
})
