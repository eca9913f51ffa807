// Close codes after which retrying cannot help stop the gateway with what to do.
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest"
import { type FakeDiscord, startFakeDiscord } from "../fake-discord/FakeDiscord.ts"
import { reaper, spawnGateway } from "../support/gateway.ts"

const procs = reaper()
afterEach(() => procs.killAll())
let fake: FakeDiscord
const TOKEN = "fatal-token-xyz"
beforeAll(async () => {
  fake = await startFakeDiscord({ token: TOKEN, shardCount: 1 })
})
afterAll(() => fake.close())

const cases: Array<[number, RegExp]> = [
  [4004, /token is invalid/],
  [4010, /shards\] count and ids/],
  [4011, /raise \[shards\] count/],
  [4012, /gateway_version/],
  [4013, /DISCORD_INTENTS/],
  [4014, /Privileged Gateway Intents.*MESSAGE_CONTENT/]
]

describe("fatal close codes", () => {
  it.each(cases)("%i: exits non-zero with the fix, token not printed", async (code, fix) => {
    const gateway = procs.track(spawnGateway({
      env: {
        DISCORD_TOKEN: TOKEN,
        DISCORD_EVENTS: "MESSAGE_CREATE",
        DISCORD_INTENTS: "GUILDS,MESSAGE_CONTENT",
        DISCORD_API_PROTOCOL: "http",
        DISCORD_API_HOST: fake.host
      }
    }))
    await fake.waitFor(() => fake.readyShards().includes(0), 20_000, "ready")
    fake.closeShard(0, code, "fatal test")
    const exit = await gateway.exited
    expect(exit.code).not.toBe(0)
    expect(exit.code).not.toBeNull()
    const lastLine = gateway.stderr().trim().split("\n").at(-1)!
    expect(lastLine).toMatch(new RegExp(`${code}`))
    expect(lastLine).toMatch(fix)
    expect(gateway.stderr()).not.toContain(TOKEN)
    expect(gateway.stdout()).not.toContain(TOKEN)
  })

  it("a real 4014 from Discord (privileged intent not enabled) names the intent", async () => {
    const strict = await startFakeDiscord({ token: TOKEN, allowedPrivilegedIntents: 0 })
    try {
      const gateway = procs.track(spawnGateway({
        env: {
          DISCORD_TOKEN: TOKEN,
          DISCORD_EVENTS: "*",
          DISCORD_INTENTS: "GUILDS,GUILD_MEMBERS",
          DISCORD_API_PROTOCOL: "http",
          DISCORD_API_HOST: strict.host
        }
      }))
      const exit = await gateway.exited
      expect(exit.code).toBe(1)
      expect(gateway.stderr().trim().split("\n").at(-1)).toMatch(/4014.*GUILD_MEMBERS/)
    } finally {
      await strict.close()
    }
  })
})
