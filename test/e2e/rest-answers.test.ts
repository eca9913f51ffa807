// How the start treats /gateway/bot's answers: a 4xx other than 429 stops it (exit 1) with the
// server's code and message, a refused token with the fix; 5xx and network errors are retried with
// backoff, and a 429 waits at least the retry_after the server asked for.
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest"
import { freePort } from "../brokers/support.ts"
import { type FakeDiscord, startFakeDiscord } from "../fake-discord/FakeDiscord.ts"
import { reaper, spawnGateway } from "../support/gateway.ts"
import { readServerAnswer, refusal } from "../../src/Rest/DiscordRest.ts"

const TOKEN = "rest-answers-token-5551"
const procs = reaper()
let fake: FakeDiscord
beforeAll(async () => {
  fake = await startFakeDiscord({ token: TOKEN })
})
afterEach(async () => {
  fake.setRestFailures(undefined)
  await procs.killAll()
})
afterAll(() => fake.close())

const env = (overrides: Record<string, string> = {}): Record<string, string> => ({
  DISCORD_TOKEN: TOKEN,
  DISCORD_EVENTS: "MESSAGE_CREATE",
  DISCORD_API_PROTOCOL: "http",
  DISCORD_API_HOST: fake.host,
  ...overrides
})

const botCalls = (since: number) => fake.restCalls.filter((c) => c.path.endsWith("/gateway/bot") && c.at >= since)

/** Starts the gateway against the fake's injected answer; returns its exit and what it printed. */
const refusedStart = async (status: number, body?: unknown) => {
  const since = Date.now()
  fake.setRestFailures({ status, times: 1, body })
  const gateway = procs.track(spawnGateway({ env: env() }))
  const exit = await gateway.exited
  const lines = gateway.stderr().trim().split("\n").filter((line) => !line.startsWith("{"))
  return { exit, lines, stderr: gateway.stderr(), stdout: gateway.stdout(), calls: botCalls(since).length }
}

describe("a 4xx from /gateway/bot (not 429) stops the start with exit 1", () => {
  it("400 with a token error code (as a Discord-compatible server answers a bad token): the 401 fix", async () => {
    const run = await refusedStart(400, { message: "401: Unauthorized", code: 40001 })
    expect(run.exit.code).toBe(1)
    expect(run.lines).toHaveLength(1)
    expect(run.lines[0]).toContain("Discord refused the bot token (HTTP 400, code 40001: 401: Unauthorized on /gateway/bot)")
    expect(run.lines[0]).toContain("Developer Portal")
    expect(run.calls).toBe(1)
    expect(run.stderr).not.toContain(TOKEN)
    expect(run.stdout).toBe("")
  })

  it("400 with another body: the server's code and message, no retry", async () => {
    const run = await refusedStart(400, { message: "Invalid Form Body", code: 50035 })
    expect(run.exit.code).toBe(1)
    expect(run.lines).toHaveLength(1)
    expect(run.lines[0]).toContain("Discord refused GET /api/v10/gateway/bot (HTTP 400, code 50035: Invalid Form Body)")
    expect(run.lines[0]).toContain("retrying cannot help")
    expect(run.lines[0]).not.toContain("DISCORD_TOKEN")
    expect(run.calls).toBe(1)
  })

  it("403 with Discord's invalid-token code gets the token fix; a plain 403 its own message", async () => {
    const token = await refusedStart(403, { message: "Invalid authentication token provided", code: 50014 })
    expect(token.exit.code).toBe(1)
    expect(token.lines[0]).toMatch(/refused the bot token \(HTTP 403, code 50014: Invalid authentication token provided.*Developer Portal/)

    const access = await refusedStart(403, { message: "Missing Access", code: 50001 })
    expect(access.exit.code).toBe(1)
    expect(access.lines).toHaveLength(1)
    expect(access.lines[0]).toContain("(HTTP 403, code 50001: Missing Access)")
    expect(access.calls).toBe(1)
  })

  it("404 (a wrong API host or version) names the settings to check; a text body is shown as text", async () => {
    const run = await refusedStart(404, "<html><body>  no such\n route </body></html>")
    expect(run.exit.code).toBe(1)
    expect(run.lines).toHaveLength(1)
    expect(run.lines[0]).toContain("(HTTP 404: <html><body> no such route </body></html>)")
    expect(run.lines[0]).toMatch(/DISCORD_API_HOST.*DISCORD_API_VERSION/)
    expect(run.calls).toBe(1)
  })

  it("a 401 keeps its fix line", async () => {
    const since = Date.now()
    const gateway = procs.track(spawnGateway({ env: env({ DISCORD_TOKEN: "wrong-token-777" }) }))
    expect((await gateway.exited).code).toBe(1)
    expect(gateway.stderr()).toMatch(/refused the bot token \(HTTP 401.*Developer Portal/)
    expect(gateway.stderr()).not.toContain("wrong-token-777")
    expect(botCalls(since)).toHaveLength(1)
  })
})

describe("retried answers", () => {
  it("429 waits at least retry_after before the next call, then starts", async () => {
    const since = Date.now()
    fake.setRestFailures({ status: 429, times: 1, retryAfterSec: 1.5 })
    const gateway = procs.track(spawnGateway({ env: env() }))
    await gateway.waitForLog(/shards ready 1\/1/, 30_000)
    const calls = botCalls(since)
    expect(calls[0]!.status).toBe(429)
    expect(calls[1]!.status).toBe(200)
    // A lower bound only: a slow machine makes the gap longer, never shorter.
    expect(calls[1]!.at - calls[0]!.at).toBeGreaterThanOrEqual(1_450)
    expect(gateway.stderr()).toMatch(/rate limited \(HTTP 429\); retrying/)
    expect((await gateway.kill()).code).toBe(0)
  })

  it("5xx answers (with any body) are retried, then the start goes on", async () => {
    const since = Date.now()
    fake.setRestFailures({ status: 502, times: 2, body: "<html>Bad Gateway</html>" })
    const gateway = procs.track(spawnGateway({ env: env() }))
    await gateway.waitForLog(/shards ready 1\/1/, 30_000)
    expect(botCalls(since).map((c) => c.status).slice(0, 3)).toEqual([502, 502, 200])
    expect(gateway.stderr()).toMatch(/HTTP 502; retrying/)
    expect((await gateway.kill()).code).toBe(0)
  })

  it("network errors are retried (nothing listening), and SIGTERM meanwhile exits 0", async () => {
    const closed = await freePort()
    const gateway = procs.track(spawnGateway({ env: env({ DISCORD_API_HOST: `127.0.0.1:${closed}` }) }))
    await gateway.waitForLines(() => (gateway.stderr().match(/GET \/gateway\/bot failed: .*; retrying/g) ?? []).length >= 2, 30_000)
      .catch(() => undefined)
    expect((gateway.stderr().match(/GET \/gateway\/bot failed: .*; retrying/g) ?? []).length).toBeGreaterThanOrEqual(2)
    expect(gateway.child.exitCode).toBeNull()
    expect((await gateway.kill("SIGTERM")).code).toBe(0)
  })
})

describe("reading an error answer", () => {
  it("takes Discord's code and message, or a bounded line of text", () => {
    expect(readServerAnswer(400, `{"message":"401: Unauthorized","code":40001}`)).toEqual({ status: 400, code: 40001, message: "401: Unauthorized" })
    expect(readServerAnswer(404, "")).toEqual({ status: 404, message: undefined })
    expect(readServerAnswer(400, "x".repeat(500)).message).toHaveLength(203)
    expect(refusal("http://h/api/v10/gateway/bot", { status: 401 })._tag).toBe("DiscordUnauthorized")
    expect(refusal("http://h/api/v10/gateway/bot", { status: 400, code: 40001 })._tag).toBe("DiscordUnauthorized")
    expect(refusal("http://h/api/v10/gateway/bot", { status: 403, code: 50014 })._tag).toBe("DiscordUnauthorized")
    expect(refusal("http://h/api/v10/gateway/bot", { status: 403, code: 50001 })._tag).toBe("DiscordRequestRefused")
    expect(refusal("http://h/api/v10/gateway/bot", { status: 400 })._tag).toBe("DiscordRequestRefused")
  })
})
