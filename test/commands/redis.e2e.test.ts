// Commands through Redis Streams, end to end: bots XADD to SEND, the built daemon(s) route them to
// the fake Discord. Uses its own Redis database so other tests' SEND entries never show up here.
import { encode } from "@msgpack/msgpack"
import { Redis } from "ioredis"
import { afterEach, beforeEach, describe, expect, it } from "vitest"
import { inboxStream, SEND_STREAM } from "../../src/Commands/RedisNames.ts"
import { type FakeDiscord, startFakeDiscord } from "../fake-discord/FakeDiscord.ts"
import { freePort, REDIS_URL, serviceAvailable, startRedisServer, unique } from "../brokers/support.ts"
import { reaper, spawnGateway } from "../support/gateway.ts"
import { arrivals, BIG_GUILD, finalCounters, gatewayEnv, guildOn, logLines, membersD, pollUntil, presenceD, redisDatabase, sleep } from "./support.ts"

const available = await serviceAvailable("Redis", REDIS_URL)
const DB_URL = redisDatabase(REDIS_URL, 12)

const procs = reaper()
let fake: FakeDiscord
let redis: Redis
let group: string
const added: Array<string> = []

beforeEach(async () => {
  fake = await startFakeDiscord({ token: "redis-e2e-token", shardCount: 4, maxConcurrency: 4 })
  group = unique("e2e_cmd")
  added.length = 0
  if (available) redis = new Redis(DB_URL, { maxRetriesPerRequest: 1 })
})
afterEach(async () => {
  await procs.killAll()
  await fake.close()
  if (!available) return
  // Only what this test created: its group on SEND, its SEND entries and its inboxes.
  await redis.xgroup("DESTROY", SEND_STREAM, group).catch(() => undefined)
  if (added.length > 0) await redis.xdel(SEND_STREAM, ...added)
  await redis.del(...[0, 1, 2, 3].map((s) => inboxStream(group, s)))
  await redis.quit()
})

const add = async (data: string | Uint8Array) => {
  const id = await redis.xadd(SEND_STREAM, "*", "data", typeof data === "string" ? data : Buffer.from(data))
  added.push(id!)
}
const json = (value: unknown) => JSON.stringify(value)
const env = (extra: Record<string, string> = {}) =>
  // The group as key prefix too, so this test's shard leases are its own.
  gatewayEnv(fake, 4, { BROKER_TYPE: "redis", REDIS_URL: DB_URL, BROKER_GROUP: group, SHARD_STORE_PREFIX: `${group}:`, ...extra })
const pending = async (stream: string) => Number(((await redis.xpending(stream, group)) as Array<unknown>)[0])

describe.skipIf(!available)("commands through Redis", () => {
  it("routes SEND entries (JSON and MessagePack) by shard_id, guild_id and broadcast, exactly once, and acks every entry", async () => {
    const gateway = procs.track(spawnGateway({ env: env() }))
    await fake.waitFor(() => fake.readyShards().length === 4, 30_000, "4 shards ready")
    await gateway.waitForLog(/reading commands from Redis stream SEND/)
    await add(json({ op: 8, shard_id: 2, d: membersD(guildOn(0, 4), "r1-shard") }))
    await add(json({ op: 8, d: membersD(BIG_GUILD, "r1-big") })) // (big >> 22) % 4 = 3
    await add(json({ op: 8, guild_id: guildOn(1, 4, 3), d: membersD(guildOn(1, 4, 3), "r1-top") }))
    await add(json({ op: 3, d: presenceD("r1-all") }))
    await add(encode({ op: 8, d: { guild_id: BigInt(BIG_GUILD), query: "", limit: 0, nonce: "r1-pack" } }, { useBigInt64: true }))
    await add("{broken")
    await add(json({ op: 2, d: { token: "x" } }))
    await add(json({ op: 3, shard_id: 9, d: presenceD("r1-bad-shard") }))
    await add(json({ op: 3, shard_id: 0, d: { ...presenceD("r1-big-payload"), pad: "y".repeat(4100) } }))
    const expected = ["r1-shard@2", "r1-big@3", "r1-top@1", "r1-all@0", "r1-all@1", "r1-all@2", "r1-all@3", "r1-pack@3"].sort()
    await fake.waitFor(() => arrivals(fake, "r1-").length >= expected.length, 15_000, "the commands")
    await sleep(500)
    expect(arrivals(fake, "r1-")).toEqual(expected)
    expect(fake.closes.filter((c) => c.by === "server")).toEqual([])
    // Everything acknowledged; the inboxes hold nothing once sent.
    await pollUntil("SEND acks", async () => (await pending(SEND_STREAM)) === 0, 5_000)
    for (const shard of [0, 1, 2, 3]) expect(await redis.xlen(inboxStream(group, shard))).toBe(0)
    expect((await gateway.kill("SIGTERM")).code).toBe(0)
    const counters = finalCounters(gateway)
    expect(counters.sent).toBe(8)
    expect(Object.fromEntries(counters.refused)).toEqual({ malformed: 1, op_not_allowed: 1, bad_shard_id: 1, too_large: 1 })
  }, 60_000)

  it("two processes sharing Redis: each command reaches its shard exactly once, whichever process read it", async () => {
    const a = procs.track(spawnGateway({ env: env({ DISCORD_SHARD_IDS: "0-1" }) }))
    await fake.waitFor(() => fake.readyShards().length === 2, 30_000, "A's shards ready")
    await a.waitForLog(/reading commands from Redis stream SEND/)
    // B is not running yet: A reads everything, sends its own, and leaves B's in B's inboxes.
    await add(json({ op: 8, shard_id: 0, d: membersD(guildOn(0, 4), "r2-early-0") }))
    await add(json({ op: 8, shard_id: 2, d: membersD(guildOn(2, 4), "r2-early-2") }))
    await add(json({ op: 8, d: membersD(BIG_GUILD, "r2-early-big") })) // shard 3
    await add(json({ op: 3, d: presenceD("r2-early-all") }))
    await fake.waitFor(() => arrivals(fake, "r2-early").length >= 3, 10_000, "A's commands")
    expect(arrivals(fake, "r2-early")).toEqual(["r2-early-0@0", "r2-early-all@0", "r2-early-all@1"])
    expect(await redis.xlen(inboxStream(group, 2))).toBe(2)
    expect(await redis.xlen(inboxStream(group, 3))).toBe(2)

    const b = procs.track(spawnGateway({ env: env({ DISCORD_SHARD_IDS: "2-3" }) }))
    await fake.waitFor(() => fake.readyShards().length === 4, 30_000, "all 4 shards ready")
    await b.waitForLog(/reading commands from Redis stream SEND/)
    await fake.waitFor(() => arrivals(fake, "r2-early").length >= 7, 15_000, "B's waiting commands")

    // Both running: a mix to every shard, read by either of them.
    const expected = new Set<string>()
    for (let i = 0; i < 40; i++) {
      const shard = i % 4
      if (i % 3 === 0) await add(json({ op: 8, shard_id: shard, d: membersD(guildOn(shard, 4, i), `r2-mix-${i}`) }))
      else if (i % 3 === 1) await add(json({ op: 8, guild_id: guildOn(shard, 4, i), d: membersD(guildOn(shard, 4, i), `r2-mix-${i}`) }))
      else await add(encode({ op: 8, d: membersD(guildOn(shard, 4, i), `r2-mix-${i}`) }))
      expected.add(`r2-mix-${i}@${shard}`)
    }
    await add(json({ op: 3, d: presenceD("r2-mix-all") }))
    for (const shard of [0, 1, 2, 3]) expected.add(`r2-mix-all@${shard}`)
    // stdin of A, for a shard B runs: forwarded through Redis.
    a.child.stdin!.write(`${json({ op: 8, shard_id: 3, d: membersD(guildOn(3, 4, 99), "r2-mix-stdin") })}\n`)
    expected.add("r2-mix-stdin@3")
    await fake.waitFor(() => arrivals(fake, "r2-mix").length >= expected.size, 20_000, "the mixed commands")
    await sleep(700)
    expect(arrivals(fake, "r2-early")).toEqual(
      ["r2-early-0@0", "r2-early-2@2", "r2-early-big@3", "r2-early-all@0", "r2-early-all@1", "r2-early-all@2", "r2-early-all@3"].sort()
    )
    expect(arrivals(fake, "r2-mix")).toEqual([...expected].sort())
    expect(fake.closes.filter((c) => c.by === "server")).toEqual([])
    expect(await pending(SEND_STREAM)).toBe(0)
    for (const shard of [0, 1, 2, 3]) expect(await redis.xlen(inboxStream(group, shard))).toBe(0)

    expect((await a.kill("SIGTERM")).code).toBe(0)
    expect((await b.kill("SIGTERM")).code).toBe(0)
    const [ca, cb] = [finalCounters(a), finalCounters(b)]
    // Every payload written once in total; A forwarded at least B's early ones (4).
    expect(ca.sent + cb.sent).toBe(7 + expected.size)
    expect(ca.forwarded).toBeGreaterThanOrEqual(4)
    // Both read from SEND (B's share includes commands for A's shards, and the other way round).
    expect(cb.received).toBeGreaterThan(0)
    expect(ca.received).toBeGreaterThan(4)
    expect(ca.received + cb.received).toBe(4 + 41 + 1)
    for (const g of [a, b]) expect(logLines(g).filter((l) => l.level === "WARN" || l.level === "ERROR")).toEqual([])
  }, 90_000)

  it("survives a Redis restart that loses everything: the group is created again and commands flow", async () => {
    const port = await freePort()
    let server = await startRedisServer(port)
    const url = `redis://127.0.0.1:${port}`
    const own = new Redis(url, { maxRetriesPerRequest: 1, retryStrategy: () => 100 })
    own.on("error", () => undefined)
    try {
      const gateway = procs.track(spawnGateway({ env: env({ REDIS_URL: url }) }))
      await fake.waitFor(() => fake.readyShards().length === 4, 30_000, "4 shards ready")
      await gateway.waitForLog(/reading commands from Redis stream SEND/)
      await own.xadd(SEND_STREAM, "*", "data", json({ op: 8, shard_id: 1, d: membersD(guildOn(1, 4), "r3-before") }))
      await fake.waitFor(() => arrivals(fake, "r3-").length === 1, 10_000, "the first command")

      await server.kill()
      await sleep(1_500)
      server = await startRedisServer(port)
      // The new server is empty: wait for the gateway to create its group again, then send.
      await pollUntil("the group again", async () => {
        const groups = await own.xinfo("GROUPS", SEND_STREAM).catch(() => [])
        return JSON.stringify(groups).includes(group)
      }, 30_000)
      await own.xadd(SEND_STREAM, "*", "data", json({ op: 8, shard_id: 2, d: membersD(guildOn(2, 4), "r3-after") }))
      await fake.waitFor(() => arrivals(fake, "r3-").length === 2, 15_000, "the command after the restart")
      expect(arrivals(fake, "r3-")).toEqual(["r3-after@2", "r3-before@1"])
      expect(gateway.child.exitCode).toBeNull()
      expect(logLines(gateway).some((l) => /reading commands from Redis .* works again/.test(l.message))).toBe(true)
      expect((await gateway.kill("SIGTERM")).code).toBe(0)
    } finally {
      own.disconnect()
      await server.kill()
    }
  }, 90_000)
})
