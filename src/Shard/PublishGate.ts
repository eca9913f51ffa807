// Whether a generation's shards publish what they read (resharding, Cluster/Resharding.ts). The next
// generation runs with its gate shut until every one of its shards was READY: its dispatches move
// the session's sequence (and checkpoints) but are not forwarded. The current generation's gate is
// open; while both publish somewhere in the cluster, what either forwards here may be published
// twice: it is counted (an upper bound of the duplicates).
import { Context, Effect, Metric } from "effect"

const overlapEvents = Metric.counter("gateway_reshard_overlap_events_total", {
  description: "Events published while two generations of shards both published (resharding): an upper bound of the duplicates",
  incremental: true
})

export interface PublishGateShape {
  /** Called for every wanted dispatch, on the hot path: true when it goes to the broker. */
  readonly pass: () => boolean
  readonly isOpen: () => boolean
  readonly open: () => void
  /** Every event passed from now on may also be published by the other generation: count it. */
  readonly overlapping: () => void
  /** The other generation is gone: stop counting. */
  readonly alone: () => void
}

export class PublishGate extends Context.Service<PublishGate, PublishGateShape>()("gateway/PublishGate") {}

export const makePublishGate = (open: boolean) =>
  Effect.map(Effect.context<never>(), (context): PublishGateShape => {
    let isOpen = open
    let counting = false
    const counter = Metric.withAttributes(overlapEvents, {})
    return {
      pass: () => {
        if (counting) counter.updateUnsafe(1, context)
        return isOpen
      },
      isOpen: () => isOpen,
      open: () => {
        isOpen = true
      },
      overlapping: () => {
        counting = true
      },
      alone: () => {
        counting = false
      }
    }
  })
