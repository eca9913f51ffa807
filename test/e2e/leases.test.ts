// Leases are enforced with static shard ids (issue: split brain on a lost lease). A process that cannot renew its
// shards' leases (cut off from Redis, or frozen by SIGSTOP) stops running them before another
// process may take them over: the fake Discord never sees two live connections run one shard, and
// every marker dispatched reaches one process or the other.
import { randomBytes } from "node:crypto"
import { afterEach, describe, expect, it } from "vitest"
import { type FakeDiscord, startFakeDiscord } from "../fake-discord/FakeDiscord.ts"
import { startTcpProxy } from "../brokers/support.ts"
import { type GatewayProcess, reaper, spawnGateway } from "../support/gateway.ts"
import { REDIS_URL, redisAvailable } from "../support/services.ts"

const gateways = reaper()
let fake: FakeDiscord | undefined
afterEach(async () => {
  await gateways.killAll()
  await fake?.close()
  fake = undefined
})

const markersOf = (g: GatewayProcess) =>
  g.lines.flatMap((l) => {
    const e = JSON.parse(l) as { event: string; data: { m?: string } }
    return e.event === "MESSAGE_CREATE" && e.data.m !== undefined ? [e.data.m] : []
  })

const gatewayEnv = (fakeDiscord: FakeDiscord, redisUrl: string, prefix: string) => ({
  DISCORD_TOKEN: "lease-token",
  DISCORD_EVENTS: "MESSAGE_CREATE",
  DISCORD_API_PROTOCOL: "http",
  DISCORD_API_HOST: fakeDiscord.host,
  DISCORD_SHARD_COUNT: "2",
  // Static shard ids: both processes are configured for the same shards (a misconfiguration the
  // leases must contain). The automatic cluster's version of these cases is in elastic.test.ts.
  DISCORD_SHARD_IDS: "0-1",
  SHARD_STORE_TYPE: "redis",
  SHARD_STORE_PREFIX: prefix,
  REDIS_URL: redisUrl,
  LOG_LEVEL: "info"
})

/** Dispatches a marked event to each shard every 50 ms until stopped. */
const trickle = (f: FakeDiscord, tag: string) => {
  const sent: Array<{ m: string; at: number }> = []
  let n = 0
  const timer = setInterval(() => {
    for (const shard of [0, 1]) {
      const m = `${tag}-${shard}-${n}`
      // A shard with no session right now (between owners) still gets it: the fake buffers it for the resume.
      f.dispatch(shard, "MESSAGE_CREATE", { m })
      sent.push({ m, at: Date.now() })
    }
    n++
  }, 50)
  return { sent, stop: () => clearInterval(timer) }
}

describe.skipIf(!redisAvailable)("enforced leases", () => {
  it("a process cut off from Redis stops its shards before the new owner resumes them: no overlap, nothing lost", async () => {
    fake = await startFakeDiscord({ token: "lease-token", shardCount: 2, maxConcurrency: 2, heartbeatIntervalMs: 2_000 })
    const prefix = `lease-${randomBytes(3).toString("hex")}:`
    const proxy = await startTcpProxy({ host: "127.0.0.1", port: Number(new URL(REDIS_URL).port || 6379) })
    try {
      const a = gateways.track(spawnGateway({ env: gatewayEnv(fake, `redis://127.0.0.1:${proxy.port}`, prefix) }))
      await fake.waitFor(() => fake!.readyShards().length === 2, 20_000, "A runs both shards")
      const events = trickle(fake, "cut")
      await new Promise((r) => setTimeout(r, 1_000))
      await proxy.cut()
      const b = gateways.track(spawnGateway({ env: gatewayEnv(fake, REDIS_URL, prefix) }))
      await a.waitForLog(/could not renew the shard's lease in time|stopped reading and sending/, 20_000)
      await fake.waitFor(() => fake!.resumes.filter((r) => r.outcome === "resumed").length >= 2, 30_000, "B resumed both shards")
      await new Promise((r) => setTimeout(r, 1_500))
      events.stop()
      const all = events.sent.map((e) => e.m)
      await b.waitForLines(() => {
        const seen = new Set([...markersOf(a), ...markersOf(b)])
        return all.every((m) => seen.has(m))
      }, 20_000)
      expect(fake.overlaps).toEqual([])
      expect(fake.identifies.filter((i) => i.outcome === "ready").length).toBe(2)
      const delivered = [...markersOf(a), ...markersOf(b)]
      const duplicates = delivered.length - new Set(delivered).size
      // Bounded by what A had read since its last checkpoint before the cut (at most ~8 s of events).
      expect(duplicates).toBeLessThan(400)
      console.log(`leases/cut: ${all.length} markers, ${duplicates} duplicates, 0 overlaps`)
      // Back in touch with Redis, A finds its leases taken and stops with a clear error.
      await proxy.restore()
      const exit = await a.exited
      expect(exit.code).toBe(1)
      expect(a.stderr()).toMatch(/is run by another live gateway process/)
    } finally {
      await proxy.close()
    }
  }, 90_000)

  it("a process frozen (SIGSTOP) past its lease does nothing for its shards when it wakes: no overlap, no late publish", async () => {
    fake = await startFakeDiscord({ token: "lease-token", shardCount: 2, maxConcurrency: 2, heartbeatIntervalMs: 2_000 })
    const prefix = `lease-${randomBytes(3).toString("hex")}:`
    const a = gateways.track(spawnGateway({ env: gatewayEnv(fake, REDIS_URL, prefix) }))
    await fake.waitFor(() => fake!.readyShards().length === 2, 20_000, "A runs both shards")
    const events = trickle(fake, "stop")
    await new Promise((r) => setTimeout(r, 1_000))
    a.child.kill("SIGSTOP")
    const stoppedAt = Date.now()
    const b = gateways.track(spawnGateway({ env: gatewayEnv(fake, REDIS_URL, prefix) }))
    // A stopped heartbeating, so the fake (like Discord) timed its sessions out (4009): B identifies.
    await b.waitForLog(/shards ready 2\/2/, 30_000)
    // Frozen for twice the lease TTL in all.
    await new Promise((r) => setTimeout(r, Math.max(0, 20_000 - (Date.now() - stoppedAt))))
    const linesBeforeWake = a.lines.length
    a.child.kill("SIGCONT")
    await new Promise((r) => setTimeout(r, 3_000))
    events.stop()
    // What was dispatched once B ran the shards reached B (what went to A's timed-out sessions died with them).
    const bStarted = Date.now() - 3_000
    const late = events.sent.filter((e) => e.at > bStarted).map((e) => e.m)
    await b.waitForLines(() => {
      const seen = new Set(markersOf(b))
      return late.every((m) => seen.has(m))
    }, 20_000)
    expect(fake.overlaps).toEqual([])
    // Nothing A read after its wake-up was published: no line it printed after SIGCONT is news.
    const afterWake = a.lines.slice(linesBeforeWake).map((l) => (JSON.parse(l) as { data: { m?: string } }).data.m)
    const sentAfterStop = new Set(events.sent.filter((e) => e.at > stoppedAt).map((e) => e.m))
    expect(afterWake.filter((m) => m !== undefined && sentAfterStop.has(m))).toEqual([])
    const exit = await a.exited
    expect(exit.code).toBe(1)
    console.log(`leases/sigstop: ${events.sent.length} markers dispatched, A printed ${a.lines.length - linesBeforeWake} lines after waking, 0 overlaps`)
  }, 90_000)
})
