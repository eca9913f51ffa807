// The /metrics page: every Effect Metric in the registry, in Prometheus's text format (version
// 0.0.4), by effect's own PrometheusMetrics. Any module can add a metric with
// `Metric.counter(...)` / `Metric.gauge(...)` / `Metric.histogram(...)` and update it with
// `Metric.update`: it is in the process's registry, so it shows here once first updated.
// Values that live elsewhere (a queue's size, the hand-rolled per-event cells) are `observe`d:
// registered with a function read at each scrape.
import { Context, Metric } from "effect"
import * as PrometheusMetrics from "effect/observability/PrometheusMetrics"

/** Runs before each scrape (e.g. registers series for labels that appeared since the last one). */
export type Collector = () => void

/** Registers `metric` (with its attributes) with a value read at each scrape. */
export const observe = <In, S>(metric: Metric.Metric<In, S>, get: () => S, context: Context.Context<never>): Metric.Registration =>
  Metric.registerUnsafe(metric, context, { get, update: () => {}, modify: () => {} })

export const counterState = (count: number): Metric.CounterState<number> => ({ count, incremental: true })
export const gaugeState = (value: number): Metric.GaugeState<number> => ({ value })

/** The exposition text of every metric registered in the context's registry. */
export const renderMetrics = (context: Context.Context<never>, collectors: ReadonlyArray<Collector> = []): string => {
  for (const collect of collectors) collect()
  return PrometheusMetrics.formatUnsafe(context)
}
