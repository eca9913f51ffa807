// What the daemon counts for /metrics. Two kinds, by how often they move:
// - per event (dispatches read, by shard and name): a plain mutable cell per name, one Map lookup
//   and an increment, because at ~30 µs of CPU per event an Effect Metric update (170-300 ns,
//   measured) would cost about 1 %; the cells are exposed through the Metric registry at scrape
//   time (GatewayMetrics.ts);
// - everything rarer (identifies, resumes, reconnects, heartbeats, publish batches and failures):
//   Effect Metrics, updated synchronously through these methods so callers need no Effect.
import { Context, Layer, Metric } from "effect"

/** Bucket upper bounds in seconds, shared by the heartbeat and publish histograms. */
export const LATENCY_BUCKETS: ReadonlyArray<number> = [
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60
]

export const identifiesTotal = Metric.counter("gateway_identifies_total", {
  description: "IDENTIFY payloads sent (each spends a session start).",
  incremental: true
})
export const resumesTotal = Metric.counter("gateway_resumes_total", { description: "RESUME payloads sent.", incremental: true })
export const reconnectsTotal = Metric.counter("gateway_shard_reconnects_total", {
  description: "Connections that ended and were redialled, by shard and reason (Shard/Ending.ts endingLabel).",
  incremental: true
})
export const shardRestartsTotal = Metric.counter("gateway_shard_restarts_total", {
  description: "Shard fibers restarted after a defect (a bug: please report it with the logged cause).",
  incremental: true
})
export const heartbeatLatency = Metric.histogram("gateway_heartbeat_latency_seconds", {
  description: "Time from sending a heartbeat to Discord's ACK.",
  boundaries: LATENCY_BUCKETS
})
export const publishedTotal = Metric.counter("gateway_events_published_total", { description: "Events the broker accepted.", incremental: true })
export const publishErrorsTotal = Metric.counter("gateway_publish_errors_total", {
  description: "Failed publish attempts (each retry counts).",
  incremental: true
})
export const fencedTotal = Metric.counter("gateway_fenced_events_total", {
  description: "Events not published because this process no longer held their shard's lease: " +
    "dropped before publishing (where=\"local\") or refused by the broker's fence (where=broker name).",
  incremental: true
})
export const publishDuration = Metric.histogram("gateway_publish_duration_seconds", {
  description: "Time from taking a batch to the broker accepting it, retries included.",
  boundaries: LATENCY_BUCKETS
})

/** Dispatches read on one shard, by event name. A mutable cell per name: one lookup per event. */
export class EventCounts {
  readonly byName = new Map<string, { n: number }>()

  add(t: string): void {
    const cell = this.byName.get(t)
    if (cell !== undefined) cell.n++
    else this.byName.set(t, { n: 1 })
  }
}

/** One labelled series per label value, made once (labelling a metric allocates). */
class Series<M extends Metric.Metric<number, unknown>> {
  readonly #metric: M
  readonly #byKey = new Map<string, Metric.Metric<number, unknown>>()
  constructor(metric: M) {
    this.#metric = metric
  }
  of(labels: Readonly<Record<string, string>>): Metric.Metric<number, unknown> {
    const key = Object.values(labels).join("\u0000")
    let series = this.#byKey.get(key)
    if (series === undefined) {
      series = Metric.withAttributes(this.#metric, labels) as Metric.Metric<number, unknown>
      this.#byKey.set(key, series)
    }
    return series
  }
}

export class GatewayCounters {
  /** Hand-rolled (see above): dispatches read, per shard. */
  readonly events = new Map<number, EventCounts>()
  /** Where the Effect Metrics live: the process's registry unless a test gives its own. */
  readonly context: Context.Context<never>
  readonly #identifies = new Series(identifiesTotal)
  readonly #resumes = new Series(resumesTotal)
  readonly #reconnects = new Series(reconnectsTotal)
  readonly #heartbeats = new Series(heartbeatLatency)
  readonly #published = new Series(publishedTotal)
  readonly #publishErrors = new Series(publishErrorsTotal)
  readonly #publishDurations = new Series(publishDuration)
  readonly #fenced = new Series(fencedTotal)
  readonly #restarts = new Series(shardRestartsTotal)
  #budget: number | (() => number) | undefined

  constructor(context: Context.Context<never> = Context.empty()) {
    this.context = context
  }

  #update(series: Metric.Metric<number, unknown>, value: number): void {
    series.updateUnsafe(value, this.context)
  }

  /** The shard's event counts; a session fetches it once per connection, not per event. */
  eventsOf(shard: number): EventCounts {
    let counts = this.events.get(shard)
    if (counts === undefined) {
      counts = new EventCounts()
      this.events.set(shard, counts)
    }
    return counts
  }

  /** Makes a shard's zero-valued series visible before anything happened on it. */
  announceShard(shard: number): void {
    const labels = { shard: String(shard) }
    for (const series of [this.#identifies, this.#resumes, this.#restarts, this.#heartbeats]) series.of(labels).valueUnsafe(this.context)
  }

  /** Makes the broker's zero-valued series visible before its first batch. */
  announceBroker(broker: string): void {
    for (const series of [this.#published, this.#publishErrors, this.#publishDurations]) series.of({ broker }).valueUnsafe(this.context)
    this.#fenced.of({ where: "local" }).valueUnsafe(this.context)
  }

  identified(shard: number): void {
    this.#update(this.#identifies.of({ shard: String(shard) }), 1)
  }

  resumed(shard: number): void {
    this.#update(this.#resumes.of({ shard: String(shard) }), 1)
  }

  reconnected(shard: number, reason: string): void {
    this.#update(this.#reconnects.of({ shard: String(shard), reason }), 1)
  }

  /** A shard fiber restarted after a defect. */
  shardRestarted(shard: number): void {
    this.#update(this.#restarts.of({ shard: String(shard) }), 1)
  }

  heartbeatAcked(shard: number, latencyMs: number): void {
    this.#update(this.#heartbeats.of({ shard: String(shard) }), latencyMs / 1000)
  }

  publishedBatch(broker: string, events: number, durationMs: number): void {
    this.#update(this.#published.of({ broker }), events)
    this.#update(this.#publishDurations.of({ broker }), durationMs / 1000)
  }

  /** Events not published for a lost lease: `where` is "local" or the refusing broker's name. */
  fenced(where: string, events: number): void {
    this.#update(this.#fenced.of({ where }), events)
  }

  publishFailed(broker: string): void {
    this.#update(this.#publishErrors.of({ broker }), 1)
  }

  /** Discord's session starts left: a number, or a function read at each scrape. */
  setSessionBudget(remaining: number | (() => number)): void {
    this.#budget = remaining
  }

  /** undefined until someone set it (the metric then falls back to /gateway/bot's answer). */
  sessionBudget(): number | undefined {
    const budget = this.#budget
    return typeof budget === "function" ? budget() : budget
  }
}

/**
 * The process's counters. A Reference, so a layer that does not provide it (a test building a
 * session alone) still works; daemon.ts provides one instance to everything.
 */
export const GatewayStats = Context.Reference<GatewayCounters>("gateway/GatewayStats", {
  defaultValue: () => new GatewayCounters()
})

export const GatewayStatsLive = Layer.sync(GatewayStats, () => new GatewayCounters())
