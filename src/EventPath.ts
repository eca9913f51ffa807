// The event path: the outbox's events as a Stream, run into the broker's Sink. This is where the
// broker meets what watches it (metrics, readiness, the outage log), so neither Broker nor
// Observability needs to know the other. Per chunk, not per event: the hot path stays in the
// shards' socket callbacks (Outbox.offer).
import { Effect, Stream } from "effect"
import { Broker, brokerSink } from "./Broker/Broker.ts"
import { Outbox } from "./Broker/Outbox.ts"
import { GatewayStats } from "./Metrics/GatewayStats.ts"
import { Readiness } from "./Resilience/Readiness.ts"
import { outageLog } from "./Resilience/OutageLog.ts"

/**
 * Delivers every event offered to the outbox, in order, until the outbox ends (then returns once
 * the last chunk was accepted). Never fails: publishes are retried through outages, during which
 * /readyz reports the broker's problem and the shards pause once the outbox is full.
 */
export const runEventPath: Effect.Effect<void, never, Outbox | Broker | Readiness> = Effect.gen(function*() {
  const outbox = yield* Outbox
  const broker = yield* Broker
  const stats = yield* GatewayStats
  const readiness = yield* Readiness
  const outage = outageLog(`publishing to the ${broker.name} broker`)
  let failing = false
  const sink = brokerSink(broker, {
    failed: (error) =>
      Effect.suspend(() => {
        stats.publishFailed(broker.name)
        failing = true
        readiness.report("broker", `publishes are failing: ${error.reason}`)
        return outage.failed(`${error.reason}; holding events in memory (${outbox.size()} now, shards pause at ${outbox.capacity})`)
      }),
    accepted: (chunk, durationMs) =>
      Effect.suspend(() => {
        stats.publishedBatch(broker.name, chunk.length, durationMs)
        outbox.accepted(chunk)
        if (!failing) return Effect.void
        failing = false
        readiness.report("broker", undefined)
        return outage.succeeded
      })
  })
  yield* Stream.run(outbox.events, sink)
})
