// Where events go. A broker publishes a batch and succeeds only once the far side has accepted
// every event in it (flushed, acknowledged, confirmed) or refused it for good (fenced: its shard's
// lease has moved on): the checkpoint follows the accepted ones. `brokerSink` turns any broker
// into the Sink the event path runs into, and drops events whose lease this process lost.
import { Context, Data, Effect, Sink } from "effect"
import { isReadonlyArrayNonEmpty as isNonEmpty, type NonEmptyReadonlyArray } from "effect/Array"
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

/**
 * What the broker did with a batch it answered for: it holds every event except `refused`, those
 * it fenced off (their lease epoch is older than the one their shard's current holder raised).
 * Refused events are gone for good: never retried, their receipts never told.
 */
export interface Published {
  readonly refused: ReadonlyArray<DispatchEvent>
}

/** The usual answer: nothing refused. */
export const allPublished: Published = { refused: [] }

export interface BrokerService {
  readonly name: string
  readonly publish: (batch: ReadonlyArray<DispatchEvent>) => Effect.Effect<Published, BrokerError>
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
export const publishAttempt = <A>(options: {
  readonly broker: string
  readonly endpoint: string
  readonly timeoutMs: number
  readonly timeoutReason: string
  /** Our wording for the client's error (never a raw client sentence the user cannot act on). */
  readonly explain: (cause: unknown) => string
  readonly onTimeout?: () => void
}, send: (signal: AbortSignal) => Promise<A>): Effect.Effect<A, BrokerError> =>
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
    })
  )

/** What the sink tells its runner (metrics, readiness, outage logs live above the broker). */
export interface SinkObserver {
  /** A publish attempt failed; the chunk is retried after a backoff. */
  readonly failed: (error: BrokerError) => Effect.Effect<void>
  /**
   * Events of `chunk` that were not published because this process no longer holds their shard's
   * lease: dropped before an attempt (`where` = "local") or refused by the broker (`where` = its
   * name). Their receipts are not told. Called before `accepted`.
   */
  readonly fenced: (events: NonEmptyReadonlyArray<DispatchEvent>, where: string) => Effect.Effect<void>
  /**
   * The broker is done with `chunk`: `published` of its events were accepted (their receipts were
   * already told), the rest fenced; `durationMs` after the first attempt began (retries included).
   */
  readonly accepted: (chunk: NonEmptyReadonlyArray<DispatchEvent>, published: number, durationMs: number) => Effect.Effect<void>
}

/**
 * `events` without those whose receipt says the lease they were read under is gone (pushed onto
 * `dropped`, in order). The same array when all are current, which is the rule: one call per event.
 */
export const keepCurrent = (events: ReadonlyArray<DispatchEvent>, dropped: Array<DispatchEvent>): ReadonlyArray<DispatchEvent> => {
  for (let i = 0; i < events.length; i++) {
    if (events[i]!.receipt.current()) continue
    const kept = events.slice(0, i)
    dropped.push(events[i]!)
    for (let j = i + 1; j < events.length; j++) {
      const e = events[j]!
      if (e.receipt.current()) kept.push(e)
      else dropped.push(e)
    }
    return kept
  }
  return events
}

/**
 * The broker as a Sink of events: each chunk is published whole, retried through outages with
 * the broker-outage backoff until the broker answers for it, and only then is each accepted
 * event's receipt told (so checkpoints never pass an event the broker does not hold). Before
 * every attempt, events whose lease this process lost are dropped (the shard's new holder replays
 * them from the checkpoint), so a stale event never waits out an outage. Chunks go one at a time,
 * in order.
 */
export const brokerSink = (broker: BrokerService, observer: SinkObserver): Sink.Sink<void, DispatchEvent> => {
  const retry = backoffSchedule(Backoffs.brokerOutage)
  return Sink.forEachArray((chunk: NonEmptyReadonlyArray<DispatchEvent>) => {
    const startedAt = performance.now()
    // Shrinks across attempts: a lease once lost stays lost.
    let live: ReadonlyArray<DispatchEvent> = chunk
    const dropped: Array<DispatchEvent> = []
    const attempt = Effect.suspend(() => {
      live = keepCurrent(live, dropped)
      return live.length === 0 ? Effect.succeed(allPublished) : broker.publish(live)
    })
    return attempt.pipe(
      Effect.tapError(observer.failed),
      Effect.retry(retry),
      // The retry never gives up, so this is never reached; it types the sink as infallible.
      Effect.orDie,
      Effect.flatMap(({ refused }) => {
        if (refused.length === 0) {
          for (const event of live) event.receipt.accepted(event.seq)
        } else {
          const fenced = new Set(refused)
          for (const event of live) if (!fenced.has(event)) event.receipt.accepted(event.seq)
        }
        const published = observer.accepted(chunk, live.length - refused.length, performance.now() - startedAt)
        if (dropped.length === 0 && refused.length === 0) return published
        return Effect.andThen(
          Effect.andThen(
            isNonEmpty(dropped) ? observer.fenced(dropped, "local") : Effect.void,
            isNonEmpty(refused) ? observer.fenced(refused, broker.name) : Effect.void
          ),
          published
        )
      })
    )
  })
}
