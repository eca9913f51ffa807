// The /metrics renderer: valid exposition text, each metric where an operator expects it, and
// label values escaped so no event name or reason can break a scrape.
import { describe, expect, it } from "vitest"
import { CommandCounters } from "../../src/Commands/CommandStats.ts"
import { escapeLabelValue, Exposition } from "../../src/Observability/Exposition.ts"
import { GatewayCounters, Histogram } from "../../src/Observability/GatewayStats.ts"
import { type MetricsSources, renderMetrics } from "../../src/Observability/MetricsText.ts"
import { endingLabel, Endings } from "../../src/Shard/Ending.ts"
import type { ShardState } from "../../src/Shard/ShardStatus.ts"
import { parseExposition, valueOf } from "./exposition.ts"

const sources = (over: Partial<MetricsSources> = {}): MetricsSources => ({
  stats: new GatewayCounters(),
  shards: new Map<number, ShardState>([[0, "ready"], [1, "resuming"]]),
  outbox: { size: 3, capacity: 10_000 },
  broker: { name: "redis", connected: true },
  commands: new CommandCounters(),
  sessionBudget: 997,
  ...over
})

describe("renderMetrics", () => {
  it("renders every family, even before anything happened, as valid exposition text", () => {
    const { samples, types } = parseExposition(renderMetrics(sources()))
    expect(Object.fromEntries(types)).toEqual({
      gateway_events_received_total: "counter",
      gateway_events_published_total: "counter",
      gateway_publish_errors_total: "counter",
      gateway_publish_duration_seconds: "histogram",
      gateway_broker_connected: "gauge",
      gateway_outbox_events: "gauge",
      gateway_outbox_capacity: "gauge",
      gateway_heartbeat_latency_seconds: "histogram",
      gateway_shard_state: "gauge",
      gateway_shard_reconnects_total: "counter",
      gateway_identifies_total: "counter",
      gateway_resumes_total: "counter",
      gateway_session_starts_remaining: "gauge",
      gateway_commands_received_total: "counter",
      gateway_commands_sent_total: "counter",
      gateway_commands_forwarded_total: "counter",
      gateway_commands_refused_total: "counter"
    })
    expect(valueOf(samples, "gateway_outbox_events")).toBe(3)
    expect(valueOf(samples, "gateway_session_starts_remaining")).toBe(997)
    expect(valueOf(samples, "gateway_broker_connected", { broker: "redis" })).toBe(1)
    expect(valueOf(samples, "gateway_identifies_total", { shard: "1" })).toBe(0)
    expect(valueOf(samples, "gateway_commands_refused_total", { reason: "malformed" })).toBe(0)
  })

  it("reports each counter with its labels", () => {
    const stats = new GatewayCounters()
    const commands = new CommandCounters()
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
    commands.received = 4
    commands.sent = 3
    commands.forwarded = 1
    commands.refuse("too_large")
    const { samples } = parseExposition(renderMetrics(sources({ stats, commands })))
    expect(valueOf(samples, "gateway_events_received_total", { shard: "0", event: "MESSAGE_CREATE" })).toBe(5)
    expect(valueOf(samples, "gateway_events_received_total", { event: "MESSAGE_CREATE" })).toBe(6)
    expect(valueOf(samples, "gateway_events_received_total", { shard: "0", event: "GUILD_CREATE" })).toBe(1)
    expect(valueOf(samples, "gateway_identifies_total", { shard: "0" })).toBe(1)
    expect(valueOf(samples, "gateway_resumes_total", { shard: "1" })).toBe(2)
    expect(valueOf(samples, "gateway_shard_reconnects_total", { shard: "1", reason: "op7" })).toBe(2)
    expect(valueOf(samples, "gateway_shard_reconnects_total", { shard: "1", reason: "zombie" })).toBe(1)
    expect(valueOf(samples, "gateway_heartbeat_latency_seconds_count", { shard: "0" })).toBe(2)
    expect(valueOf(samples, "gateway_heartbeat_latency_seconds_sum", { shard: "0" })).toBeCloseTo(3.042)
    expect(valueOf(samples, "gateway_heartbeat_latency_seconds_bucket", { shard: "0", le: "0.05" })).toBe(1)
    expect(valueOf(samples, "gateway_heartbeat_latency_seconds_bucket", { shard: "0", le: "5" })).toBe(2)
    expect(valueOf(samples, "gateway_events_published_total", { broker: "redis" })).toBe(514)
    expect(valueOf(samples, "gateway_publish_duration_seconds_count", { broker: "redis" })).toBe(2)
    expect(valueOf(samples, "gateway_publish_errors_total", { broker: "redis" })).toBe(1)
    expect(valueOf(samples, "gateway_commands_received_total")).toBe(4)
    expect(valueOf(samples, "gateway_commands_sent_total")).toBe(3)
    expect(valueOf(samples, "gateway_commands_forwarded_total")).toBe(1)
    expect(valueOf(samples, "gateway_commands_refused_total", { reason: "too_large" })).toBe(1)
  })

  it("sets 1 for each shard's current state and 0 for the others", () => {
    const { samples } = parseExposition(renderMetrics(sources()))
    const states = samples.filter((s) => s.name === "gateway_shard_state")
    expect(states).toHaveLength(2 * 5)
    expect(states.filter((s) => s.value === 1).map((s) => s.labels)).toEqual([
      { shard: "0", state: "ready" },
      { shard: "1", state: "resuming" }
    ])
  })

  it("reads a session budget set later, as a number or a function", () => {
    const stats = new GatewayCounters()
    expect(stats.sessionBudget()).toBeUndefined()
    stats.setSessionBudget(12)
    expect(valueOf(parseExposition(renderMetrics(sources({ stats, sessionBudget: stats.sessionBudget()! }))).samples, "gateway_session_starts_remaining")).toBe(12)
    let left = 5
    stats.setSessionBudget(() => left)
    left = 4
    expect(stats.sessionBudget()).toBe(4)
  })

  it("escapes label values so any event name still parses", () => {
    const stats = new GatewayCounters()
    const odd = "WEIRD\"EVENT\\with\nnewline"
    stats.eventsOf(0).add(odd)
    const text = renderMetrics(sources({ stats }))
    const { samples } = parseExposition(text)
    expect(valueOf(samples, "gateway_events_received_total", { event: odd })).toBe(1)
    expect(escapeLabelValue(odd)).toBe("WEIRD\\\"EVENT\\\\with\\nnewline")
  })
})

describe("Histogram and Exposition", () => {
  it("puts a value on a bound into that bound's bucket, and beyond the last into +Inf only", () => {
    const h = new Histogram([1, 2])
    h.observe(1)
    h.observe(1.5)
    h.observe(99)
    const text = new Exposition().family("x_seconds", "histogram", "h").histogram("x_seconds", { a: "b" }, h).text()
    expect(text).toBe([
      "# HELP x_seconds h",
      "# TYPE x_seconds histogram",
      "x_seconds_bucket{a=\"b\",le=\"1\"} 1",
      "x_seconds_bucket{a=\"b\",le=\"2\"} 2",
      "x_seconds_bucket{a=\"b\",le=\"+Inf\"} 3",
      "x_seconds_sum{a=\"b\"} 101.5",
      "x_seconds_count{a=\"b\"} 3",
      ""
    ].join("\n"))
    parseExposition(text)
  })

  it("the test parser rejects what Prometheus would", () => {
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
