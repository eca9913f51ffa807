// Several processes behave as one gateway: one identify limit for all (through Redis), one
// process per shard (leases), and Discord's daily session budget respected.
import { Redis } from "ioredis"
import { afterAll, afterEach, describe, expect, it } from "vitest"
import { type FakeDiscord, startFakeDiscord } from "../fake-discord/FakeDiscord.ts"
import { reaper, spawnGateway } from "../support/gateway.ts"
import { REDIS_URL, redisAvailable } from "../support/services.ts"

const procs = reaper()
const fakes: Array<FakeDiscord> = []
afterEach(async () => {
  await procs.killAll()
  await Promise.all(fakes.splice(0).map((f) => f.close()))
})

const prefix = `test-scale-${process.pid}-${Date.now()}:`
afterAll(async () => {
  if (!redisAvailable) return
  const redis = new Redis(REDIS_URL)
  const keys = await redis.keys(`${prefix}*`)
  if (keys.length > 0) await redis.del(...keys)
  await redis.quit()
})

describe.skipIf(!redisAvailable)("two processes sharing one Redis", () => {
  it("start 32 shards with max_concurrency 4 within 15% of ceil(32/4) x 5 s, keeping the bucket rule; a third claimant is refused", async () => {
    const token = `scale-token-${Date.now()}`
    const fake = await startFakeDiscord({ token, shardCount: 32, maxConcurrency: 4, guildsPerShard: 1, guildCreateMembers: 2 })
    fakes.push(fake)
    const env = (ids: string): Record<string, string> => ({
      DISCORD_TOKEN: token,
      DISCORD_EVENTS: "MESSAGE_CREATE",
      DISCORD_API_PROTOCOL: "http",
      DISCORD_API_HOST: fake.host,
      DISCORD_SHARD_COUNT: "32",
      DISCORD_SHARD_IDS: ids,
      REDIS_URL,
      SHARD_STORE_TYPE: "redis",
      SHARD_STORE_PREFIX: prefix
    })
    const started = Date.now()
    const a = procs.track(spawnGateway({ env: env("0-15") }))
    const b = procs.track(spawnGateway({ env: env("16-31") }))
    await fake.waitFor(() => fake.readyShards().length === 32, 60_000, "32 shards ready")
    const elapsed = (Date.now() - started) / 1000
    const target = Math.ceil(32 / 4) * 5
    console.log(`32 shards over 2 processes, max_concurrency 4: all READY in ${elapsed.toFixed(1)}s (target ${target}s)`)
    expect(Math.abs(elapsed - target) / target).toBeLessThanOrEqual(0.15)

    const ready = fake.identifies.filter((i) => i.outcome === "ready")
    expect(ready.map((i) => i.shardId).sort((x, y) => x - y)).toEqual(Array.from({ length: 32 }, (_, i) => i))
    expect(fake.violations).toEqual([])
    for (let bucket = 0; bucket < 4; bucket++) {
      const times = fake.identifies.filter((i) => i.bucket === bucket).map((i) => i.at).sort((x, y) => x - y)
      for (let i = 1; i < times.length; i++) expect(times[i]! - times[i - 1]!).toBeGreaterThanOrEqual(5_000)
    }
    await a.waitForLog(/shards ready 16\/16/)
    await b.waitForLog(/shards ready 16\/16/)

    // A third process configured with a shard process A runs: refused, and shard 5's session untouched.
    const session5 = fake.sessionOf(5)?.sessionId
    const c = procs.track(spawnGateway({ env: env("5") }))
    const exit = await c.exited
    expect(exit.code).toBe(1)
    expect(c.stderr().trim().split("\n").at(-1)).toMatch(/shard 5 is run by another live gateway process/)
    expect(fake.sessionOf(5)?.sessionId).toBe(session5)
    expect(fake.readyShards()).toContain(5)
    expect(fake.counters.identifies).toBe(32)

    expect((await a.kill()).code).toBe(0)
    expect((await b.kill()).code).toBe(0)
  }, 120_000)
})

describe("the daily session budget", () => {
  it("waits for Discord's reset instead of spending the last session starts, and says so", async () => {
    const token = "budget-token"
    const fake = await startFakeDiscord({ token, shardCount: 2, maxConcurrency: 2, sessionStartLimit: { total: 10, remaining: 1, resetAfter: 4_000 } })
    fakes.push(fake)
    const started = Date.now()
    const gateway = procs.track(spawnGateway({
      env: { DISCORD_TOKEN: token, DISCORD_EVENTS: "MESSAGE_CREATE", DISCORD_API_PROTOCOL: "http", DISCORD_API_HOST: fake.host }
    }))
    await gateway.waitForLog(/session start budget: 1 of 10 left, 2 needed; waiting \d+s/)
    // Nothing was spent while waiting.
    expect(fake.identifies).toEqual([])
    await fake.waitFor(() => fake.readyShards().length === 2, 20_000, "2 shards ready")
    expect(Date.now() - started).toBeGreaterThanOrEqual(3_500)
    expect(fake.identifies.every((i) => i.outcome === "ready")).toBe(true)
    expect((await gateway.kill()).code).toBe(0)
  })
})
