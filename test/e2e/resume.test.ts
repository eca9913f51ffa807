// Smoke: the built daemon resumes a dropped connection with nothing lost and nothing repeated.
// (Every ending of the protocol is covered in-process by test/shard/session.test.ts; the full
// matrix through the daemon is test/e2e/resilience.test.ts in the slow suite.)
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type FakeDiscord, startFakeDiscord } from "../fake-discord/FakeDiscord.ts"
import { type GatewayProcess, spawnGateway } from "../support/gateway.ts"

const markersSeen = (g: GatewayProcess) =>
  g.lines.flatMap((l) => {
    const e = JSON.parse(l) as { event: string; data: { marker?: string } }
    return e.event === "MESSAGE_CREATE" && e.data.marker ? [e.data.marker] : []
  })

describe("resume (smoke)", () => {
  let fake: FakeDiscord
  let gateway: GatewayProcess
  beforeAll(async () => {
    fake = await startFakeDiscord({ token: "resume-smoke", shardCount: 1, maxConcurrency: 1 })
    gateway = spawnGateway({
      env: {
        DISCORD_TOKEN: "resume-smoke",
        DISCORD_EVENTS: "MESSAGE_CREATE",
        DISCORD_API_PROTOCOL: "http",
        DISCORD_API_HOST: fake.host,
        LOG_LEVEL: "info"
      }
    })
    await fake.waitFor(() => fake.readyShards().length === 1, 20_000, "READY")
  })
  afterAll(async () => {
    expect((await gateway.kill("SIGTERM")).code).toBe(0)
    await fake?.close()
  })

  it("a dropped TCP connection is resumed: every event before, during and after arrives once", async () => {
    const sent: Array<string> = []
    const inject = (tag: string) => {
      for (let i = 0; i < 20; i++) {
        sent.push(`${tag}-${i}`)
        fake.dispatch(0, "MESSAGE_CREATE", { marker: `${tag}-${i}` })
      }
    }
    inject("before")
    await gateway.waitForLines(() => sent.every((m) => markersSeen(gateway).includes(m)), 10_000)
    fake.dropShard(0)
    inject("during")
    await fake.waitFor(() => fake.resumes.some((r) => r.outcome === "resumed"), 20_000, "RESUME")
    await fake.waitFor(() => fake.readyShards().includes(0), 20_000, "ready again")
    inject("after")
    await gateway.waitForLines(() => sent.every((m) => markersSeen(gateway).includes(m)), 15_000)
    expect(markersSeen(gateway)).toEqual(sent)
    expect(fake.identifies.length).toBe(1)
    // Both upgrades said who we are, as REST does (some Discord-compatible servers refuse without).
    expect(fake.upgrades.length).toBe(2)
    for (const upgrade of fake.upgrades) expect(upgrade.userAgent).toMatch(/^SpectaclesGateway \(/)
  })
})
