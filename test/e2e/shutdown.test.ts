// A graceful shutdown is bounded: with the broker down, SIGTERM still exits 0 within the configured
// time, checkpoints only what was delivered, and the next start delivers the rest.
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Redis } from "ioredis"
import { afterEach, describe, expect, it } from "vitest"
import { startFakeDiscord } from "../fake-discord/FakeDiscord.ts"
import { freePort, startRedisServer } from "../brokers/support.ts"
import { reaper, spawnGateway } from "../support/gateway.ts"
import { redisAvailable } from "../support/services.ts"

const procs = reaper()
const cleanups: Array<() => Promise<void>> = []
afterEach(async () => {
  await procs.killAll()
  for (const c of cleanups.splice(0).reverse()) await c()
})

describe.skipIf(!redisAvailable)("graceful shutdown with the broker down", () => {
  it("exits 0 within shutdown_timeout, and the next start delivers what was held", async () => {
    const port = await freePort()
    let redis = await startRedisServer(port)
    cleanups.push(() => redis.kill())
    const fake = await startFakeDiscord({ token: "shutdown-token", shardCount: 1 })
    cleanups.push(() => fake.close())
    const store = join(mkdtempSync(join(tmpdir(), "shutdown-")), "shards.json")
    const env = {
      DISCORD_TOKEN: "shutdown-token",
      DISCORD_EVENTS: "MESSAGE_CREATE",
      DISCORD_API_PROTOCOL: "http",
      DISCORD_API_HOST: fake.host,
      BROKER_TYPE: "redis",
      REDIS_URL: redis.url,
      SHARD_STORE_TYPE: "file",
      SHARD_STORE_PATH: store,
      SHUTDOWN_TIMEOUT: "3s"
    }
    const first = procs.track(spawnGateway({ env }))
    await fake.waitFor(() => fake.readyShards().length === 1, 20_000, "ready")
    await redis.kill()
    for (let i = 0; i < 50; i++) fake.dispatch(0, "MESSAGE_CREATE", { marker: `held-${i}` })
    await first.waitForLog(/holding events in memory/, 10_000)

    const stoppedAt = Date.now()
    const exit = await first.kill("SIGTERM")
    const took = Date.now() - stoppedAt
    expect(exit.code).toBe(0)
    expect(took).toBeLessThan(3_000 + 2_000)
    expect(first.stderr()).toMatch(/not delivered before the shutdown timeout; they will be replayed/)

    redis = await startRedisServer(port)
    const second = procs.track(spawnGateway({ env }))
    const reader = new Redis(redis.url)
    cleanups.push(async () => void reader.disconnect())
    const deadline = Date.now() + 20_000
    let markers: Array<string> = []
    while (Date.now() < deadline) {
      const entries = await reader.xrange("MESSAGE_CREATE", "-", "+")
      markers = entries.map(([, f]) => (JSON.parse(f[1]!) as { marker: string }).marker)
      if (new Set(markers).size >= 50) break
      await new Promise((r) => setTimeout(r, 100))
    }
    expect(new Set(markers)).toEqual(new Set(Array.from({ length: 50 }, (_, i) => `held-${i}`)))
    expect(fake.counters.identifies).toBe(1)
    expect((await second.kill("SIGTERM")).code).toBe(0)
  }, 60_000)
})
