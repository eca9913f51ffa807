// The process and the Node runtime, in the names Prometheus users know from other exporters
// (process_*, nodejs_*), plus gateway_build_info. Read at scrape time through the Metric registry,
// except GC pauses, counted as they happen (a PerformanceObserver, a few per second at most).
//
// Event-loop delay comes from perf_hooks' monitorEventLoopDelay: its histogram covers the window
// since the previous scrape (it is reset at each one), so `nodejs_eventloop_lag_p99_seconds` is
// "the p99 over the last scrape interval"; with several scrapers each sees its own share.
import { readdirSync, readFileSync } from "node:fs"
import { constants, monitorEventLoopDelay, PerformanceObserver } from "node:perf_hooks"
import { getHeapSpaceStatistics } from "node:v8"
import { type Context, Effect, Metric } from "effect"
import { type Collector, counterState, gaugeState, observe } from "./MetricsText.ts"
import packageJson from "../../package.json" with { type: "json" }

/** The package's version (package.json, built into dist/ by the bundler). */
export const packageVersion = (): string => (typeof packageJson.version === "string" ? packageJson.version : "unknown")

const GC_KINDS: ReadonlyArray<readonly [number, string]> = [
  [constants.NODE_PERFORMANCE_GC_MINOR, "minor"],
  [constants.NODE_PERFORMANCE_GC_MAJOR, "major"],
  [constants.NODE_PERFORMANCE_GC_INCREMENTAL, "incremental"],
  [constants.NODE_PERFORMANCE_GC_WEAKCB, "weakcb"]
]

const gauge = (name: string, description: string) => Metric.gauge(name, { description })
const counter = (name: string, description: string) => Metric.counter(name, { description, incremental: true })

export const gcDuration = Metric.histogram("nodejs_gc_duration_seconds", {
  description: "Garbage collection pauses, by kind (minor, major, incremental, weakcb).",
  boundaries: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 2, 5]
})

const NS = 1e9
const RESOLUTION_MS = 10

/** Open file descriptors (Linux /proc); undefined elsewhere. */
const openFds = (): number | undefined => {
  try {
    return readdirSync("/proc/self/fd").length
  } catch {
    return undefined
  }
}

const maxFds = (): number | undefined => {
  try {
    const line = readFileSync("/proc/self/limits", "utf8").split("\n").find((l) => l.startsWith("Max open files"))
    const soft = line === undefined ? NaN : Number(line.split(/\s{2,}/)[1])
    return Number.isFinite(soft) ? soft : undefined
  } catch {
    return undefined
  }
}

export interface RuntimeObserved {
  readonly collect: Collector
  readonly remove: () => void
}

/** Registers the runtime metrics in `context`'s registry and starts the two monitors. */
export const observeRuntime = (context: Context.Context<never>, version = packageVersion()): RuntimeObserved => {
  const registrations: Array<Metric.Registration> = []
  const add = <In, S>(metric: Metric.Metric<In, S>, get: () => S) => registrations.push(observe(metric, get, context))

  add(counter("process_cpu_user_seconds_total", "User CPU time spent, in seconds."), () => counterState(process.cpuUsage().user / 1e6))
  add(counter("process_cpu_system_seconds_total", "System CPU time spent, in seconds."), () => counterState(process.cpuUsage().system / 1e6))
  add(counter("process_cpu_seconds_total", "User and system CPU time spent, in seconds."), () => {
    const { user, system } = process.cpuUsage()
    return counterState((user + system) / 1e6)
  })
  add(gauge("process_resident_memory_bytes", "Resident memory size, in bytes."), () => gaugeState(process.memoryUsage.rss()))
  const startTime = Math.round(performance.timeOrigin) / 1000
  add(gauge("process_start_time_seconds", "Start time of the process since the Unix epoch, in seconds."), () => gaugeState(startTime))
  if (openFds() !== undefined) {
    add(gauge("process_open_fds", "Open file descriptors."), () => gaugeState(openFds() ?? 0))
    const max = maxFds()
    if (max !== undefined) add(gauge("process_max_fds", "Maximum number of open file descriptors."), () => gaugeState(max))
  }

  add(gauge("nodejs_heap_size_total_bytes", "V8 heap size, in bytes."), () => gaugeState(process.memoryUsage().heapTotal))
  add(gauge("nodejs_heap_size_used_bytes", "V8 heap in use, in bytes."), () => gaugeState(process.memoryUsage().heapUsed))
  add(gauge("nodejs_external_memory_bytes", "Memory of C++ objects bound to JavaScript (Buffers included), in bytes."), () =>
    gaugeState(process.memoryUsage().external))
  const heapSpaceUsed = gauge("nodejs_heap_space_size_used_bytes", "V8 heap in use, by space, in bytes.")
  // Committed per space: shows the young generation ("new_space") staying small (Process/youngGeneration.ts).
  const heapSpaceTotal = gauge("nodejs_heap_space_size_total_bytes", "V8 heap committed, by space, in bytes.")
  for (const space of getHeapSpaceStatistics()) {
    const of = () => getHeapSpaceStatistics().find((s) => s.space_name === space.space_name)
    add(Metric.withAttributes(heapSpaceUsed, { space: space.space_name }), () => gaugeState(of()?.space_used_size ?? 0))
    add(Metric.withAttributes(heapSpaceTotal, { space: space.space_name }), () => gaugeState(of()?.space_size ?? 0))
  }
  add(gauge("nodejs_active_resources", "Resources keeping the event loop alive (sockets, timers, ...)."), () =>
    gaugeState(process.getActiveResourcesInfo().length))

  // Event-loop delay over the window since the previous scrape, sampled every 10 ms. The monitor
  // records whole tick intervals (10 ms on an idle loop): the lag is what exceeds the interval.
  const delay = monitorEventLoopDelay({ resolution: RESOLUTION_MS })
  delay.enable()
  const lag = (ns: number) => Math.max(0, ns / NS - RESOLUTION_MS / 1000)
  let window = { mean: 0, p50: 0, p90: 0, p99: 0, max: 0 }
  const takeWindow = () => {
    window = delay.count === 0
      ? { mean: 0, p50: 0, p90: 0, p99: 0, max: 0 }
      : {
        mean: lag(delay.mean),
        p50: lag(delay.percentile(50)),
        p90: lag(delay.percentile(90)),
        p99: lag(delay.percentile(99)),
        max: lag(delay.max)
      }
    delay.reset()
  }
  add(gauge("nodejs_eventloop_lag_seconds", "Mean event-loop delay since the previous scrape, in seconds."), () => gaugeState(window.mean))
  add(gauge("nodejs_eventloop_lag_p50_seconds", "Median event-loop delay since the previous scrape, in seconds."), () => gaugeState(window.p50))
  add(gauge("nodejs_eventloop_lag_p90_seconds", "90th percentile of the event-loop delay since the previous scrape, in seconds."), () =>
    gaugeState(window.p90))
  add(gauge("nodejs_eventloop_lag_p99_seconds", "99th percentile of the event-loop delay since the previous scrape, in seconds."), () =>
    gaugeState(window.p99))
  add(gauge("nodejs_eventloop_lag_max_seconds", "Longest event-loop delay since the previous scrape, in seconds."), () => gaugeState(window.max))

  // GC pauses as they happen; every kind announced at zero so the family is there from the start.
  const byKind = new Map<number, Metric.Metric<number, unknown>>()
  for (const [kind, name] of GC_KINDS) {
    const series = Metric.withAttributes(gcDuration, { kind: name }) as Metric.Metric<number, unknown>
    series.valueUnsafe(context)
    byKind.set(kind, series)
  }
  const gc = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      const kind = (entry as { detail?: { kind?: number } | null }).detail?.kind
      const series = kind === undefined ? undefined : byKind.get(kind)
      series?.updateUnsafe(entry.duration / 1000, context)
    }
  })
  gc.observe({ entryTypes: ["gc"] })

  const [major, minor, patch] = process.versions.node.split(".")
  add(Metric.withAttributes(gauge("nodejs_version_info", "Node.js version."), {
    version: process.version,
    major: major ?? "",
    minor: minor ?? "",
    patch: patch ?? ""
  }), () => gaugeState(1))
  add(Metric.withAttributes(gauge("gateway_build_info", "Always 1; the labels say which gateway version runs on which Node.js."), {
    version,
    node: process.version
  }), () => gaugeState(1))

  return {
    collect: takeWindow,
    remove: () => {
      gc.disconnect()
      delay.disable()
      for (const registration of registrations.splice(0)) registration.remove()
    }
  }
}

/** `observeRuntime` for the scope's lifetime, in the current context's registry. */
export const observeRuntimeScoped = Effect.acquireRelease(
  Effect.map(Effect.context<never>(), (context) => observeRuntime(context)),
  (observed) => Effect.sync(observed.remove)
)
