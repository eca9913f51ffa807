// Never lose an event: every way a connection can end leads back to a live session with nothing
// missing. Each case injects uniquely marked events before, during and after the disruption.
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type FakeDiscord, startFakeDiscord } from "../fake-discord/FakeDiscord.ts"
import { type GatewayProcess, spawnGateway } from "../support/gateway.ts"


type Disruption = {
  readonly name: string
  readonly run: (fake: FakeDiscord, shard: number) => void
  /** What the fake should see afterwards for the shard. */
  readonly expect: "resume" | "identify"
}

const disruptions: Array<Disruption> = [
  { name: "dropped TCP connection", run: (f, s) => void f.dropShard(s), expect: "resume" },
  { name: "op 7 reconnect", run: (f, s) => void f.sendReconnect(s), expect: "resume" },
  { name: "op 9 resumable", run: (f, s) => void f.invalidateSession(s, true), expect: "resume" },
  { name: "op 9 not resumable", run: (f, s) => void f.invalidateSession(s, false), expect: "identify" },
  { name: "zombie (no ACKs, nothing else)", run: (f, s) => void f.setZombie(s, true), expect: "resume" },
  ...[4000, 4001, 4002, 4003, 4005, 4008, 1000, 1001].map((code): Disruption => ({
    name: `close ${code}`,
    run: (f, s) => void f.closeShard(s, code, "test"),
    expect: "resume"
  })),
  ...[4007, 4009].map((code): Disruption => ({
    name: `close ${code}`,
    run: (f, s) => void f.closeShard(s, code, "test"),
    expect: "identify"
  }))
]

const markersSeen = (g: GatewayProcess) =>
  g.lines.flatMap((l) => {
    const e = JSON.parse(l) as { event: string; data: { marker?: string } }
    return e.event === "MESSAGE_CREATE" && e.data.marker ? [e.data.marker] : []
  })

describe.each(["zlib-stream", "zstd-stream"] as const)("over %s", (compress) => {
  let fake: FakeDiscord
  let gateway: GatewayProcess
  beforeAll(async () => {
    // A short heartbeat interval so a zombie is noticed within seconds.
    fake = await startFakeDiscord({ token: "t", shardCount: 2, maxConcurrency: 2, heartbeatIntervalMs: 1_000, identifyIntervalMs: 5_000 })
    gateway = spawnGateway({
      env: {
        DISCORD_TOKEN: "t",
        DISCORD_EVENTS: "MESSAGE_CREATE",
        DISCORD_API_PROTOCOL: "http",
        DISCORD_API_HOST: fake.host,
        DISCORD_COMPRESS: compress,
        LOG_LEVEL: "info"
      }
    })
    await fake.waitFor(() => fake.readyShards().length === 2, 20_000, "2 shards ready")
  })
  afterAll(async () => {
    // The gateway lived through every disruption and still stops cleanly.
    expect((await gateway.kill("SIGTERM")).code).toBe(0)
    await fake?.close()
  })

  let n = 0
  it.each(disruptions)("$name: nothing injected goes missing", async ({ run, expect: after }) => {
    const shard = n++ % 2
    const prefix = `${compress}-${n}`
    const identifiesBefore = fake.identifies.filter((i) => i.shardId === shard).length
    const resumesBefore = fake.resumes.filter((r) => r.shardId === shard && r.outcome === "resumed").length
    const sent: Array<string> = []
    const inject = (tag: string, count: number) => {
      for (let i = 0; i < count; i++) {
        const marker = `${prefix}-${tag}-${i}`
        sent.push(marker)
        fake.dispatch(shard, "MESSAGE_CREATE", { marker })
      }
    }
    inject("before", 20)
    await gateway.waitForLines(() => sent.every((m) => markersSeen(gateway).includes(m)), 10_000)
    run(fake, shard)
    // Dispatched while the connection is broken: replayed by the resume (or, after an identify,
    // the fake queues them for the new session).
    inject("during", 20)
    if (after === "resume") {
      await fake.waitFor(() => fake.resumes.filter((r) => r.shardId === shard && r.outcome === "resumed").length > resumesBefore, 20_000, "resume")
    } else {
      await fake.waitFor(() => fake.identifies.filter((i) => i.shardId === shard).length > identifiesBefore, 20_000, "identify")
    }
    fake.setZombie(shard, false)
    await fake.waitFor(() => fake.readyShards().includes(shard), 20_000, "shard ready again")
    inject("after", 20)
    await gateway.waitForLines(() => sent.every((m) => markersSeen(gateway).includes(m)), 15_000)
    const seen = markersSeen(gateway).filter((m) => m.startsWith(`${prefix}-`))
    expect(new Set(seen)).toEqual(new Set(sent))
    // A resume replays from the last sequence read: no duplicates either.
    if (after === "resume") expect(seen.length).toBe(sent.length)
    expect(fake.violations).toEqual([])
  })
})
