// The gateway's values that other parts already hold, observed at scrape time through the Metric
// registry: dispatches read (the hand-rolled per-event cells), shard states, the outbox, the broker
// link, the session budget and the command counters.
import { type Context, Effect, Metric } from "effect"
import type { CommandCounters } from "../Commands/CommandStats.ts"
import { REFUSAL_REASONS } from "../Commands/Refusal.ts"
import type { ShardState } from "../Shard/ShardStatus.ts"
import type { GatewayCounters } from "../Metrics/GatewayStats.ts"
import { type Collector, counterState, gaugeState, observe } from "./MetricsText.ts"

export const SHARD_STATES: ReadonlyArray<ShardState> = ["connecting", "identifying", "resuming", "ready", "reconnecting"]

export const eventsReceivedTotal = Metric.counter("gateway_events_received_total", {
  description: "Dispatch events read from Discord, forwarded or not, by shard and event name.",
  incremental: true
})
const brokerConnected = Metric.gauge("gateway_broker_connected", { description: "1 when the broker is reachable now." })
const outboxEvents = Metric.gauge("gateway_outbox_events", { description: "Events read and not yet accepted by the broker." })
const outboxCapacity = Metric.gauge("gateway_outbox_capacity", {
  description: "Outbox size at which the shards stop reading (broker.buffer_size)."
})
const shardState = Metric.gauge("gateway_shard_state", { description: "1 for the shard's current state, 0 for the others." })
const sessionStartsRemaining = Metric.gauge("gateway_session_starts_remaining", {
  description: "Session starts (identifies) Discord still allows until its daily reset."
})
const commandsReceived = Metric.counter("gateway_commands_received_total", {
  description: "Commands accepted from any source (a broadcast counts once).",
  incremental: true
})
const commandsSent = Metric.counter("gateway_commands_sent_total", {
  description: "Command payloads written to Discord by this process's shards.",
  incremental: true
})
const commandsForwarded = Metric.counter("gateway_commands_forwarded_total", {
  description: "Command payloads handed on through the broker to a shard's owner.",
  incremental: true
})
const commandsRefused = Metric.counter("gateway_commands_refused_total", { description: "Commands refused, by reason.", incremental: true })

export interface GatewaySources {
  readonly stats: GatewayCounters
  /** Every shard this process owns, with its current state. */
  readonly shards: () => ReadonlyMap<number, ShardState>
  readonly outbox: { readonly size: () => number; readonly capacity: number }
  readonly broker: { readonly name: string; readonly connected: () => boolean }
  /** Absent when no command side runs. */
  readonly commands: CommandCounters | undefined
  /** Session starts left, read at each scrape. */
  readonly sessionBudget: () => number
}

export interface Observed {
  /** Registers the series of shards and event names that appeared since the last scrape. */
  readonly collect: Collector
  readonly remove: () => void
}

/** Registers the gateway's observed metrics in `context`'s registry (unsafe: call once, remove later). */
export const observeGateway = (s: GatewaySources, context: Context.Context<never>): Observed => {
  const registrations: Array<Metric.Registration> = []
  const add = <In, S>(metric: Metric.Metric<In, S>, get: () => S) => registrations.push(observe(metric, get, context))

  add(Metric.withAttributes(brokerConnected, { broker: s.broker.name }), () => gaugeState(s.broker.connected() ? 1 : 0))
  add(outboxEvents, () => gaugeState(s.outbox.size()))
  add(outboxCapacity, () => gaugeState(s.outbox.capacity))
  add(sessionStartsRemaining, () => gaugeState(s.sessionBudget()))
  const c = s.commands
  if (c !== undefined) {
    add(commandsReceived, () => counterState(c.received))
    add(commandsSent, () => counterState(c.sent))
    add(commandsForwarded, () => counterState(c.forwarded))
    for (const reason of REFUSAL_REASONS) add(Metric.withAttributes(commandsRefused, { reason }), () => counterState(c.refused.get(reason) ?? 0))
  }
  s.stats.announceBroker(s.broker.name)

  const knownShards = new Set<number>()
  const knownCells = new WeakSet<object>()
  const collect = () => {
    for (const shard of s.shards().keys()) {
      if (knownShards.has(shard)) continue
      knownShards.add(shard)
      s.stats.announceShard(shard)
      for (const state of SHARD_STATES) {
        add(Metric.withAttributes(shardState, { shard: String(shard), state }), () => gaugeState(s.shards().get(shard) === state ? 1 : 0))
      }
    }
    for (const [shard, counts] of s.stats.events) {
      for (const [event, cell] of counts.byName) {
        if (knownCells.has(cell)) continue
        knownCells.add(cell)
        add(Metric.withAttributes(eventsReceivedTotal, { shard: String(shard), event }), () => counterState(cell.n))
      }
    }
  }
  collect()
  return {
    collect,
    remove: () => {
      for (const registration of registrations.splice(0)) registration.remove()
    }
  }
}

/** `observeGateway` for the scope's lifetime, in the current context's registry. */
export const observeGatewayScoped = (s: GatewaySources) =>
  Effect.acquireRelease(
    Effect.map(Effect.context<never>(), (context) => observeGateway(s, context)),
    (observed) => Effect.sync(observed.remove)
  )
