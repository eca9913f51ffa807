// Where events go. A broker publishes a batch and succeeds only once the far side has accepted
// every event in it (flushed, acknowledged, confirmed): the checkpoint follows that success.
// `brokerSink` turns any broker into the Sink the event path runs into.
import { Context, Data, Effect, Sink } from "effect"
import type { NonEmptyReadonlyArray } from "effect/Array"
import { Backoffs, backoffSchedule } from "../Resilience/Backoff.ts"
import type { DispatchEvent } from "./DispatchEvent.ts"

export class BrokerError extends Data.TaggedError("BrokerError")<{
  readonly broker: string
  readonly reason: string
  readonly cause?: unknown
}> {
  override get message() {
    return `${this.broker} broker: ${this.reason}`
  }
}

export interface BrokerService {
  readonly name: string
  readonly publish: (batch: ReadonlyArray<DispatchEvent>) => Effect.Effect<void, BrokerError>
  /** Whether the broker is reachable now (for /readyz). */
  readonly connected: () => boolean
}

export class Broker extends Context.Service<Broker, BrokerService>()("gateway/Broker") {}

/**
 * One attempt at a publish that a promise carries out: fails with "publish to ENDPOINT failed:
 * ..." when the promise rejects, and with `timeoutReason` when it has not settled after
 * `timeoutMs` (`onTimeout` runs first: a connection in an unknown state is best dropped). The
 * promise gets an AbortSignal that fires when the attempt is abandoned.
 */
export const publishAttempt = (options: {
  readonly broker: string
  readonly endpoint: string
  readonly timeoutMs: number
  readonly timeoutReason: string
  /** Our wording for the client's error (never a raw client sentence the user cannot act on). */
  readonly explain: (cause: unknown) => string
  readonly onTimeout?: () => void
}, send: (signal: AbortSignal) => Promise<unknown>): Effect.Effect<void, BrokerError> =>
  Effect.tryPromise({
    try: send,
    catch: (cause) => new BrokerError({ broker: options.broker, reason: `publish to ${options.endpoint} failed: ${options.explain(cause)}`, cause })
  }).pipe(
    Effect.timeoutOrElse({
      duration: options.timeoutMs,
      orElse: () =>
        Effect.suspend(() => {
          options.onTimeout?.()
          return Effect.fail(new BrokerError({ broker: options.broker, reason: options.timeoutReason }))
        })
    }),
    Effect.asVoid
  )

/** What the sink tells its runner (metrics, readiness, outage logs live above the broker). */
export interface SinkObserver {
  /** A publish attempt failed; the chunk is retried after a backoff. */
  readonly failed: (error: BrokerError) => Effect.Effect<void>
  /**
   * The broker accepted `chunk` (every receipt was already told), `durationMs` after the first
   * attempt began (retries included).
   */
  readonly accepted: (chunk: NonEmptyReadonlyArray<DispatchEvent>, durationMs: number) => Effect.Effect<void>
}

/**
 * The broker as a Sink of events: each chunk is published whole, retried through outages with
 * the broker-outage backoff until the broker accepts it, and only then is each event's receipt
 * told (so checkpoints never pass an event the broker does not hold). Chunks go one at a time,
 * in order.
 */
export const brokerSink = (broker: BrokerService, observer: SinkObserver): Sink.Sink<void, DispatchEvent> => {
  const retry = backoffSchedule(Backoffs.brokerOutage)
  return Sink.forEachArray((chunk: NonEmptyReadonlyArray<DispatchEvent>) => {
    const startedAt = performance.now()
    return broker.publish(chunk).pipe(
      Effect.tapError(observer.failed),
      Effect.retry(retry),
      // The retry never gives up, so this is never reached; it types the sink as infallible.
      Effect.orDie,
      Effect.andThen(Effect.suspend(() => {
        for (const event of chunk) event.receipt.accepted(event.seq)
        return observer.accepted(chunk, performance.now() - startedAt)
      }))
    )
  })
}
