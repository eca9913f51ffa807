// The bot token and broker passwords never reach standard output, standard error or /metrics:
// not when a broker refuses the password, not when it cannot be reached, and not in a debug-level
// run through identifies, resumes, reconnects and a Redis outage.
import { Redis } from "ioredis"
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest"
import { type FakeDiscord, startFakeDiscord } from "../fake-discord/FakeDiscord.ts"
import { type GatewayProcess, reaper, spawnGateway } from "../support/gateway.ts"
import { amqpAvailable } from "../support/services.ts"
import { eventually, freePort, metricsBase, type PrivateRedis, privateRedis, redisServerInstalled } from "../observability/support.ts"

const procs = reaper()
afterEach(() => procs.killAll())

// Shaped like a real token: base64 bot id, timestamp, and the HMAC part that is the real secret.
const TOKEN_SECRET = "S3cretHmacPart_ZZ9qLmN0pXr7vWk"
const TOKEN = `${Buffer.from("987654321098765432").toString("base64url")}.GhTq2w.${TOKEN_SECRET}`
// "!" is percent-encoded in the URLs; both spellings must stay out of the output.
const REDIS_PASSWORD = "R3dis!Pw-xyzzy-4471"
const REDIS_PASSWORD_URL = "R3dis%21Pw-xyzzy-4471"
const WRONG_REDIS_PASSWORD = "Wr0ngRedisPw-plugh-9038"
const UNREACHABLE_PASSWORD = "Unreach%21Pw-frotz-1201"
const WRONG_AMQP_PASSWORD = "Wr0ngAmqpPw-xyzzy-5521"
const SECRETS = [TOKEN, TOKEN_SECRET, REDIS_PASSWORD, REDIS_PASSWORD_URL, decodeURIComponent(REDIS_PASSWORD_URL),
  WRONG_REDIS_PASSWORD, UNREACHABLE_PASSWORD, decodeURIComponent(UNREACHABLE_PASSWORD), WRONG_AMQP_PASSWORD]

const expectNoSecrets = (where: string, text: string) => {
  for (const secret of SECRETS) expect(text.includes(secret), `${where} contains "${secret}"`).toBe(false)
}
const expectCleanOutput = (g: GatewayProcess) => {
  expectNoSecrets("stdout", g.stdout())
  expectNoSecrets("stderr", g.stderr())
}

let fake: FakeDiscord
let redis: PrivateRedis
beforeAll(async () => {
  fake = await startFakeDiscord({ token: TOKEN, shardCount: 2, maxConcurrency: 2, heartbeatIntervalMs: 1_000, identifyIntervalMs: 2_000 })
  if (redisServerInstalled) {
    redis = await privateRedis(["--requirepass", REDIS_PASSWORD])
    await redis.start()
  }
})
afterAll(async () => {
  await fake?.close()
  await redis?.stop()
})

const baseEnv = (extra: Record<string, string>) => ({
  DISCORD_TOKEN: TOKEN,
  DISCORD_EVENTS: "MESSAGE_CREATE",
  DISCORD_API_PROTOCOL: "http",
  DISCORD_API_HOST: fake.host,
  LOG_LEVEL: "debug",
  ...extra
})

/** Runs the daemon expecting it to stop with exit 1 at startup. */
const failingStart = async (extra: Record<string, string>, mentions: RegExp) => {
  const g = procs.track(spawnGateway({ env: baseEnv({ PROMETHEUS_ADDRESS: "127.0.0.1:0", ...extra }) }))
  const { code } = await g.exited
  expect(code, g.stderr()).toBe(1)
  expect(g.stderr()).toMatch(mentions)
  expectCleanOutput(g)
}

describe("failed broker connections", () => {
  it.skipIf(!redisServerInstalled)("Redis refusing the password", async () => {
    await failingStart(
      { BROKER_TYPE: "redis", REDIS_URL: `redis://:${WRONG_REDIS_PASSWORD}@127.0.0.1:${redis.port}` },
      /WRONGPASS|password/i
    )
  })

  it("Redis not reachable", async () => {
    const port = await freePort()
    await failingStart(
      { BROKER_TYPE: "redis", SHARD_STORE_TYPE: "redis", REDIS_URL: `redis://user:${UNREACHABLE_PASSWORD}@127.0.0.1:${port}` },
      new RegExp(`redis://127\\.0\\.0\\.1:${port}`)
    )
  })

  it("RabbitMQ refusing the password (or not reachable)", async () => {
    if (!amqpAvailable) console.warn("RabbitMQ is not running: checking the unreachable case only")
    await failingStart(
      { BROKER_TYPE: "amqp", AMQP_URL: `amqp://guest:${WRONG_AMQP_PASSWORD}@127.0.0.1:5672` },
      amqpAvailable ? /ACCESS.REFUSED/ : /amqp/
    )
  })
})

describe.skipIf(!redisServerInstalled)("a debug-level run", () => {
  it("keeps every secret out through identify, resume, reconnects and a Redis outage", { timeout: 120_000 }, async () => {
    const redisUrl = `redis://:${REDIS_PASSWORD_URL}@127.0.0.1:${redis.port}`
    const g = procs.track(spawnGateway({
      env: baseEnv({
        BROKER_TYPE: "redis",
        SHARD_STORE_TYPE: "redis",
        REDIS_URL: redisUrl,
        PROMETHEUS_ADDRESS: "127.0.0.1:0",
        // Unused here, but configured: its password must not show up either.
        AMQP_URL: `amqp://guest:${WRONG_AMQP_PASSWORD}@127.0.0.1:5672`
      })
    }))
    const base = await metricsBase(g)
    await fake.waitFor(() => fake.readyShards().length === 2, 20_000, "2 shards ready")
    const scrapes: Array<string> = []
    const scrapeAll = async () => {
      for (const path of ["/metrics", "/healthz", "/readyz"]) scrapes.push(await (await fetch(`${base}${path}`)).text())
    }
    await scrapeAll()

    const client = new Redis(redisUrl)
    try {
      const streamLength = () => client.xlen("MESSAGE_CREATE")
      for (let i = 0; i < 10; i++) fake.dispatch(i % 2, "MESSAGE_CREATE", { i })
      await eventually(async () => (await streamLength()) >= 10, 10_000, "10 events in Redis")

      // Reconnects: a resume (token in RESUME), a fresh identify (token in IDENTIFY), a dropped socket.
      const resumed = fake.resumes.length
      fake.sendReconnect(0)
      await fake.waitFor(() => fake.resumes.length > resumed && fake.readyShards().length === 2, 20_000, "resumed")
      const identified = fake.identifies.length
      fake.invalidateSession(1, false)
      await fake.waitFor(() => fake.identifies.length > identified && fake.readyShards().length === 2, 20_000, "identified again")
      fake.dropShard(0)
      await fake.waitFor(() => fake.readyShards().length === 2, 20_000, "ready after a drop")
      await scrapeAll()

      // A Redis outage: connection errors and retries are logged with the URL, never its password.
      await redis.stop()
      for (let i = 0; i < 5; i++) fake.dispatch(0, "MESSAGE_CREATE", { outage: i })
      await g.waitForLog(/connection lost|holding events/, 15_000)
      await scrapeAll()
      await redis.start()
      await eventually(async () => (await streamLength()) >= 5, 20_000, "events delivered after the outage")
      await scrapeAll()
    } finally {
      client.disconnect()
    }
    expect((await g.kill("SIGTERM")).code).toBe(0)

    expect(g.stderr()).toMatch(/"level":"DEBUG"/)
    expect(g.stderr()).toContain(`redis://127.0.0.1:${redis.port}`)
    expectCleanOutput(g)
    expect(scrapes.join("\n")).toContain("gateway_events_received_total")
    expectNoSecrets("/metrics", scrapes.join("\n"))
    expect(fake.violations).toEqual([])
  })
})
