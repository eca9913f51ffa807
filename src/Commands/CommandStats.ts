// Plain counters of what happened to commands, kept per process. Read them directly (e.g. for
// /metrics): every field is a number or a Map of numbers, updated synchronously.
import { Context, Layer } from "effect"
import type { RefusalReason } from "./Refusal.ts"

export class CommandCounters {
  /** Commands accepted from any source (a broadcast counts once). */
  received = 0
  /** Payloads written to Discord by this process's shards (a broadcast counts once per shard). */
  sent = 0
  /** Payloads handed to a shard's inbox through the broker (for another process, or this one). */
  forwarded = 0
  /** Commands refused, by reason; see Refusal.ts for the reasons. */
  readonly refused = new Map<RefusalReason, number>()

  refuse(reason: RefusalReason): void {
    this.refused.set(reason, (this.refused.get(reason) ?? 0) + 1)
  }

  get refusedTotal(): number {
    let total = 0
    for (const n of this.refused.values()) total += n
    return total
  }

  /** One line for logs: "12 received, 10 sent, 4 forwarded, 2 refused (op_not_allowed 1, malformed 1)". */
  summary(): string {
    const reasons = Array.from(this.refused, ([reason, n]) => `${reason} ${n}`).join(", ")
    return `${this.received} received, ${this.sent} sent, ${this.forwarded} forwarded, ${this.refusedTotal} refused` +
      (reasons === "" ? "" : ` (${reasons})`)
  }
}

export class CommandStats extends Context.Service<CommandStats, CommandCounters>()("gateway/CommandStats") {
  static readonly layer = Layer.sync(CommandStats, () => new CommandCounters())
}
