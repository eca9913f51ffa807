// What the daemon counts for /metrics. Every update is a plain synchronous write to a number or
// a Map (no Effect, no allocation once a label was seen), so the per-event cost stays a Map
// lookup; formatting happens only when a scrape asks (MetricsText.ts).
import { Context, Layer } from "effect"

/** Bucket upper bounds in seconds, shared by the heartbeat and publish histograms. */
export const LATENCY_BUCKETS: ReadonlyArray<number> = [
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60
]

/** A fixed-bucket histogram; counts are per bucket (made cumulative when rendered). */
export class Histogram {
  readonly bounds: ReadonlyArray<number>
  /** counts[i] observations fell in (bounds[i-1], bounds[i]]; the last slot is above every bound. */
  readonly counts: Array<number>
  sum = 0
  count = 0

  constructor(bounds: ReadonlyArray<number> = LATENCY_BUCKETS) {
    this.bounds = bounds
    this.counts = new Array<number>(bounds.length + 1).fill(0)
  }

  observe(value: number): void {
    let i = 0
    while (i < this.bounds.length && value > this.bounds[i]!) i++
    this.counts[i]!++
    this.sum += value
    this.count++
  }
}

/** Dispatches read on one shard, by event name. A mutable cell per name: one lookup per event. */
export class EventCounts {
  readonly byName = new Map<string, { n: number }>()

  add(t: string): void {
    const cell = this.byName.get(t)
    if (cell !== undefined) cell.n++
    else this.byName.set(t, { n: 1 })
  }
}

const bump = <K>(map: Map<K, number>, key: K, by = 1): void => {
  map.set(key, (map.get(key) ?? 0) + by)
}

const histogramOf = <K>(map: Map<K, Histogram>, key: K): Histogram => {
  let h = map.get(key)
  if (h === undefined) {
    h = new Histogram()
    map.set(key, h)
  }
  return h
}

export class GatewayCounters {
  readonly events = new Map<number, EventCounts>()
  /** IDENTIFY payloads sent, per shard. */
  readonly identifies = new Map<number, number>()
  /** RESUME payloads sent, per shard. */
  readonly resumes = new Map<number, number>()
  /** Connections ended (and redialled), per shard and short reason (see Shard/Ending.ts endingLabel). */
  readonly reconnects = new Map<number, Map<string, number>>()
  /** Heartbeat ACK round trips in seconds, per shard. */
  readonly heartbeats = new Map<number, Histogram>()
  /** Events the broker accepted, per broker name. */
  readonly published = new Map<string, number>()
  /** Publish attempts that failed (each retry counts), per broker name. */
  readonly publishErrors = new Map<string, number>()
  /** Seconds from taking a batch to the broker accepting it (retries included), per broker. */
  readonly publishDurations = new Map<string, Histogram>()
  #budget: number | (() => number) | undefined

  /** The shard's event counts; a session fetches it once per connection, not per event. */
  eventsOf(shard: number): EventCounts {
    let counts = this.events.get(shard)
    if (counts === undefined) {
      counts = new EventCounts()
      this.events.set(shard, counts)
    }
    return counts
  }

  identified(shard: number): void {
    bump(this.identifies, shard)
  }

  resumed(shard: number): void {
    bump(this.resumes, shard)
  }

  reconnected(shard: number, reason: string): void {
    let byReason = this.reconnects.get(shard)
    if (byReason === undefined) {
      byReason = new Map()
      this.reconnects.set(shard, byReason)
    }
    bump(byReason, reason)
  }

  /** Shard fibers restarted after a defect, per shard. */
  readonly shardRestarts = new Map<number, number>()

  shardRestarted(shard: number): void {
    bump(this.shardRestarts, shard)
  }

  heartbeatAcked(shard: number, latencyMs: number): void {
    histogramOf(this.heartbeats, shard).observe(latencyMs / 1000)
  }

  publishedBatch(broker: string, events: number, durationMs: number): void {
    bump(this.published, broker, events)
    histogramOf(this.publishDurations, broker).observe(durationMs / 1000)
  }

  publishFailed(broker: string): void {
    bump(this.publishErrors, broker)
  }

  /** Discord's session starts left: a number, or a function read at each scrape. */
  setSessionBudget(remaining: number | (() => number)): void {
    this.#budget = remaining
  }

  /** undefined until someone set it (the renderer then falls back to /gateway/bot's answer). */
  sessionBudget(): number | undefined {
    const budget = this.#budget
    return typeof budget === "function" ? budget() : budget
  }
}

/**
 * The process's counters. A Reference, so a layer that does not provide it (a test building a
 * session alone) still works; main.ts provides one instance to everything.
 */
export const GatewayStats = Context.Reference<GatewayCounters>("gateway/GatewayStats", {
  defaultValue: () => new GatewayCounters()
})

export const GatewayStatsLive = Layer.sync(GatewayStats, () => new GatewayCounters())
