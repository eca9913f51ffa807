// The daemon itself is restartable without loss: a stopped (SIGTERM) or killed (SIGKILL) gateway
// started again with the same shard store resumes every shard and delivers what was dispatched
// while it was down.
import { Redis } from "ioredis"
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest"
import { type FakeDiscord, startFakeDiscord } from "../fake-discord/FakeDiscord.ts"
import { freshDir, type GatewayProcess, reaper, spawnGateway } from "../support/gateway.ts"
import { REDIS_URL, redisAvailable } from "../support/services.ts"

const procs = reaper()
afterEach(() => procs.killAll())

const SHARDS = 3
let fake: FakeDiscord
beforeAll(async () => {
  fake = await startFakeDiscord({ token: "restart-token", shardCount: SHARDS, maxConcurrency: SHARDS })
})
afterAll(() => fake.close())

const markers = (g: GatewayProcess) =>
  g.lines.flatMap((l) => {
    const e = JSON.parse(l) as { event: string; data: { marker?: string } }
    return e.event === "MESSAGE_CREATE" && e.data.marker ? [e.data.marker] : []
  })

const injectAll = (tag: string, perShard: number) => {
  const sent: Array<string> = []
  for (let shard = 0; shard < SHARDS; shard++) {
    for (let i = 0; i < perShard; i++) {
      const marker = `${tag}-${shard}-${i}`
      fake.dispatch(shard, "MESSAGE_CREATE", { marker })
      sent.push(marker)
    }
  }
  return sent
}

type Store = { readonly name: string; readonly env: () => Record<string, string>; readonly cleanup: () => Promise<void> }

const stores: Array<Store> = [
  (() => {
    const dir = freshDir()
    return {
      name: "file",
      env: () => ({ SHARD_STORE_TYPE: "file", SHARD_STORE_PATH: `${dir}/shards.json` }),
      cleanup: async () => {}
    }
  })(),
  (() => {
    const prefix = `test-restart-${process.pid}-${Date.now()}:`
    return {
      name: "redis",
      env: () => ({ SHARD_STORE_TYPE: "redis", SHARD_STORE_PREFIX: prefix, REDIS_URL }),
      cleanup: async () => {
        const redis = new Redis(REDIS_URL)
        const keys = await redis.keys(`${prefix}*`)
        if (keys.length > 0) await redis.del(...keys)
        await redis.quit()
      }
    }
  })()
]

describe.each(stores)("with the $name shard store", (store) => {
  const skip = store.name === "redis" && !redisAvailable
  afterAll(() => store.cleanup())

  const start = () =>
    procs.track(spawnGateway({
      env: {
        DISCORD_TOKEN: "restart-token",
        DISCORD_EVENTS: "MESSAGE_CREATE",
        DISCORD_API_PROTOCOL: "http",
        DISCORD_API_HOST: fake.host,
        CHECKPOINT_INTERVAL: "200ms",
        ...store.env()
      }
    }))

  it.skipIf(skip)("SIGTERM, then a new start: every shard RESUMEs, no IDENTIFY, nothing missed", async () => {
    const first = start()
    await fake.waitFor(() => fake.readyShards().length === SHARDS, 20_000, "ready")
    const before = injectAll(`${store.name}-term-before`, 30)
    await first.waitForLines(() => before.every((m) => markers(first).includes(m)))
    const closesBefore = fake.closes.length
    const exit = await first.kill("SIGTERM")
    expect(exit.code).toBe(0)
    // Closed with a code that keeps the sessions resumable.
    const closes = fake.closes.slice(closesBefore).filter((c) => c.by === "client")
    expect(closes).toHaveLength(SHARDS)
    for (const c of closes) expect([1000, 1001]).not.toContain(c.code)

    // Dispatched while no gateway runs: held in the sessions' replay buffers.
    const during = injectAll(`${store.name}-term-during`, 30)
    const identifies = fake.counters.identifies
    const resumes = fake.resumes.length
    const second = start()
    await second.waitForLines(() => during.every((m) => markers(second).includes(m)))
    const after = injectAll(`${store.name}-term-after`, 10)
    await second.waitForLines(() => after.every((m) => markers(second).includes(m)))

    expect(fake.counters.identifies).toBe(identifies)
    const newResumes = fake.resumes.slice(resumes)
    expect(newResumes.map((r) => r.shardId).sort()).toEqual([0, 1, 2])
    expect(newResumes.every((r) => r.outcome === "resumed")).toBe(true)
    // A graceful stop delivered and checkpointed everything: nothing is repeated.
    expect(markers(second).filter((m) => m.includes("-term-before-"))).toEqual([])
    expect(markers(second).length).toBe(during.length + after.length)
    expect((await second.kill("SIGTERM")).code).toBe(0)
  })

  it.skipIf(skip)("SIGKILL, then a new start: no loss (duplicates allowed, counted)", async () => {
    const first = start()
    await fake.waitFor(() => fake.readyShards().length === SHARDS, 20_000, "ready")
    const before = injectAll(`${store.name}-kill-before`, 300)
    // Killed mid-stream: some events printed, some read but not yet delivered, some not yet read.
    await first.waitForLines(() => markers(first).length >= 100)
    await first.kill("SIGKILL")
    const during = injectAll(`${store.name}-kill-during`, 50)
    const identifies = fake.counters.identifies
    const second = start()
    await second.waitForLines(() => during.every((m) => markers(second).includes(m)))
    expect(fake.counters.identifies).toBe(identifies)
    const all = [...markers(first), ...markers(second)]
    for (const m of [...before, ...during]) expect(all).toContain(m)
    const duplicates = all.length - new Set(all).size
    console.log(`[${store.name}] SIGKILL restart: ${duplicates} duplicate(s) of ${before.length + during.length} events`)
    expect((await second.kill("SIGTERM")).code).toBe(0)
  })
})
