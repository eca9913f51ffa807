// A flood of 100,000 commands through the Redis SEND stream, all for one shard, against the built
// daemon, its own redis-server and the fake Discord. Discord's pacing (about 115 commands per 60 s)
// makes delivering them all take hours, so the test lets the gateway work for a bounded time, stops
// it, and then accounts for every command: written to the fake Discord, refused and counted, or
// still waiting in Redis (in the shard's inbox, or in SEND unread or pending). None may vanish, and
// the gateway must not claim that "another gateway process" took commands over when none exists.
import { Redis } from "ioredis"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { inboxStream, SEND_STREAM } from "../../src/Commands/RedisNames.ts"
import { type FakeDiscord, startFakeDiscord } from "../fake-discord/FakeDiscord.ts"
import { freePort, REDIS_URL, serviceAvailable, startRedisServer, unique } from "../brokers/support.ts"
import { reaper, spawnGateway } from "../support/gateway.ts"
import { finalCounters, gatewayEnv, logLines, markerOf, presenceD, sleep } from "./support.ts"

// The service check only decides skip/fail; the test runs a redis-server of its own.
const available = await serviceAvailable("Redis", REDIS_URL)

const COUNT = 100_000
/** How long the gateway works on the flood before it is stopped and the books are checked. */
const WORK_MS = 20_000

const procs = reaper()
let fake: FakeDiscord
let server: Awaited<ReturnType<typeof startRedisServer>>
let redis: Redis

beforeAll(async () => {
  if (!available) return
  fake = await startFakeDiscord({ token: "flood-token", shardCount: 1 })
  server = await startRedisServer(await freePort())
  redis = new Redis(server.url, { maxRetriesPerRequest: 1 })
})
afterAll(async () => {
  await procs.killAll()
  if (!available) return
  redis.disconnect()
  await server.kill()
  await fake.close()
})

const markerFromData = (data: string): string | undefined => {
  try {
    return markerOf(JSON.parse(data) as { op: number; d: unknown })
  } catch {
    return undefined
  }
}

/** Every entry of a stream, read in pages. */
const allEntries = async (stream: string): Promise<Array<[string, Array<string>]>> => {
  const out: Array<[string, Array<string>]> = []
  let start = "-"
  for (;;) {
    const page = await redis.xrange(stream, start, "+", "COUNT", 10_000)
    out.push(...page)
    if (page.length < 10_000) return out
    start = `(${page.at(-1)![0]}`
  }
}

const compareIds = (a: string, b: string): number => {
  const [am, as] = a.split("-").map(BigInt) as [bigint, bigint]
  const [bm, bs] = b.split("-").map(BigInt) as [bigint, bigint]
  return am === bm ? (as < bs ? -1 : as > bs ? 1 : 0) : am < bm ? -1 : 1
}

describe.skipIf(!available)("a flood of commands for one shard through Redis", () => {
  it(`accounts for each of ${COUNT} commands: sent, refused and counted, or still waiting in Redis`, async () => {
    const group = unique("flood")
    const prefix = unique("fl")
    const gateway = procs.track(spawnGateway({
      env: gatewayEnv(fake, 1, { BROKER_TYPE: "redis", REDIS_URL: server.url, BROKER_GROUP: group, SHARD_STORE_PREFIX: `${group}:` })
    }))
    await fake.waitFor(() => fake.readyShards().length === 1, 30_000, "shard ready")
    await gateway.waitForLog(/reading commands from Redis stream SEND/)

    // The flood, as fast as Redis takes it.
    for (let from = 0; from < COUNT; from += 5_000) {
      const pipeline = redis.pipeline()
      for (let i = from; i < Math.min(COUNT, from + 5_000); i++) {
        pipeline.xadd(SEND_STREAM, "*", "data", JSON.stringify({ op: 3, shard_id: 0, d: presenceD(`${prefix}-${i}`) }))
      }
      await pipeline.exec()
    }
    await sleep(WORK_MS)
    expect((await gateway.kill("SIGTERM")).code).toBe(0)

    // Sent: what the fake Discord received.
    const sentList = fake.received.map(markerOf).filter((m): m is string => m?.startsWith(`${prefix}-`) === true)
    const sent = new Set(sentList)
    // Waiting in the shard's inbox: every entry there is unread or pending (sent ones are deleted).
    const inbox = new Set((await allEntries(inboxStream(group, 0))).map(([, f]) => markerFromData(f[1]!)).filter((m) => m !== undefined))
    // Waiting in SEND: entries the group has not read yet, or read and not acknowledged.
    const groups = (await redis.xinfo("GROUPS", SEND_STREAM)) as Array<Array<unknown>>
    const info = groups.map((row) => {
      const map = new Map<string, unknown>()
      for (let i = 0; i + 1 < row.length; i += 2) map.set(String(row[i]), row[i + 1])
      return map
    }).find((m) => m.get("name") === group)!
    const lastDelivered = String(info.get("last-delivered-id"))
    const pendingIds = new Set(
      ((await redis.xpending(SEND_STREAM, group, "-", "+", COUNT)) as Array<[string, string, number, number]>).map(([id]) => id)
    )
    const sendEntries = await allEntries(SEND_STREAM)
    const sendWaiting = new Set(
      sendEntries.filter(([id]) => pendingIds.has(id) || compareIds(id, lastDelivered) > 0).map(([, f]) => markerFromData(f[1]!)).filter((m) => m !== undefined)
    )
    const counters = finalCounters(gateway)
    const refused = counters.refusedTotal

    const accounted = new Set([...sent, ...inbox, ...sendWaiting])
    const missing = COUNT - accounted.size - refused
    const takenOverWarnings = logLines(gateway).filter((l) => /taken over|another gateway process/.test(l.message))
    console.log(
      `flood: ${COUNT} commands; after ${WORK_MS / 1000}s: ${sent.size} sent (${sentList.length} writes), ${inbox.size} in the inbox, ` +
        `${sendWaiting.size} waiting in SEND (${pendingIds.size} pending), ${refused} refused, ${missing} unaccounted; ` +
        `${takenOverWarnings.length} "taken over" warning(s); SEND length ${sendEntries.length}`
    )
    expect(missing).toBe(0)
    // Each written once, and none both written and still waiting (it would be written twice).
    expect(sentList.length).toBe(sent.size)
    expect([...sent].filter((m) => inbox.has(m) || sendWaiting.has(m))).toEqual([])
    expect(takenOverWarnings).toEqual([])
    expect(fake.counters.rateLimitCloses).toBe(0)
    // Some progress was made: the flood is paced, not stuck.
    expect(sent.size).toBeGreaterThan(0)
  }, 120_000)
})
