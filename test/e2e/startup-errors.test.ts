// Bad configuration and a refused token stop the daemon with one actionable line, nothing on stdout.
import { writeFileSync } from "node:fs"
import { join } from "node:path"
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest"
import { type FakeDiscord, startFakeDiscord } from "../fake-discord/FakeDiscord.ts"
import { freshDir, reaper, spawnGateway } from "../support/gateway.ts"

const procs = reaper()
let fake: FakeDiscord
beforeAll(async () => {
  fake = await startFakeDiscord({ token: "good-token" })
})
afterEach(() => procs.killAll())
afterAll(() => fake.close())

const base = (): Record<string, string> => ({
  DISCORD_TOKEN: "secret-token-123",
  DISCORD_EVENTS: "MESSAGE_CREATE",
  DISCORD_API_PROTOCOL: "http",
  DISCORD_API_HOST: fake.host
})

const cases: Array<[string, Record<string, string | undefined>, RegExp]> = [
  ["missing token", { DISCORD_TOKEN: undefined }, /token.*DISCORD_TOKEN/],
  ["unknown intent", { DISCORD_INTENTS: "GUILDZ" }, /DISCORD_INTENTS.*"GUILDZ".*did you mean "GUILDS"/],
  ["non-numeric shard count", { DISCORD_SHARD_COUNT: "four" }, /DISCORD_SHARD_COUNT.*"four"/],
  ["shard id outside the count", { DISCORD_SHARD_COUNT: "2", DISCORD_SHARD_IDS: "0,5" }, /DISCORD_SHARD_IDS.*5/],
  ["bad duration", { BROKER_MESSAGE_TIMEOUT: "soon" }, /BROKER_MESSAGE_TIMEOUT/],
  ["unknown broker type", { BROKER_TYPE: "kafka" }, /BROKER_TYPE.*kafka.*stdout/]
]

describe("configuration errors exit 2 with one line naming the key and the fix", () => {
  it.each(cases)("%s", async (_name, overrides, pattern) => {
    const env = { ...base(), ...overrides }
    for (const [k, v] of Object.entries(env)) if (v === undefined) delete env[k]
    const gateway = procs.track(spawnGateway({ env: env as Record<string, string> }))
    const exit = await gateway.exited
    expect(exit.code).toBe(2)
    expect(gateway.stdout()).toBe("")
    const lines = gateway.stderr().trim().split("\n")
    expect(lines).toHaveLength(1)
    expect(lines[0]).toMatch(pattern)
    expect(gateway.stderr()).not.toContain("secret-token-123")
    expect(gateway.stderr()).not.toMatch(/\n\s+at /) // no stack trace
  })

  it("an unknown key in gateway.toml is an error too", async () => {
    const dir = freshDir()
    writeFileSync(join(dir, "gateway.toml"), `events = ["MESSAGE_CREATE"]\n[broker]\ntyep = "redis"\n`)
    const env = base()
    const gateway = procs.track(spawnGateway({ env, cwd: dir }))
    expect((await gateway.exited).code).toBe(2)
    expect(gateway.stderr()).toMatch(/broker\.tyep.*did you mean "type"/)
  })

  it("a missing --config file is an error; the environment wins over the file", async () => {
    const missing = procs.track(spawnGateway({ env: base(), args: ["--config", "/nonexistent/gateway.toml"] }))
    expect((await missing.exited).code).toBe(2)
    expect(missing.stderr()).toMatch(/--config.*\/nonexistent\/gateway\.toml/)

    const dir = freshDir()
    writeFileSync(join(dir, "custom.toml"), `token = "file-token"\nevents = ["MESSAGE_CREATE"]\n[shards]\ncount = "x"\n`)
    const env = { ...base(), DISCORD_SHARD_COUNT: "1" }
    // The file's bad count is overridden by the variable, so the file's error does not apply...
    const fine = procs.track(spawnGateway({ env, cwd: dir, args: ["--config", "custom.toml"] }))
    // ...and the variable's token (not the file's) reaches Discord: 401, since the fake wants "good-token".
    expect((await fine.exited).code).toBe(1)
    expect(fine.stderr()).toMatch(/401/)
  })
})

describe("Discord REST", () => {
  it("a refused token (401) is fatal with what to do, and the token is not printed", async () => {
    const gateway = procs.track(spawnGateway({ env: base() }))
    const exit = await gateway.exited
    expect(exit.code).toBe(1)
    expect(gateway.stderr()).toMatch(/Developer Portal/)
    expect(gateway.stderr()).not.toContain("secret-token-123")
    expect(gateway.stdout()).toBe("")
  })

  it("retries 5xx and 429 answers, then starts", async () => {
    fake.setRestFailures({ status: 500, times: 2 })
    const gateway = procs.track(spawnGateway({ env: { ...base(), DISCORD_TOKEN: "good-token" } }))
    await gateway.waitForLog(/shards ready 1\/1/, 30_000)
    expect(gateway.stderr()).toMatch(/HTTP 500; retrying/)
    fake.setRestFailures({ status: 429, times: 1, retryAfterSec: 0.2 })
    const again = procs.track(spawnGateway({ env: { ...base(), DISCORD_TOKEN: "good-token", DISCORD_SHARD_COUNT: "1" } }))
    await again.waitForLog(/shards ready 1\/1/, 30_000)
    expect(again.stderr()).toMatch(/rate limited \(HTTP 429\); retrying/)
    expect((await gateway.kill()).code).toBe(0)
    expect((await again.kill()).code).toBe(0)
  })
})
