// Resharding without downtime, end to end: two processes of an automatic cluster run 4 shards
// through a Redis of the test's own (a server, then a three-node Redis Cluster); Discord (the fake)
// then recommends 8, or requires 8 (4011).
// Every event is a guild event carrying a unique marker, delivered by the fake to every session
// that owns the guild in either generation; the broker output (the MESSAGE_CREATE stream) is
// checked for every marker, duplicates are counted against the gateways' overlap metric.
import type { Cluster, Redis } from "ioredis"
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest"
import { freePort } from "../brokers/support.ts"
import { type FakeDiscord, type GuildDelivery, startFakeDiscord } from "../fake-discord/FakeDiscord.ts"
import { reaper, spawnGateway } from "../support/gateway.ts"
import { redisBackends, type TestRedis } from "../support/testRedis.ts"

const TOKEN = "reshard-token"
const PREFIX = "rs:"
const GUILDS = 64
const procs = reaper()

let backend: TestRedis
let client: Redis | Cluster

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const until = async (what: string, check: () => boolean | Promise<boolean>, timeoutMs = 60_000) => {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await check()) return
    await sleep(100)
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
}

const start = async (fake: FakeDiscord) => {
  const port = await freePort()
  const proc = procs.track(spawnGateway({
    env: {
      DISCORD_TOKEN: TOKEN,
      DISCORD_EVENTS: "MESSAGE_CREATE",
      DISCORD_API_PROTOCOL: "http",
      DISCORD_API_HOST: fake.host,
      DISCORD_SHARD_CHECK_INTERVAL: "1s",
      BROKER_TYPE: "redis",
      SHARD_STORE_TYPE: "redis",
      SHARD_STORE_PREFIX: PREFIX,
      CHECKPOINT_INTERVAL: "200ms",
      REDIS_URL: backend.url,
      PROMETHEUS_ADDRESS: `127.0.0.1:${port}`,
      LOG_LEVEL: "info"
    }
  }))
  return { proc, port }
}

/** Guild ids spread over every shard of either count: guild i lands on shard i % count. */
const guildId = (i: number) => (BigInt(i % GUILDS) << 22n).toString()

/** Guild-routed markers until stopped; what the fake did with each is kept. */
const load = (fake: FakeDiscord, perSecond = 100) => {
  const sent: Array<{ marker: string; at: number; deliveries: Array<GuildDelivery> }> = []
  let n = 0
  const timer = setInterval(() => {
    for (let i = 0; i < perSecond / 20; i++) {
      const marker = `m-${n}`
      const deliveries = fake.dispatchGuildAll(guildId(n), "MESSAGE_CREATE", { marker, guild_id: guildId(n) })
      sent.push({ marker, at: Date.now(), deliveries })
      n++
    }
  }, 50)
  return { sent, stop: () => clearInterval(timer) }
}

const published = async () => {
  const entries = await client.xrange("MESSAGE_CREATE", "-", "+")
  return entries.map(([, fields]) => (JSON.parse(fields[fields.indexOf("data") + 1]!) as { marker: string }).marker)
}

const delivery = async (markers: ReadonlyArray<string>, timeoutMs = 30_000) => {
  let got: Array<string> = []
  await until("every marker in the stream", async () => {
    got = await published()
    const seen = new Set(got)
    return markers.every((m) => seen.has(m))
  }, timeoutMs).catch(() => undefined)
  const seen = new Set(got)
  return { lost: markers.filter((m) => !seen.has(m)), duplicates: got.length - seen.size }
}

const metric = async (port: number, name: string) => {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text()
  return text.split("\n").filter((l) => l.startsWith(name)).reduce((sum, l) => sum + Number(l.split(" ").at(-1)), 0)
}

/** Until every shard of 8 is READY and no connection of the 4-shard generation is left. */
const switched = (fake: FakeDiscord) =>
  until("generation 1 running alone", () =>
    fake.readyShards(8).length === 8 && fake.sessions().every((s) => s.shardCount === 8 || !s.connected), 90_000)

const cluster = async (fake: FakeDiscord) => {
  const gateways = [await start(fake), await start(fake)]
  await until("4 shards READY", () => fake.readyShards(4).length === 4)
  // Settled (2 shards each, no handoff under way) before Discord changes its mind: a shard handed
  // off at the very moment of a 4011 loses what it had not read, as it would with Discord.
  await until("2 shards per process", async () => {
    const owners = await Promise.all([0, 1, 2, 3].map((s) => client.get(`${PREFIX}lease:${s}`)))
    return gateways.every((g) => owners.filter((o) => o?.includes(`:${g.proc.child.pid}:`)).length === 2) && fake.readyShards(4).length === 4
  })
  await until("both processes serving metrics", async () => {
    for (const g of gateways) if (await fetch(`http://127.0.0.1:${g.port}/metrics`).then(() => false, () => true)) return false
    return true
  })
  return gateways
}

const overlap = async (gateways: ReadonlyArray<{ port: number }>) => {
  let sum = 0
  for (const g of gateways) sum += await metric(g.port, "gateway_reshard_overlap_events_total")
  return sum
}

describe.each(redisBackends)("resharding without downtime, on $name", ({ start: startBackend }) => {
  beforeAll(async () => {
    backend = await startBackend()
    client = backend.client
  }, 60_000)
  afterAll(async () => {
    await procs.killAll()
    await backend?.stop()
  })
  afterEach(async () => {
    await procs.killAll()
    await backend.flush()
  })

  it("4 -> 8 on Discord's recommendation under load: nothing lost, duplicates counted and bounded, the old generation closed, identifies paced", async () => {
    const fake = await startFakeDiscord({ token: TOKEN, shardCount: 4, maxConcurrency: 4 })
    try {
      const gateways = await cluster(fake)
      const traffic = load(fake)
      await sleep(1_000)
      const triggeredAt = Date.now()
      fake.setShardCount(8)
      await switched(fake)
      const switchMs = Date.now() - triggeredAt
      await sleep(1_000)
      traffic.stop()

      const { lost, duplicates } = await delivery(traffic.sent.map((s) => s.marker))
      expect(lost).toEqual([])
      const counted = await overlap(gateways)
      expect(duplicates).toBeLessThanOrEqual(counted)
      expect(duplicates).toBeLessThan(traffic.sent.length / 2)
      expect(fake.violations).toEqual([])
      expect(fake.overlaps).toEqual([])
      for (let shard = 0; shard < 8; shard++) expect(fake.identifiesOf(shard, 8)).toBe(1)
      for (const g of gateways) expect(await metric(g.port, "gateway_reshard_generation")).toBe(1)
      for (const g of gateways) expect(await metric(g.port, "gateway_reshard_state")).toBe(0)
      for (const g of gateways) expect(g.proc.child.exitCode).toBe(null)
      console.log(
        `reshard 4 -> 8 (recommendation): trigger to switch ${switchMs} ms; ${traffic.sent.length} markers, ${duplicates} duplicate(s), ` +
          `${counted} counted as overlap; ${fake.identifies.length} identifies`
      )
    } finally {
      await fake.close()
    }
  }, 180_000)

  it("4 -> 8 on close code 4011 under load: every event Discord could still deliver arrives, the old generation closed, no process exits", async () => {
    const fake = await startFakeDiscord({ token: TOKEN, shardCount: 4, maxConcurrency: 4 })
    try {
      const gateways = await cluster(fake)
      const traffic = load(fake)
      await sleep(1_000)
      const requiredAt = Date.now()
      fake.requireShardCount(8)
      await switched(fake)
      await until("every process on generation 1", async () => {
        for (const g of gateways) if ((await metric(g.port, "gateway_reshard_generation")) !== 1) return false
        return true
      })
      const switchMs = Date.now() - requiredAt
      await sleep(1_000)
      traffic.stop()

      // Written only to 4-shard sessions after Discord closed them with 4011: nobody can receive those.
      const undeliverable = new Set(
        traffic.sent.filter((s) => s.at >= requiredAt && s.deliveries.length > 0 && s.deliveries.every((d) => d.shardCount === 4)).map((s) => s.marker)
      )
      const { lost, duplicates } = await delivery(traffic.sent.map((s) => s.marker).filter((m) => !undeliverable.has(m)))
      if (lost.length > 0) {
        const info = traffic.sent.filter((s) => lost.includes(s.marker)).map((s) => ({ marker: s.marker, dt: s.at - requiredAt, d: s.deliveries }))
        console.log("lost markers: ", JSON.stringify(info), fake.closes.filter((c) => c.code === 4011).map((c) => [c.shardId, c.at - requiredAt]))
        for (const g of gateways) console.log("lost markers: ", g.proc.stderr().split("\n").filter((l) => /WARN|ERROR|4011|shard=3|reshard/.test(l)).join("\n"))
      }
      expect(lost).toEqual([])
      expect(duplicates).toBeLessThanOrEqual(await overlap(gateways))
      expect(fake.violations).toEqual([])
      for (let shard = 0; shard < 8; shard++) expect(fake.identifiesOf(shard, 8)).toBe(1)
      for (const g of gateways) expect(await metric(g.port, "gateway_reshard_generation")).toBe(1)
      for (const g of gateways) expect(g.proc.child.exitCode).toBe(null)
      console.log(
        `reshard 4 -> 8 (4011): to switch ${switchMs} ms; ${traffic.sent.length} markers, ${undeliverable.size} written by Discord only to ` +
          `sessions it had closed, ${duplicates} duplicate(s); ${fake.identifies.length} identifies`
      )
    } finally {
      await fake.close()
    }
  }, 180_000)
})

