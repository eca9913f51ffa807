// The /metrics page: the counters in GatewayStats plus what other services already know (shard
// states, outbox depth, command counters, broker link), read at scrape time.
import type { CommandCounters } from "../Commands/CommandStats.ts"
import { REFUSAL_REASONS } from "../Commands/Refusal.ts"
import type { ShardState } from "../Shard/ShardStatus.ts"
import { Exposition } from "./Exposition.ts"
import type { GatewayCounters } from "./GatewayStats.ts"

export const SHARD_STATES: ReadonlyArray<ShardState> = ["connecting", "identifying", "resuming", "ready", "reconnecting"]

export interface MetricsSources {
  readonly stats: GatewayCounters
  /** Every shard this process owns, with its current state. */
  readonly shards: ReadonlyMap<number, ShardState>
  readonly outbox: { readonly size: number; readonly capacity: number }
  readonly broker: { readonly name: string; readonly connected: boolean }
  /** Absent when no command side runs (unit tests). */
  readonly commands: CommandCounters | undefined
  /** Session starts left, from the stats' setter or else /gateway/bot at startup. */
  readonly sessionBudget: number
}

const sortedNumbers = <V>(map: ReadonlyMap<number, V>) => [...map.keys()].sort((a, b) => a - b)

export const renderMetrics = (s: MetricsSources): string => {
  const out = new Exposition()
  const { stats } = s
  const shardIds = sortedNumbers(s.shards)

  out.family("gateway_events_received_total", "counter", "Dispatch events read from Discord, forwarded or not, by shard and event name.")
  for (const shard of sortedNumbers(stats.events)) {
    for (const [event, cell] of stats.events.get(shard)!.byName) out.sample("gateway_events_received_total", { shard, event }, cell.n)
  }

  out.family("gateway_events_published_total", "counter", "Events the broker accepted.")
  out.sample("gateway_events_published_total", { broker: s.broker.name }, stats.published.get(s.broker.name) ?? 0)
  out.family("gateway_publish_errors_total", "counter", "Failed publish attempts (each retry counts).")
  out.sample("gateway_publish_errors_total", { broker: s.broker.name }, stats.publishErrors.get(s.broker.name) ?? 0)
  out.family("gateway_publish_duration_seconds", "histogram", "Time from taking a batch to the broker accepting it, retries included.")
  for (const [broker, h] of stats.publishDurations) out.histogram("gateway_publish_duration_seconds", { broker }, h)

  out.family("gateway_broker_connected", "gauge", "1 when the broker is reachable now.")
  out.sample("gateway_broker_connected", { broker: s.broker.name }, s.broker.connected ? 1 : 0)
  out.family("gateway_outbox_events", "gauge", "Events read and not yet accepted by the broker.")
  out.sample("gateway_outbox_events", undefined, s.outbox.size)
  out.family("gateway_outbox_capacity", "gauge", "Outbox size at which the shards stop reading (broker.buffer_size).")
  out.sample("gateway_outbox_capacity", undefined, s.outbox.capacity)

  out.family("gateway_heartbeat_latency_seconds", "histogram", "Time from sending a heartbeat to Discord's ACK.")
  for (const shard of sortedNumbers(stats.heartbeats)) out.histogram("gateway_heartbeat_latency_seconds", { shard }, stats.heartbeats.get(shard)!)

  out.family("gateway_shard_state", "gauge", "1 for the shard's current state, 0 for the others.")
  for (const shard of shardIds) {
    const current = s.shards.get(shard)
    for (const state of SHARD_STATES) out.sample("gateway_shard_state", { shard, state }, state === current ? 1 : 0)
  }

  out.family("gateway_shard_reconnects_total", "counter", "Connections that ended and were redialled, by shard and reason.")
  for (const shard of sortedNumbers(stats.reconnects)) {
    for (const [reason, n] of stats.reconnects.get(shard)!) out.sample("gateway_shard_reconnects_total", { shard, reason }, n)
  }
  out.family("gateway_shard_restarts_total", "counter", "Shard fibers restarted after a defect (a bug: please report it with the logged cause).")
  for (const shard of shardIds) out.sample("gateway_shard_restarts_total", { shard }, stats.shardRestarts.get(shard) ?? 0)
  out.family("gateway_identifies_total", "counter", "IDENTIFY payloads sent (each spends a session start).")
  for (const shard of shardIds) out.sample("gateway_identifies_total", { shard }, stats.identifies.get(shard) ?? 0)
  out.family("gateway_resumes_total", "counter", "RESUME payloads sent.")
  for (const shard of shardIds) out.sample("gateway_resumes_total", { shard }, stats.resumes.get(shard) ?? 0)
  out.family("gateway_session_starts_remaining", "gauge", "Session starts (identifies) Discord still allows until its daily reset.")
  out.sample("gateway_session_starts_remaining", undefined, s.sessionBudget)

  const c = s.commands
  out.family("gateway_commands_received_total", "counter", "Commands accepted from any source (a broadcast counts once).")
  out.sample("gateway_commands_received_total", undefined, c?.received ?? 0)
  out.family("gateway_commands_sent_total", "counter", "Command payloads written to Discord by this process's shards.")
  out.sample("gateway_commands_sent_total", undefined, c?.sent ?? 0)
  out.family("gateway_commands_forwarded_total", "counter", "Command payloads handed on through the broker to a shard's owner.")
  out.sample("gateway_commands_forwarded_total", undefined, c?.forwarded ?? 0)
  out.family("gateway_commands_refused_total", "counter", "Commands refused, by reason.")
  for (const reason of REFUSAL_REASONS) out.sample("gateway_commands_refused_total", { reason }, c?.refused.get(reason) ?? 0)

  return out.text()
}
