// Stopping the built daemon with signals: during start-up it exits 0 at once; a graceful stop
// names its signal and exits 0; a second signal while the shutdown waits exits 1 at once.
import { afterEach, describe, expect, it } from "vitest"
import { type FakeDiscord, startFakeDiscord } from "../fake-discord/FakeDiscord.ts"
import { freePort, startRedisServer } from "../brokers/support.ts"
import { reaper, spawnGateway } from "../support/gateway.ts"
import { redisAvailable } from "../support/services.ts"

const procs = reaper()
const cleanups: Array<() => Promise<void>> = []
afterEach(async () => {
  await procs.killAll()
  for (const c of cleanups.splice(0).reverse()) await c()
})

const TOKEN = "signals-token"
const env = (fake: FakeDiscord, extra: Record<string, string> = {}) => ({
  DISCORD_TOKEN: TOKEN,
  DISCORD_EVENTS: "MESSAGE_CREATE",
  DISCORD_API_PROTOCOL: "http",
  DISCORD_API_HOST: fake.host,
  LOG_LEVEL: "info",
  ...extra
})

const fakeDiscord = async (options: Parameters<typeof startFakeDiscord>[0]) => {
  const fake = await startFakeDiscord(options)
  cleanups.push(() => fake.close())
  return fake
}

describe("signals", () => {
  it("during start-up (still retrying /gateway/bot), SIGTERM exits 0 at once", async () => {
    const fake = await fakeDiscord({ token: TOKEN, restFailures: { status: 500, times: 1_000 } })
    const g = procs.track(spawnGateway({ env: env(fake) }))
    await g.waitForLog(/HTTP 500; retrying/)
    const exit = await g.kill("SIGTERM")
    expect(exit.code).toBe(0)
    expect(g.stderr()).toMatch(/SIGTERM before the shards started; exiting/)
    expect(g.stdout()).toBe("")
  })

  it("SIGINT once the shards run is a graceful stop that names it and exits 0", async () => {
    const fake = await fakeDiscord({ token: TOKEN, shardCount: 1 })
    const g = procs.track(spawnGateway({ env: env(fake) }))
    await fake.waitFor(() => fake.readyShards().length === 1, 20_000, "ready")
    const exit = await g.kill("SIGINT")
    expect(exit.code).toBe(0)
    expect(g.stderr()).toMatch(/SIGINT: shutting down/)
    expect(g.stderr()).toMatch(/"stopped"|stopped/)
    // Closed with a code that keeps the session resumable.
    const closes = fake.closes.filter((c) => c.by === "client")
    expect(closes).toHaveLength(1)
    expect([1000, 1001]).not.toContain(closes[0]!.code)
  })

  it.skipIf(!redisAvailable)("a second SIGTERM while the shutdown waits for the broker exits 1 at once", async () => {
    const port = await freePort()
    const redis = await startRedisServer(port)
    cleanups.push(() => redis.kill())
    const fake = await fakeDiscord({ token: TOKEN, shardCount: 1 })
    const g = procs.track(spawnGateway({
      env: env(fake, { BROKER_TYPE: "redis", REDIS_URL: redis.url, SHUTDOWN_TIMEOUT: "60s" })
    }))
    await fake.waitFor(() => fake.readyShards().length === 1, 20_000, "ready")
    await redis.kill()
    for (let i = 0; i < 5; i++) fake.dispatch(0, "MESSAGE_CREATE", { i })
    await g.waitForLog(/holding events in memory/, 10_000)
    g.child.kill("SIGTERM")
    await g.waitForLog(/SIGTERM: shutting down/)
    // The drain now waits up to a minute for Redis; the second signal does not.
    const exit = await g.kill("SIGTERM")
    expect(exit.code).toBe(1)
    expect(g.stderr().trim().split("\n").at(-1)).toBe("spectacles-gateway: second SIGTERM: exiting without a graceful shutdown")
  })
})
