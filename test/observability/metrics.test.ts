// The /metrics page: valid exposition text from Effect's registry, each metric where an operator
// expects it, label values escaped so no event name or reason can break a scrape, any module's own
// Effect Metric included, and the process/runtime families.
import { Context, Effect, Metric } from "effect"
import { describe, expect, it } from "vitest"
import { CommandCounters } from "../../src/Commands/CommandStats.ts"
import { type GatewaySources, observeGateway } from "../../src/Observability/GatewayMetrics.ts"
import { GatewayCounters } from "../../src/Metrics/GatewayStats.ts"
import { renderMetrics } from "../../src/Observability/MetricsText.ts"
import { observeRuntime } from "../../src/Observability/RuntimeMetrics.ts"
import { endingLabel, Endings } from "../../src/Shard/Ending.ts"
import type { ShardState } from "../../src/Shard/ShardStatus.ts"
import { parseExposition, valueOf } from "./exposition.ts"

/** A registry of the test's own, so tests do not see each other's series. */
const isolated = () => Context.make(Metric.MetricRegistry, new Map())

const setup = (over: Partial<GatewaySources> = {}) => {
  const context = isolated()
  const stats = new GatewayCounters(context)
  const shards = new Map<number, ShardState>([[0, "ready"], [1, "resuming"]])
  const commands = new CommandCounters()
  const sources: GatewaySources = {
    stats,
    shards: () => shards,
    outbox: { size: () => 3, capacity: 10_000 },
    broker: { name: "redis", connected: () => true },
    commands,
    sessionBudget: () => 997,
    ...over
  }
  const observed = observeGateway(sources, context)
  const scrape = () => parseExposition(renderMetrics(context, [observed.collect]))
  return { context, stats, shards, commands, observed, scrape, sources }
}

describe("gateway metrics", () => {
  it("renders every family as valid exposition text, with zero series before anything happened", () => {
    const { samples, types } = setup().scrape()
    expect(Object.fromEntries(types)).toEqual({
      gateway_events_published_total: "counter",
      gateway_publish_errors_total: "counter",
      gateway_publish_duration_seconds: "histogram",
      gateway_fenced_events_total: "counter",
      gateway_broker_connected: "gauge",
      gateway_outbox_events: "gauge",
      gateway_outbox_capacity: "gauge",
      gateway_heartbeat_latency_seconds: "histogram",
      gateway_shard_state: "gauge",
      gateway_identifies_total: "counter",
      gateway_resumes_total: "counter",
      gateway_shard_restarts_total: "counter",
      gateway_session_starts_remaining: "gauge",
      gateway_commands_received_total: "counter",
      gateway_commands_sent_total: "counter",
      gateway_commands_forwarded_total: "counter",
      gateway_commands_refused_total: "counter"
    })
    expect(valueOf(samples, "gateway_outbox_events")).toBe(3)
    expect(valueOf(samples, "gateway_session_starts_remaining")).toBe(997)
    expect(valueOf(samples, "gateway_broker_connected", { broker: "redis" })).toBe(1)
    expect(samples.filter((s) => s.name === "gateway_identifies_total").map((s) => [s.labels, s.value])).toEqual([[{ shard: "0" }, 0], [{ shard: "1" }, 0]])
    expect(samples.some((s) => s.name === "gateway_commands_refused_total" && s.labels.reason === "malformed" && s.value === 0)).toBe(true)
    expect(samples.some((s) => s.name === "gateway_events_published_total" && s.labels.broker === "redis" && s.value === 0)).toBe(true)
    expect(samples.filter((s) => s.name === "gateway_fenced_events_total").map((s) => [s.labels, s.value])).toEqual([[{ where: "local" }, 0]])
  })

  it("reports each counter with its labels, including families whose first series appears later", () => {
    const { stats, commands, scrape } = setup()
    const shard0 = stats.eventsOf(0)
    for (let i = 0; i < 5; i++) shard0.add("MESSAGE_CREATE")
    shard0.add("GUILD_CREATE")
    stats.eventsOf(1).add("MESSAGE_CREATE")
    stats.identified(0)
    stats.resumed(1)
    stats.resumed(1)
    stats.reconnected(1, "op7")
    stats.reconnected(1, "zombie")
    stats.reconnected(1, "op7")
    stats.heartbeatAcked(0, 42)
    stats.heartbeatAcked(0, 3_000)
    stats.publishedBatch("redis", 512, 4)
    stats.publishedBatch("redis", 2, 0.5)
    stats.publishFailed("redis")
    stats.shardRestarted(1)
    commands.received = 4
    commands.sent = 3
    commands.forwarded = 1
    commands.refuse("too_large")
    const { samples, types } = scrape()
    expect(types.get("gateway_events_received_total")).toBe("counter")
    expect(types.get("gateway_shard_reconnects_total")).toBe("counter")
    expect(valueOf(samples, "gateway_events_received_total", { shard: "0", event: "MESSAGE_CREATE" })).toBe(5)
    expect(valueOf(samples, "gateway_events_received_total", { event: "MESSAGE_CREATE" })).toBe(6)
    expect(valueOf(samples, "gateway_events_received_total", { shard: "0", event: "GUILD_CREATE" })).toBe(1)
    expect(valueOf(samples, "gateway_identifies_total", { shard: "0" })).toBe(1)
    expect(valueOf(samples, "gateway_resumes_total", { shard: "1" })).toBe(2)
    expect(valueOf(samples, "gateway_shard_reconnects_total", { shard: "1", reason: "op7" })).toBe(2)
    expect(valueOf(samples, "gateway_shard_reconnects_total", { shard: "1", reason: "zombie" })).toBe(1)
    expect(valueOf(samples, "gateway_heartbeat_latency_seconds_count", { shard: "0" })).toBe(2)
    expect(valueOf(samples, "gateway_heartbeat_latency_seconds_sum", { shard: "0" })).toBeCloseTo(3.042)
    expect(valueOf(samples, "gateway_heartbeat_latency_seconds_bucket", { shard: "0", le: "0.025" })).toBe(0)
    expect(valueOf(samples, "gateway_heartbeat_latency_seconds_bucket", { shard: "0", le: "0.05" })).toBe(1)
    expect(valueOf(samples, "gateway_heartbeat_latency_seconds_bucket", { shard: "0", le: "2.5" })).toBe(1)
    expect(valueOf(samples, "gateway_heartbeat_latency_seconds_bucket", { shard: "0", le: "5" })).toBe(2)
    expect(valueOf(samples, "gateway_heartbeat_latency_seconds_bucket", { shard: "0", le: "+Inf" })).toBe(2)
    expect(valueOf(samples, "gateway_events_published_total", { broker: "redis" })).toBe(514)
    expect(valueOf(samples, "gateway_publish_duration_seconds_count", { broker: "redis" })).toBe(2)
    expect(valueOf(samples, "gateway_publish_errors_total", { broker: "redis" })).toBe(1)
    expect(valueOf(samples, "gateway_shard_restarts_total", { shard: "1" })).toBe(1)
    expect(valueOf(samples, "gateway_shard_restarts_total", { shard: "0" })).toBe(0)
    expect(valueOf(samples, "gateway_commands_received_total")).toBe(4)
    expect(valueOf(samples, "gateway_commands_sent_total")).toBe(3)
    expect(valueOf(samples, "gateway_commands_forwarded_total")).toBe(1)
    expect(valueOf(samples, "gateway_commands_refused_total", { reason: "too_large" })).toBe(1)
    // Cells keep counting after their series was registered.
    shard0.add("MESSAGE_CREATE")
    expect(valueOf(scrape().samples, "gateway_events_received_total", { shard: "0", event: "MESSAGE_CREATE" })).toBe(6)
  })

  it("puts a value on a bucket bound into that bucket, and beyond the last bound into +Inf only", () => {
    const { stats, scrape } = setup()
    stats.heartbeatAcked(1, 50)
    stats.heartbeatAcked(1, 120_000)
    const { samples } = scrape()
    expect(valueOf(samples, "gateway_heartbeat_latency_seconds_bucket", { shard: "1", le: "0.025" })).toBe(0)
    expect(valueOf(samples, "gateway_heartbeat_latency_seconds_bucket", { shard: "1", le: "0.05" })).toBe(1)
    expect(valueOf(samples, "gateway_heartbeat_latency_seconds_bucket", { shard: "1", le: "60" })).toBe(1)
    expect(valueOf(samples, "gateway_heartbeat_latency_seconds_bucket", { shard: "1", le: "+Inf" })).toBe(2)
  })

  it("sets 1 for each shard's current state and 0 for the others, following changes and new shards", () => {
    const { shards, scrape } = setup()
    const ones = () => scrape().samples.filter((s) => s.name === "gateway_shard_state" && s.value === 1).map((s) => s.labels)
    expect(scrape().samples.filter((s) => s.name === "gateway_shard_state")).toHaveLength(2 * 5)
    expect(ones()).toEqual([{ shard: "0", state: "ready" }, { shard: "1", state: "resuming" }])
    shards.set(1, "ready")
    shards.set(2, "connecting")
    expect(ones()).toEqual([{ shard: "0", state: "ready" }, { shard: "1", state: "ready" }, { shard: "2", state: "connecting" }])
  })

  it("reads the session budget at each scrape, as a number or a function", () => {
    const stats = new GatewayCounters(isolated())
    expect(stats.sessionBudget()).toBeUndefined()
    stats.setSessionBudget(12)
    expect(stats.sessionBudget()).toBe(12)
    let left = 5
    stats.setSessionBudget(() => left)
    left = 4
    expect(stats.sessionBudget()).toBe(4)
    const { scrape } = setup({ sessionBudget: () => left })
    left = 3
    expect(valueOf(scrape().samples, "gateway_session_starts_remaining")).toBe(3)
  })

  it("escapes label values so any event name still parses", () => {
    const { stats, scrape } = setup()
    const odd = "WEIRD\"EVENT\\with\nnewline"
    stats.eventsOf(0).add(odd)
    expect(valueOf(scrape().samples, "gateway_events_received_total", { event: odd })).toBe(1)
  })

  it("includes any Effect Metric a module registers, updated the ordinary way", async () => {
    const { context, scrape } = setup()
    const widgets = Metric.counter("test_widgets_total", { description: "Widgets made.", incremental: true })
    await Effect.runPromise(Metric.update(Metric.withAttributes(widgets, { colour: "blue" }), 2).pipe(Effect.provideContext(context)))
    const { samples, types } = scrape()
    expect(types.get("test_widgets_total")).toBe("counter")
    expect(valueOf(samples, "test_widgets_total", { colour: "blue" })).toBe(2)
  })

  it("stops listing the observed series once removed", () => {
    const { context, observed } = setup()
    observed.remove()
    const text = renderMetrics(context)
    expect(text).not.toContain("gateway_outbox_events")
    expect(text).not.toContain("gateway_shard_state")
  })
})

describe("runtime metrics", () => {
  it("reports the process and Node.js families and gateway_build_info", () => {
    const context = isolated()
    const runtime = observeRuntime(context, "9.9.9")
    try {
      const { samples, types } = parseExposition(renderMetrics(context, [runtime.collect]))
      for (
        const [name, type] of [
          ["process_cpu_seconds_total", "counter"],
          ["process_cpu_user_seconds_total", "counter"],
          ["process_resident_memory_bytes", "gauge"],
          ["process_start_time_seconds", "gauge"],
          ["nodejs_heap_size_total_bytes", "gauge"],
          ["nodejs_heap_size_used_bytes", "gauge"],
          ["nodejs_external_memory_bytes", "gauge"],
          ["nodejs_heap_space_size_used_bytes", "gauge"],
          ["nodejs_eventloop_lag_seconds", "gauge"],
          ["nodejs_eventloop_lag_p99_seconds", "gauge"],
          ["nodejs_eventloop_lag_max_seconds", "gauge"],
          ["nodejs_gc_duration_seconds", "histogram"],
          ["nodejs_active_resources", "gauge"],
          ["nodejs_version_info", "gauge"],
          ["gateway_build_info", "gauge"]
        ] as const
      ) expect(types.get(name), name).toBe(type)
      expect(valueOf(samples, "process_cpu_seconds_total")).toBeGreaterThan(0)
      expect(valueOf(samples, "process_resident_memory_bytes")).toBeGreaterThan(1024 * 1024)
      const start = valueOf(samples, "process_start_time_seconds")
      expect(Math.abs(start - (Date.now() / 1000 - process.uptime()))).toBeLessThan(5)
      expect(valueOf(samples, "nodejs_heap_size_used_bytes")).toBeGreaterThan(0)
      expect(valueOf(samples, "nodejs_heap_size_used_bytes")).toBeLessThanOrEqual(valueOf(samples, "nodejs_heap_size_total_bytes"))
      expect(samples.some((s) => s.name === "nodejs_heap_space_size_used_bytes" && s.labels.space === "old_space")).toBe(true)
      const kinds = samples.filter((s) => s.name === "nodejs_gc_duration_seconds_count").map((s) => s.labels.kind).sort()
      expect(kinds).toEqual(["incremental", "major", "minor", "weakcb"])
      expect(samples.find((s) => s.name === "gateway_build_info")).toEqual({
        name: "gateway_build_info",
        labels: { version: "9.9.9", node: process.version },
        value: 1
      })
    } finally {
      runtime.remove()
    }
  })

  it("measures event-loop delay over the window since the previous scrape", async () => {
    const context = isolated()
    const runtime = observeRuntime(context)
    try {
      runtime.collect() // starts a fresh window
      await new Promise((resolve) => setTimeout(resolve, 30))
      const busyUntil = performance.now() + 120
      while (performance.now() < busyUntil) {
        // Block the loop: the monitor's next tick comes late by about this long.
      }
      await new Promise((resolve) => setTimeout(resolve, 30))
      const { samples } = parseExposition(renderMetrics(context, [runtime.collect]))
      expect(valueOf(samples, "nodejs_eventloop_lag_max_seconds")).toBeGreaterThanOrEqual(0.05)
      expect(valueOf(samples, "nodejs_eventloop_lag_p99_seconds")).toBeGreaterThan(0)
    } finally {
      runtime.remove()
    }
  })
})

describe("the test's exposition parser", () => {
  it("rejects what Prometheus would", () => {
    expect(() => parseExposition("x_total 1\n")).toThrow(/before its TYPE/)
    expect(() => parseExposition("# TYPE x_total counter\nx_total{a=\"b\nc\"} 1\n")).toThrow()
    expect(() => parseExposition("# TYPE x_total counter\nx_total{a=b} 1\n")).toThrow(/name\{labels\} value/)
    expect(() => parseExposition("# TYPE x_total counter\nx_total 1\nx_total 2\n")).toThrow(/repeated/)
    expect(() => parseExposition("# TYPE x gauge\nx one\n")).toThrow()
  })
})

describe("reconnect reason labels", () => {
  it.each([
    [Endings.reconnectRequested, "op7"],
    [Endings.invalidSession(true), "op9_resumable"],
    [Endings.invalidSession(false), "op9"],
    [Endings.zombie(41_250), "zombie"],
    [Endings.closed(4000, "test"), "close_4000"],
    [Endings.closed(4009, ""), "close_4009"],
    [Endings.closed(1006, ""), "dropped"],
    [Endings.connectFailed("ws://127.0.0.1:1/", "connect ECONNREFUSED 127.0.0.1:1"), "connect_error"],
    [Endings.helloTimeout(30_000), "hello_timeout"],
    [Endings.undecodable("compression", "corrupt compressed data: invalid block type"), "decode_error"],
    [Endings.undecodable("payload", "Discord sent a payload that is not JSON"), "bad_payload"],
    [Endings.badReady, "bad_payload"]
  ])("%o -> %s", (ending, label) => {
    expect(endingLabel(ending)).toBe(label)
  })
})
