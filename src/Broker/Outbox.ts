// The bounded hand-off between the shards (producers, in socket callbacks) and the broker (one
// consumer, so events keep their order), read as a Stream of chunks of up to MAX_CHUNK events.
// It never holds more than `capacity` events: an offer past that is refused, and the shard keeps
// the event (and stops reading its socket) until it is told there is room again, once the outbox
// has drained to half. A chunk leaves the outbox only once the broker accepted it: a consumer that
// dies with a chunk in hand is restarted and is handed that chunk again (at least once, in order).
import { type Cause, Context, Effect, Layer, Queue, Stream } from "effect"
import type { NonEmptyReadonlyArray } from "effect/Array"
import { AppConfig } from "../Config/AppConfig.ts"
import type { DispatchEvent } from "./DispatchEvent.ts"

/** Large enough to amortise a round trip, small enough to keep latency and memory low. */
export const MAX_CHUNK = 512

export interface Outbox {
  /**
   * Takes the event, or returns false without taking it when the outbox is full (or ended): the
   * caller keeps it, stops reading, and offers it again after `onSpace`.
   */
  readonly offer: (event: DispatchEvent) => boolean
  /** Registers a one-shot callback for when the outbox has room again. */
  readonly onSpace: (resume: () => void) => void
  /**
   * The events, oldest first, in chunks of 1 to MAX_CHUNK. Ends once `end` was called and every
   * event was taken. One reader at a time; a new reader first gets the chunk the last one took
   * and did not `accept`.
   */
  readonly events: Stream.Stream<DispatchEvent>
  /** The reader's chunk was accepted by the broker: it leaves the outbox (wakes paused shards). */
  readonly accepted: (chunk: NonEmptyReadonlyArray<DispatchEvent>) => void
  /** No more offers (graceful shutdown): `events` ends once what is held was taken. */
  readonly end: Effect.Effect<void>
  /** Events offered and not yet accepted (queued plus the chunk in hand). */
  readonly size: () => number
  readonly capacity: number
}

export const Outbox = Context.Service<Outbox>("gateway/Outbox")

export const makeOutbox = (capacity: number) =>
  Effect.gen(function*() {
    const queue = yield* Queue.unbounded<DispatchEvent, Cause.Done>()
    let held = 0
    // The chunk handed to the reader and not yet accepted.
    let inHand: NonEmptyReadonlyArray<DispatchEvent> | undefined
    let waiters: Array<() => void> = []
    const lowWater = Math.floor(capacity / 2)
    const wake = () => {
      if (waiters.length === 0 || held > lowWater) return
      const ready = waiters
      waiters = []
      for (const resume of ready) resume()
    }
    const take = Queue.takeBetween(queue, 1, MAX_CHUNK).pipe(
      Effect.map((chunk) => (inHand = chunk as unknown as NonEmptyReadonlyArray<DispatchEvent>))
    )
    const pull = Effect.suspend(() => inHand === undefined ? take : Effect.succeed(inHand))
    return Outbox.of({
      capacity,
      offer: (event) => {
        // After `end` the shards have stopped reading, and an event that never reached the
        // broker is not checkpointed, so the next start replays it.
        if (held >= capacity || !Queue.offerUnsafe(queue, event)) return false
        held++
        return true
      },
      onSpace: (resume) => {
        waiters.push(resume)
        wake()
      },
      events: Stream.fromPull(Effect.succeed(pull)),
      accepted: (chunk) => {
        // One reader, one chunk at a time: what it accepts is the chunk in hand.
        inHand = undefined
        held -= chunk.length
        wake()
      },
      end: Effect.asVoid(Queue.end(queue)),
      size: () => held
    })
  })

export const OutboxLive = Layer.effect(
  Outbox,
  Effect.flatMap(AppConfig, (config) => makeOutbox(config.broker.bufferSize))
)
