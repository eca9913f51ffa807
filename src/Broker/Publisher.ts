// The one consumer of the outbox: publishes batches in order, retries through broker outages
// (events stay in the outbox meanwhile, and the shards stop reading once it is full), and moves
// each session's checkpoint only after the broker accepted the events.
import { Clock, Effect, Schedule } from "effect"
import { Broker, type BrokerError } from "./Broker.ts"
import { Outbox } from "./Outbox.ts"
import { GatewayStats } from "../Observability/GatewayStats.ts"

/** Large enough to amortise a round trip, small enough to keep latency and memory low. */
export const MAX_BATCH = 512

const outageBackoff = Schedule.min([Schedule.exponential("100 millis"), Schedule.spaced("5 seconds")]).pipe(
  Schedule.jittered
)

export const runPublisher = Effect.gen(function*() {
  const outbox = yield* Outbox
  const broker = yield* Broker
  const stats = yield* GatewayStats
  let outageSince: number | undefined

  const noteFailure = (error: BrokerError) =>
    Effect.gen(function*() {
      stats.publishFailed(broker.name)
      if (outageSince !== undefined) return yield* Effect.logDebug(`still failing: ${error.message}`)
      outageSince = yield* Clock.currentTimeMillis
      yield* Effect.logWarning(
        `${error.message}; holding events in memory (${outbox.size()} now, shards pause at ${outbox.capacity}) and retrying`
      )
    })

  const publish = (batch: ReadonlyArray<import("./DispatchEvent.ts").DispatchEvent>) =>
    broker.publish(batch).pipe(
      Effect.tapError(noteFailure),
      Effect.retry(outageBackoff),
      Effect.tap(() =>
        Effect.gen(function*() {
          if (outageSince === undefined) return
          const now = yield* Clock.currentTimeMillis
          yield* Effect.logInfo(`${broker.name} broker is back after ${((now - outageSince) / 1000).toFixed(1)}s; delivering held events`)
          outageSince = undefined
        })
      )
    )

  return yield* Effect.forever(
    Effect.gen(function*() {
      const batch = yield* outbox.takeBatch(MAX_BATCH)
      const startedAt = performance.now()
      yield* publish(batch)
      stats.publishedBatch(broker.name, batch.length, performance.now() - startedAt)
      for (const event of batch) event.receipt.accepted(event.seq)
      outbox.released(batch.length)
    })
  )
})

/** Waits until every event handed to the outbox has been delivered (graceful shutdown). */
export const awaitDrained = Effect.gen(function*() {
  const outbox = yield* Outbox
  while (outbox.size() > 0) yield* Effect.sleep("10 millis")
})
