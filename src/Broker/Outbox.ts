// The bounded hand-off between the shards (producers, in socket callbacks) and the publisher
// (one consumer fiber, so events keep their order). When it holds `capacity` events the shards
// are told to stop reading their sockets; they are told to go on once it has drained to half.
// An offer is never refused: frames already read must not be lost, so the bound is soft by at
// most what a paused socket had already buffered.
import { Context, Effect, Layer, Queue } from "effect"
import { AppConfig } from "../Config/AppConfig.ts"
import type { DispatchEvent } from "./DispatchEvent.ts"

export interface Outbox {
  /** Returns false when the outbox is full: the caller should pause and wait for `onSpace`. */
  readonly offer: (event: DispatchEvent) => boolean
  /** Registers a one-shot callback for when the outbox has room again. */
  readonly onSpace: (resume: () => void) => void
  /** Waits for at least one event and takes up to `max`, oldest first. */
  readonly takeBatch: (max: number) => Effect.Effect<ReadonlyArray<DispatchEvent>>
  /** Called by the publisher once a batch is delivered; wakes paused shards when there is room. */
  readonly released: (count: number) => void
  readonly size: () => number
  readonly capacity: number
}

export const Outbox = Context.Service<Outbox>("gateway/Outbox")

export const makeOutbox = (capacity: number) =>
  Effect.gen(function*() {
    const queue = yield* Queue.unbounded<DispatchEvent>()
    // Events offered and not yet delivered (queued plus the batch being published).
    let held = 0
    let waiters: Array<() => void> = []
    const lowWater = Math.floor(capacity / 2)
    const wake = () => {
      if (waiters.length === 0 || held > lowWater) return
      const ready = waiters
      waiters = []
      for (const resume of ready) resume()
    }
    return Outbox.of({
      capacity,
      offer: (event) => {
        Queue.offerUnsafe(queue, event)
        held++
        return held < capacity
      },
      onSpace: (resume) => {
        waiters.push(resume)
        wake()
      },
      takeBatch: (max) => Queue.takeBetween(queue, 1, max),
      released: (count) => {
        held -= count
        wake()
      },
      size: () => held
    })
  })

export const OutboxLive = Layer.effect(
  Outbox,
  Effect.flatMap(AppConfig, (config) => makeOutbox(config.broker.bufferSize))
)
