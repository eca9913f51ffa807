// Broker outages in the middle of a load: events wait in the bounded buffer, the shards stop
// reading when it is full, and everything is delivered in order per shard once the broker is back.
import * as amqp from "amqplib"
import { Redis } from "ioredis"
import { afterEach, describe, expect, it } from "vitest"
import { type FakeDiscord, startFakeDiscord } from "../fake-discord/FakeDiscord.ts"
import { freePort, startTcpProxy } from "../brokers/support.ts"
import { reaper, spawnGateway } from "../support/gateway.ts"
import { sampleOutboxPeak } from "../support/outboxPeak.ts"
import { startOwnRedis } from "../support/redisServer.ts"
import { AMQP_URL, amqpAvailable, redisAvailable } from "../support/services.ts"

const procs = reaper()
const cleanups: Array<() => Promise<void>> = []
afterEach(async () => {
  await procs.killAll()
  for (const c of cleanups.splice(0).reverse()) await c()
})

const SHARDS = 2
const TOTAL = 1_500
const BUFFER = 100

/**
 * A body of its own for each event, of varying size: the gateway reuses the memory of delivered
 * events, so a delivery must carry exactly what was sent, byte for byte, through the outage too.
 */
const bodyOf = (j: number) => `${j}-${"é€x".repeat(j % 200)}`

/** What the test needs of one delivered event's JSON. */
const entryOf = (json: string, shard: number, seq: number) => {
  const d = JSON.parse(json) as { marker: string; body: string }
  return { marker: d.marker, intact: d.body === bodyOf(Number(d.marker.slice(2))), shard, seq }
}
type Entry = ReturnType<typeof entryOf>

/** Dispatches TOTAL marked events over the shards at a steady pace, calling `midway` halfway. */
const load = async (fake: FakeDiscord, midway: () => Promise<void>) => {
  const perTick = 30
  for (let i = 0; i < TOTAL; i += perTick) {
    for (let j = i; j < Math.min(TOTAL, i + perTick); j++) fake.dispatch(j % SHARDS, "MESSAGE_CREATE", { marker: `m-${j}`, body: bodyOf(j) })
    if (i <= TOTAL / 2 && i + perTick > TOTAL / 2) await midway()
    await new Promise((r) => setTimeout(r, 15))
  }
}

/** Checks a delivery: every marker present, every body intact, and per shard the first copies in increasing seq order. */
const checkDelivery = (entries: Array<Entry>) => {
  expect(new Set(entries.map((e) => e.marker)).size).toBe(TOTAL)
  expect(entries.filter((e) => !e.intact).map((e) => e.marker)).toEqual([])
  for (let shard = 0; shard < SHARDS; shard++) {
    const seen = new Set<number>()
    const firsts = entries.filter((e) => e.shard === shard && !seen.has(e.seq) && seen.add(e.seq))
    for (let i = 1; i < firsts.length; i++) expect(firsts[i]!.seq).toBeGreaterThan(firsts[i - 1]!.seq)
  }
  return entries.length - TOTAL
}

describe.skipIf(!redisAvailable)("Redis restarted mid-load", () => {
  it("loses nothing, keeps order per shard, and holds at most the configured buffer", async () => {
    const redis = await startOwnRedis()
    cleanups.push(redis.kill)
    const fake = await startFakeDiscord({ token: "outage-token", shardCount: SHARDS, maxConcurrency: SHARDS })
    cleanups.push(() => fake.close())
    const metricsPort = await freePort()
    const gateway = procs.track(spawnGateway({
      env: {
        DISCORD_TOKEN: "outage-token",
        DISCORD_EVENTS: "MESSAGE_CREATE",
        DISCORD_API_PROTOCOL: "http",
        DISCORD_API_HOST: fake.host,
        BROKER_TYPE: "redis",
        REDIS_URL: redis.url,
        BROKER_BUFFER_SIZE: String(BUFFER),
        PROMETHEUS_ADDRESS: `127.0.0.1:${metricsPort}`
      }
    }))
    await fake.waitFor(() => fake.readyShards().length === SHARDS, 20_000, "ready")

    const sampler = sampleOutboxPeak(metricsPort, 20)
    await load(fake, async () => {
      await redis.kill()
      await new Promise((r) => setTimeout(r, 1_500))
      await redis.start()
    })
    const reader = new Redis({ port: redis.port })
    cleanups.push(async () => void reader.disconnect())
    let entries: Array<Entry> = []
    const deadline = Date.now() + 30_000
    while (Date.now() < deadline) {
      const raw = await reader.xrange("MESSAGE_CREATE", "-", "+")
      entries = raw.map(([, f]) => entryOf(f[1]!, Number(f[3]), Number(f[5])))
      if (new Set(entries.map((e) => e.marker)).size >= TOTAL) break
      await new Promise((r) => setTimeout(r, 200))
    }
    const peak = await sampler.stop()
    const duplicates = checkDelivery(entries)
    console.log(`Redis restart mid-load: ${TOTAL} events delivered, ${duplicates} duplicate(s), outbox peak ${peak} (buffer ${BUFFER})`)
    // Strict: what a paused socket had already read waits in its shard, not in the outbox.
    expect(peak).toBeGreaterThan(0)
    expect(peak).toBeLessThanOrEqual(BUFFER)
    expect(gateway.stderr()).toMatch(/holding events in memory/)
    expect(gateway.stderr()).toMatch(/publishing to the redis broker works again after/)
    expect((await gateway.kill()).code).toBe(0)
  }, 120_000)
})

describe.skipIf(!amqpAvailable)("RabbitMQ cut off mid-load", () => {
  it("loses nothing and keeps order per shard once the connection returns", async () => {
    const proxy = await startTcpProxy({ host: "127.0.0.1", port: 5672 })
    cleanups.push(() => proxy.close())
    const group = `outage_${Date.now()}`
    const fake = await startFakeDiscord({ token: "outage-token", shardCount: SHARDS, maxConcurrency: SHARDS })
    cleanups.push(() => fake.close())
    const url = new URL(AMQP_URL)
    url.host = `127.0.0.1:${proxy.port}`
    const gateway = procs.track(spawnGateway({
      env: {
        DISCORD_TOKEN: "outage-token",
        DISCORD_EVENTS: "MESSAGE_CREATE",
        DISCORD_API_PROTOCOL: "http",
        DISCORD_API_HOST: fake.host,
        BROKER_TYPE: "amqp",
        BROKER_GROUP: group,
        AMQP_URL: url.toString(),
        BROKER_BUFFER_SIZE: String(BUFFER)
      }
    }))
    await fake.waitFor(() => fake.readyShards().length === SHARDS, 20_000, "ready")
    const connection = await amqp.connect(AMQP_URL)
    const channel = await connection.createChannel()
    cleanups.push(async () => {
      await channel.deleteQueue(`${group}:MESSAGE_CREATE`).catch(() => undefined)
      await channel.deleteExchange(group).catch(() => undefined)
      await connection.close().catch(() => undefined)
    })
    await load(fake, async () => {
      await proxy.cut()
      await new Promise((r) => setTimeout(r, 1_500))
      await proxy.restore()
    })
    const entries: Array<Entry> = []
    await channel.consume(`${group}:MESSAGE_CREATE`, (msg) => {
      if (msg === null) return
      const headers = msg.properties.headers as { shard: number; seq: number }
      entries.push(entryOf(msg.content.toString(), headers.shard, headers.seq))
    }, { noAck: true })
    const deadline = Date.now() + 40_000
    while (new Set(entries.map((e) => e.marker)).size < TOTAL && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200))
    const duplicates = checkDelivery(entries)
    console.log(`RabbitMQ cut mid-load: ${TOTAL} events delivered, ${duplicates} duplicate(s)`)
    expect((await gateway.kill()).code).toBe(0)
  }, 120_000)
})
