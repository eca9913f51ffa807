// Issue: the gateway runs end to end against the fake Discord, configured only by environment.
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest"
import { type FakeDiscord, startFakeDiscord } from "../fake-discord/FakeDiscord.ts"
import { reaper, spawnGateway } from "../support/gateway.ts"

const procs = reaper()
let fake: FakeDiscord

beforeAll(async () => {
  fake = await startFakeDiscord({ token: "e2e-token", shardCount: 4, maxConcurrency: 2, guildsPerShard: 2 })
})
afterEach(() => procs.killAll())
afterAll(() => fake.close())

describe("stdout broker, configured by environment only", () => {
  it("prints every listed event exactly once as {event, data}, nothing else, with identifies in buckets", async () => {
    const gateway = procs.track(spawnGateway({
      env: {
        DISCORD_TOKEN: "e2e-token",
        DISCORD_EVENTS: "MESSAGE_CREATE,GUILD_CREATE",
        DISCORD_INTENTS: "GUILDS,GUILD_MESSAGES,MESSAGE_CONTENT",
        DISCORD_API_PROTOCOL: "http",
        DISCORD_API_HOST: fake.host,
        DISCORD_SHARD_COUNT: "4"
      }
    }))
    await fake.waitFor(() => fake.readyShards().length === 4, 30_000, "4 shards ready")

    // Markers: listed events (must appear once each) and unlisted ones (must never appear).
    const expected = new Set<string>()
    for (let i = 0; i < 200; i++) {
      const shard = i % 4
      const marker = `listed-${i}`
      fake.dispatch(shard, "MESSAGE_CREATE", { id: String(i), content: marker, nested: { quote: 'a"b', list: [1, 2] } })
      expected.add(marker)
      fake.dispatch(shard, "TYPING_START", { marker: `unlisted-${i}` })
      fake.dispatch(shard, "PRESENCE_UPDATE", { marker: `unlisted-p-${i}` })
    }
    const contents = () =>
      gateway.lines
        .map((l) => JSON.parse(l) as { event: string; data: { content?: string } })
        .filter((e) => e.event === "MESSAGE_CREATE")
        .map((e) => e.data.content)
    await gateway.waitForLines(() => contents().length >= expected.size)
    // A little longer, so a duplicate would have time to show up.
    await new Promise((r) => setTimeout(r, 300))

    const events = gateway.lines.map((l) => JSON.parse(l) as { event: string; data: unknown })
    for (const e of events) expect(Object.keys(e).sort()).toEqual(["data", "event"])
    expect(new Set(events.map((e) => e.event))).toEqual(new Set(["MESSAGE_CREATE", "GUILD_CREATE"]))
    const seen = contents()
    expect(seen.length).toBe(expected.size)
    expect(new Set(seen)).toEqual(expected)
    const create = events.find((e) => e.event === "MESSAGE_CREATE" && (e.data as { content: string }).content === "listed-7")
    expect(create?.data).toEqual({ id: "7", content: "listed-7", nested: { quote: 'a"b', list: [1, 2] } })
    // One GUILD_CREATE per guild of each of the 4 shards.
    expect(events.filter((e) => e.event === "GUILD_CREATE").length).toBe(8)
    expect(gateway.stdout()).not.toContain("unlisted")

    // The bucket rule: per bucket (shard % 2), identifies at least 5 s apart; shards 0-3 each once.
    expect(fake.violations).toEqual([])
    expect(fake.identifies.map((i) => i.shardId).sort()).toEqual([0, 1, 2, 3])
    for (const bucket of [0, 1]) {
      const times = fake.identifies.filter((i) => i.bucket === bucket).map((i) => i.at).sort((a, b) => a - b)
      for (let i = 1; i < times.length; i++) expect(times[i]! - times[i - 1]!).toBeGreaterThanOrEqual(5_000)
    }
    expect(fake.identifies.every((i) => i.intents === (1 | 512 | 32768))).toBe(true)

    const exit = await gateway.kill("SIGTERM")
    expect(exit.code).toBe(0)
    expect(gateway.stderr()).not.toContain("e2e-token")
  })
})
