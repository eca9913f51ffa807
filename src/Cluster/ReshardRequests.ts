// Where the parts of a generation ask for a resharding (a shard closed with 4011 "sharding
// required"); the process's resharding loop (src/Resharder.ts) answers. Absent: nobody reshards,
// and 4011 stays fatal (static shard ids, no Redis shard store).
import { Context, type Effect } from "effect"
import type { ReshardReason } from "./Resharding.ts"

export class ReshardRequests extends Context.Service<ReshardRequests, {
  /** Asks for a resharding; returns at once (the resharding loop decides the count and whether to). */
  readonly request: (reason: ReshardReason, detail: string, refusedCount?: number) => Effect.Effect<void>
}>()("gateway/ReshardRequests") {}
