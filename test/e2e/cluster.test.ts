// The broker, shard store, leases and identify limiter against a three-node Redis Cluster that the
// test starts itself: the same end-to-end checks as on a single Redis.
import { Cluster } from "ioredis"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type FakeDiscord, startFakeDiscord } from "../fake-discord/FakeDiscord.ts"
import { reaper, spawnGateway } from "../support/gateway.ts"
import { type RedisCluster, startRedisCluster } from "../support/redisCluster.ts"

const procs = reaper()
let cluster: RedisCluster
let fake: FakeDiscord
let client: Cluster
const SHARDS = 4
const token = "cluster-token"

beforeAll(async () => {
  cluster = await startRedisCluster()
  fake = await startFakeDiscord({ token, shardCount: SHARDS, maxConcurrency: 2 })
  client = new Cluster(cluster.ports.map((port) => ({ host: "127.0.0.1", port })))
}, 60_000)
afterAll(async () => {
  await procs.killAll()
  await client?.quit()
  await fake?.close()
  await cluster?.stop()
})

const readStream = async (name: string) => {
  const entries = await client.xrange(name, "-", "+")
  return entries.map(([, fields]) => {
    const f: Record<string, string> = {}
    for (let i = 0; i < fields.length; i += 2) f[fields[i]!] = fields[i + 1]!
    return { data: JSON.parse(f.data!) as { marker: string }, shard: Number(f.shard), seq: Number(f.seq) }
  })
}

describe("against a Redis Cluster", () => {
  it("publishes exactly once with shard and seq, paces identifies through the cluster, leases shards, and resumes after a restart", async () => {
    const env = {
      DISCORD_TOKEN: token,
      DISCORD_EVENTS: "MESSAGE_CREATE",
      DISCORD_API_PROTOCOL: "http",
      DISCORD_API_HOST: fake.host,
      BROKER_TYPE: "redis",
      SHARD_STORE_TYPE: "redis",
      SHARD_STORE_PREFIX: "cl:",
      CHECKPOINT_INTERVAL: "200ms",
      REDIS_URL: cluster.urls
    }
    const first = procs.track(spawnGateway({ env }))
    await fake.waitFor(() => fake.readyShards().length === SHARDS, 30_000, "ready")
    expect(fake.violations).toEqual([])
    // The limiter's counters and the leases live in the cluster.
    const leases = await Promise.all(Array.from({ length: SHARDS }, (_, s) => client.get(`cl:lease:${s}`)))
    expect(leases.every((owner) => typeof owner === "string" && owner.length > 0)).toBe(true)

    const sent: Array<string> = []
    for (let i = 0; i < 200; i++) {
      const marker = `c-${i}`
      fake.dispatch(i % SHARDS, "MESSAGE_CREATE", { marker })
      sent.push(marker)
    }
    const deadline = Date.now() + 20_000
    let entries = await readStream("MESSAGE_CREATE")
    while (entries.length < sent.length && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100))
      entries = await readStream("MESSAGE_CREATE")
    }
    expect(entries.map((e) => e.data.marker).sort()).toEqual([...sent].sort())
    for (const e of entries) {
      expect(e.shard).toBe(Number(e.data.marker.slice(2)) % SHARDS)
      expect(e.seq).toBeGreaterThan(0)
    }

    expect((await first.kill("SIGTERM")).code).toBe(0)
    for (let i = 0; i < 20; i++) fake.dispatch(i % SHARDS, "MESSAGE_CREATE", { marker: `down-${i}` })
    const identifies = fake.counters.identifies
    const second = procs.track(spawnGateway({ env }))
    const deadline2 = Date.now() + 20_000
    while ((await readStream("MESSAGE_CREATE")).length < 220 && Date.now() < deadline2) await new Promise((r) => setTimeout(r, 100))
    const all = (await readStream("MESSAGE_CREATE")).map((e) => e.data.marker)
    expect(all.filter((m) => m.startsWith("down-")).sort()).toEqual(Array.from({ length: 20 }, (_, i) => `down-${i}`).sort())
    expect(all.length).toBe(220)
    expect(fake.counters.identifies).toBe(identifies)
    expect((await second.kill("SIGTERM")).code).toBe(0)
  }, 120_000)
})
