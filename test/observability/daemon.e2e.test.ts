// The built daemon's metrics and health endpoints against the fake Discord: every metric moves
// when what it counts happens, /readyz follows the shards and the broker, and a taken port stops
// the start with the address named.
import { createServer } from "node:net"
import { Redis } from "ioredis"
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest"
import { type FakeDiscord, startFakeDiscord } from "../fake-discord/FakeDiscord.ts"
import { type GatewayProcess, reaper, spawnGateway } from "../support/gateway.ts"
import { REDIS_URL, redisAvailable } from "../support/services.ts"
import { valueOf } from "./exposition.ts"
import { eventually, freePort, metricsBase, type PrivateRedis, privateRedis, probe, redisServerInstalled, scrape } from "./support.ts"

const procs = reaper()
afterEach(() => procs.killAll())

const TOKEN = "observability-token"
// A made-up event name: its Redis stream belongs to this test alone.
const EVENT = `METRICS_E2E_${process.pid}`
const unique = `obs-${process.pid}-${Date.now()}`

const daemonEnv = (fake: FakeDiscord, extra: Record<string, string>) => ({
  DISCORD_TOKEN: TOKEN,
  DISCORD_EVENTS: EVENT,
  DISCORD_API_PROTOCOL: "http",
  DISCORD_API_HOST: fake.host,
  PROMETHEUS_ADDRESS: "127.0.0.1:0",
  BROKER_GROUP: unique,
  SHARD_STORE_PREFIX: `${unique}:`,
  ...extra
})

const metric = async (base: string, name: string, labels: Record<string, string> = {}) =>
  valueOf((await scrape(base)).samples, name, labels)

/** Waits until a metric reaches at least `atLeast`. */
const metricReaches = (base: string, name: string, labels: Record<string, string>, atLeast: number, timeoutMs = 20_000) =>
  eventually(async () => (await metric(base, name, labels)) >= atLeast, timeoutMs, `${name}${JSON.stringify(labels)} >= ${atLeast}`)

describe.skipIf(!redisAvailable)("metrics under load (redis broker)", () => {
  let fake: FakeDiscord
  beforeAll(async () => {
    fake = await startFakeDiscord({
      token: TOKEN,
      shardCount: 2,
      maxConcurrency: 2,
      heartbeatIntervalMs: 1_000,
      identifyIntervalMs: 2_000,
      sessionStartLimit: { total: 1000, remaining: 900 }
    })
  })
  afterAll(async () => {
    await fake?.close()
    const redis = new Redis(REDIS_URL)
    const keys = [...await redis.keys(`${unique}*`), ...await redis.keys(`*${unique}*`)]
    await redis.del(EVENT, ...new Set(keys))
    await redis.quit()
  })

  it("every metric moves when what it counts happens", { timeout: 120_000 }, async () => {
    const g: GatewayProcess = procs.track(spawnGateway({
      env: daemonEnv(fake, { BROKER_TYPE: "redis", REDIS_URL, LOG_LEVEL: "debug" })
    }))
    const base = await metricsBase(g)
    await fake.waitFor(() => fake.readyShards().length === 2, 20_000, "2 shards ready")
    await eventually(async () => (await probe(base, "/readyz")).status === 200, 10_000, "/readyz 200")

    const start = await scrape(base)
    for (const shard of ["0", "1"]) {
      expect(valueOf(start.samples, "gateway_identifies_total", { shard })).toBe(1)
      expect(valueOf(start.samples, "gateway_resumes_total", { shard })).toBe(0)
      expect(valueOf(start.samples, "gateway_shard_state", { shard, state: "ready" })).toBe(1)
      expect(valueOf(start.samples, "gateway_events_received_total", { shard, event: "READY" })).toBe(1)
    }
    expect(valueOf(start.samples, "gateway_broker_connected", { broker: "redis" })).toBe(1)
    expect(valueOf(start.samples, "gateway_outbox_capacity")).toBe(10_000)
    const budget = valueOf(start.samples, "gateway_session_starts_remaining")
    expect(budget).toBeLessThanOrEqual(900)
    expect(budget).toBeGreaterThanOrEqual(890)

    // Load: forwarded events on both shards, plus one that is read and counted but not forwarded.
    const published0 = valueOf(start.samples, "gateway_events_published_total", { broker: "redis" })
    for (let i = 0; i < 300; i++) fake.dispatch(0, EVENT, { i })
    for (let i = 0; i < 100; i++) fake.dispatch(1, EVENT, { i })
    for (let i = 0; i < 50; i++) fake.dispatch(1, "TYPING_START", { i })
    await metricReaches(base, "gateway_events_published_total", { broker: "redis" }, published0 + 400)
    const loaded = await scrape(base)
    expect(valueOf(loaded.samples, "gateway_events_received_total", { shard: "0", event: EVENT })).toBe(300)
    expect(valueOf(loaded.samples, "gateway_events_received_total", { shard: "1", event: EVENT })).toBe(100)
    expect(valueOf(loaded.samples, "gateway_events_received_total", { shard: "1", event: "TYPING_START" })).toBe(50)
    expect(valueOf(loaded.samples, "gateway_publish_duration_seconds_count", { broker: "redis" })).toBeGreaterThan(0)
    expect(valueOf(loaded.samples, "gateway_publish_duration_seconds_bucket", { broker: "redis", le: "+Inf" }))
      .toBe(valueOf(loaded.samples, "gateway_publish_duration_seconds_count", { broker: "redis" }))
    expect(valueOf(loaded.samples, "gateway_outbox_events")).toBe(0)
    for (const shard of ["0", "1"]) await metricReaches(base, "gateway_heartbeat_latency_seconds_count", { shard }, 1)

    // Commands on stdin: one sent to every shard, one refused.
    const commands0 = await scrape(base)
    g.child.stdin!.write(`${JSON.stringify({ op: 3, d: { since: null, activities: [], status: "idle", afk: false } })}\n`)
    g.child.stdin!.write("this is not a command\n")
    await metricReaches(base, "gateway_commands_sent_total", {}, valueOf(commands0.samples, "gateway_commands_sent_total") + 1)
    await metricReaches(base, "gateway_commands_refused_total", { reason: "malformed" }, valueOf(commands0.samples, "gateway_commands_refused_total", { reason: "malformed" }) + 1)
    expect(await metric(base, "gateway_commands_received_total")).toBeGreaterThan(valueOf(commands0.samples, "gateway_commands_received_total"))

    // Each way a connection ends is counted under its own short reason, and leads to a resume or identify.
    const disruptions: Array<{ shard: number; reason: string; run: () => void; then: "resume" | "identify" }> = [
      { shard: 1, reason: "op7", run: () => void fake.sendReconnect(1), then: "resume" },
      { shard: 0, reason: "close_4000", run: () => void fake.closeShard(0, 4000, "test"), then: "resume" },
      { shard: 1, reason: "dropped", run: () => void fake.dropShard(1), then: "resume" },
      { shard: 0, reason: "op9", run: () => void fake.invalidateSession(0, false), then: "identify" },
      { shard: 1, reason: "zombie", run: () => void fake.setZombie(1, true), then: "resume" }
    ]
    for (const d of disruptions) {
      const shard = String(d.shard)
      const before = await scrape(base)
      const counter = d.then === "resume" ? "gateway_resumes_total" : "gateway_identifies_total"
      d.run()
      await metricReaches(base, "gateway_shard_reconnects_total", { shard, reason: d.reason }, 1, 30_000)
      await metricReaches(base, counter, { shard }, valueOf(before.samples, counter, { shard }) + 1, 30_000)
      await fake.waitFor(() => fake.readyShards().includes(d.shard), 30_000, `shard ${shard} ready again`)
      await eventually(async () => (await metric(base, "gateway_shard_state", { shard, state: "ready" })) === 1, 10_000, "state ready")
    }
    const after = await scrape(base)
    expect(valueOf(after.samples, "gateway_shard_reconnects_total", { reason: "other" })).toBe(0)
    expect(valueOf(after.samples, "gateway_session_starts_remaining")).toBeLessThanOrEqual(budget)
    expect(fake.violations).toEqual([])

    // Every line a shard logs names the shard, including those from the fibers it forks.
    const shardLines = g.stderr().split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as {
      message: unknown
      annotations: Record<string, unknown>
    }).filter((l) => /^(READY|RESUMED|sending (IDENTIFY|RESUME)|connection ended)/.test(String(l.message)))
    expect(shardLines.length).toBeGreaterThanOrEqual(12)
    for (const line of shardLines) expect(typeof line.annotations.shard, JSON.stringify(line)).toBe("number")

    expect((await g.kill("SIGTERM")).code).toBe(0)
  })
})

describe.skipIf(!redisServerInstalled)("/readyz", () => {
  let fake: FakeDiscord
  let redis: PrivateRedis
  beforeAll(async () => {
    redis = await privateRedis()
    await redis.start()
    // One identify at a time, 3 s apart: the second shard is READY well after the first.
    fake = await startFakeDiscord({ token: TOKEN, shardCount: 2, maxConcurrency: 1, identifyIntervalMs: 3_000 })
  })
  afterAll(async () => {
    await fake?.close()
    await redis?.stop()
  })

  it("is 503 until every shard is READY, and while the broker is away", { timeout: 90_000 }, async () => {
    const g = procs.track(spawnGateway({
      env: daemonEnv(fake, { BROKER_TYPE: "redis", REDIS_URL: `redis://127.0.0.1:${redis.port}`, LOG_LEVEL: "info" })
    }))
    const base = await metricsBase(g)
    const early = await probe(base, "/readyz")
    expect(early.status).toBe(503)
    // Redis and no shard ids: an automatic cluster of one, which may not have had its first look yet.
    expect(early.body).toMatch(/^(shards ready [01]\/2|joining the cluster \(no shards assigned yet\))\n$/)
    expect((await probe(base, "/healthz")).status).toBe(200)
    await eventually(async () => (await probe(base, "/readyz")).status === 200, 20_000, "/readyz 200")
    expect(fake.readyShards()).toEqual([0, 1])

    await redis.stop()
    const down = await eventually(async () => {
      const r = await probe(base, "/readyz")
      return r.status === 503 && r.body.includes("broker disconnected") ? r : false
    }, 15_000, "/readyz 503 broker disconnected")
    expect(down.body).toContain("broker disconnected")
    expect((await probe(base, "/healthz")).status).toBe(200)
    expect(await metric(base, "gateway_broker_connected", { broker: "redis" })).toBe(0)
    // Events read while the broker is away wait in the outbox.
    for (let i = 0; i < 20; i++) fake.dispatch(i % 2, EVENT, { i })
    await metricReaches(base, "gateway_outbox_events", {}, 20)
    await metricReaches(base, "gateway_publish_errors_total", { broker: "redis" }, 1)

    await redis.start()
    await eventually(async () => (await probe(base, "/readyz")).status === 200, 30_000, "/readyz 200 again")
    await eventually(async () => (await metric(base, "gateway_outbox_events")) === 0, 20_000, "outbox drained")
    expect(await metric(base, "gateway_events_published_total", { broker: "redis" })).toBeGreaterThanOrEqual(20)
    expect((await g.kill("SIGTERM")).code).toBe(0)
  })
})

describe("/metrics of the running daemon", () => {
  it("shows the process and runtime families, gateway_build_info and the gateway's own", { timeout: 60_000 }, async () => {
    const fake = await startFakeDiscord({ token: TOKEN, shardCount: 1 })
    try {
      const g = procs.track(spawnGateway({ env: { ...daemonEnv(fake, {}), LOG_LEVEL: "info" } }))
      const base = await metricsBase(g)
      await fake.waitFor(() => fake.readyShards().length === 1, 20_000, "ready")
      const { samples, text } = await eventually(async () => {
        const scraped = await scrape(base)
        return valueOf(scraped.samples, "gateway_shard_state", { shard: "0", state: "ready" }) === 1 ? scraped : false
      }, 10_000, "shard 0 ready in /metrics")
      const names = new Set(samples.map((s) => s.name))
      for (
        const name of [
          "process_cpu_seconds_total", "process_resident_memory_bytes", "process_start_time_seconds",
          "nodejs_heap_size_used_bytes", "nodejs_heap_size_total_bytes", "nodejs_eventloop_lag_seconds",
          "nodejs_eventloop_lag_p99_seconds", "nodejs_gc_duration_seconds_count", "gateway_build_info",
          "gateway_identifies_total", "gateway_outbox_events"
        ]
      ) expect(names.has(name), `${name} in\n${text}`).toBe(true)
      const build = samples.find((s) => s.name === "gateway_build_info")!
      expect(build.labels).toEqual({ version: "0.1.0", node: process.version })
      expect(valueOf(samples, "process_resident_memory_bytes")).toBeGreaterThan(10 * 1024 * 1024)
      // Started without V8 flags, the gateway keeps its young generation at its starting size
      // (V8 alone grows it to 32-64 MiB while the modules load, and keeps it).
      const youngGeneration = valueOf(samples, "nodejs_heap_space_size_total_bytes", { space: "new_space" })
      expect(youngGeneration).toBeGreaterThan(0)
      expect(youngGeneration).toBeLessThanOrEqual(8 * 1024 * 1024)
      expect(valueOf(samples, "gateway_identifies_total", { shard: "0" })).toBe(1)
      // The startup log names where the settings came from and the intents IDENTIFY asks for.
      expect(g.stderr()).toMatch(/configuration: environment only/)
      expect(g.stderr()).toMatch(/intents: GUILDS, GUILD_MODERATION/)
      expect((await g.kill("SIGTERM")).code).toBe(0)
    } finally {
      await fake.close()
    }
  })
})

describe("prometheus.address", () => {
  it("a port already in use stops the start with exit 1, naming the address", async () => {
    const port = await freePort()
    const holder = createServer()
    await new Promise<void>((resolve) => holder.listen(port, "127.0.0.1", resolve))
    const fake = await startFakeDiscord({ token: TOKEN })
    try {
      const g = procs.track(spawnGateway({ env: { ...daemonEnv(fake, {}), PROMETHEUS_ADDRESS: `127.0.0.1:${port}` } }))
      const { code } = await g.exited
      expect(code).toBe(1)
      const last = g.stderr().trim().split("\n").at(-1)!
      expect(last).toContain(`127.0.0.1:${port}`)
      expect(last).toContain("already in use")
      // Nothing was identified: the port is checked before any shard connects.
      expect(fake.identifies).toEqual([])
    } finally {
      holder.close()
      await fake.close()
    }
  })

  it("without an address nothing listens, and the daemon runs as before", async () => {
    const fake = await startFakeDiscord({ token: TOKEN })
    try {
      const env: Record<string, string> = { ...daemonEnv(fake, {}) }
      delete env.PROMETHEUS_ADDRESS
      const g = procs.track(spawnGateway({ env }))
      await fake.waitFor(() => fake.readyShards().length === 1, 20_000, "ready")
      expect(g.stderr()).not.toContain("serving metrics")
      expect((await g.kill("SIGTERM")).code).toBe(0)
    } finally {
      await fake.close()
    }
  })
})
