// Memory is bounded by the gateway, not by the peer: a zlib bomb (a few hundred KB inflating to
// 300 MB) and a plain 50 MB payload are dropped while read, logged and counted; the session goes
// on and the events after them arrive. Peak RSS of the daemon stays under a stated bound.
import { readFileSync } from "node:fs"
import { afterEach, describe, expect, it } from "vitest"
import { type FakeDiscord, startFakeDiscord } from "../fake-discord/FakeDiscord.ts"
import { type GatewayProcess, reaper, spawnGateway } from "../support/gateway.ts"

const gateways = reaper()
let fake: FakeDiscord | undefined
afterEach(async () => {
  await gateways.killAll()
  await fake?.close()
  fake = undefined
})

/** Peak resident set of a process (Linux), in MiB. */
const peakRssMiB = (pid: number) => {
  const line = readFileSync(`/proc/${pid}/status`, "utf8").split("\n").find((l) => l.startsWith("VmHWM:"))!
  return Number(line.split(/\s+/)[1]) / 1024
}

const markers = (g: GatewayProcess) =>
  g.lines.flatMap((l) => {
    const e = JSON.parse(l) as { event: string; data: { m?: string } }
    return e.event === "MESSAGE_CREATE" && e.data.m !== undefined ? [e.data.m] : []
  })

/** Bound for the whole daemon: its baseline (~120 MiB) plus the 32 MiB payload cap and slack. */
const RSS_BOUND_MIB = 260

describe.each(["zlib-stream", "zstd-stream"] as const)("oversized payloads over %s", (compress) => {
  it("a 300 MB bomb and a 50 MB payload are dropped and counted; later events arrive; RSS stays bounded", async () => {
    fake = await startFakeDiscord({ token: "t", shardCount: 1, maxConcurrency: 1 })
    const gateway = gateways.track(spawnGateway({
      env: {
        DISCORD_TOKEN: "t",
        DISCORD_EVENTS: "MESSAGE_CREATE,GUILD_CREATE",
        DISCORD_API_PROTOCOL: "http",
        DISCORD_API_HOST: fake.host,
        DISCORD_COMPRESS: compress,
        LOG_LEVEL: "info"
      }
    }))
    await fake.waitFor(() => fake!.readyShards().length === 1, 20_000, "READY")
    fake.dispatch(0, "MESSAGE_CREATE", { m: "before" })
    const bomb = fake.sendOversized(0, { bytes: 300 * 1024 * 1024, t: "GUILD_CREATE", pad: "repeat" })
    fake.dispatch(0, "MESSAGE_CREATE", { m: "between" })
    const big = fake.sendOversized(0, { bytes: 50 * 1024 * 1024, t: "MESSAGE_CREATE", pad: "repeat" })
    fake.dispatch(0, "MESSAGE_CREATE", { m: "after" })
    expect(bomb).toBeGreaterThan(0)
    expect(big).toBeGreaterThan(0)
    await gateway.waitForLines(() => ["before", "between", "after"].every((m) => markers(gateway).includes(m)), 60_000)
    await gateway.waitForLog(new RegExp(`dropped MESSAGE_CREATE \\(seq ${big}\\)`), 10_000)
    expect(gateway.stderr()).toMatch(new RegExp(`dropped GUILD_CREATE \\(seq ${bomb}\\) of \\d+ bytes: over limits.payload_size`))
    // Nothing was forwarded for them, and the session went on (no reconnect, no identify).
    expect(gateway.lines.some((l) => l.includes("\"pad\""))).toBe(false)
    expect(fake.identifies.length).toBe(1)
    expect(fake.resumes.length).toBe(0)
    const peak = peakRssMiB(gateway.child.pid!)
    console.log(`oversized/${compress}: peak RSS ${peak.toFixed(0)} MiB (bound ${RSS_BOUND_MIB})`)
    expect(peak).toBeLessThan(RSS_BOUND_MIB)
    expect((await gateway.kill("SIGTERM")).code).toBe(0)
  }, 120_000)

  it("a websocket message over limits.frame_size cannot be read past: a clear line, a new session, and events flow again", async () => {
    fake = await startFakeDiscord({ token: "t", shardCount: 1, maxConcurrency: 1 })
    const gateway = gateways.track(spawnGateway({
      env: {
        DISCORD_TOKEN: "t",
        DISCORD_EVENTS: "MESSAGE_CREATE",
        DISCORD_API_PROTOCOL: "http",
        DISCORD_API_HOST: fake.host,
        DISCORD_COMPRESS: compress,
        LIMITS_FRAME_SIZE: "4MiB",
        LOG_LEVEL: "info"
      }
    }))
    await fake.waitFor(() => fake!.readyShards().length === 1, 20_000, "READY")
    // Random bytes do not compress: the websocket message itself is over the 4 MiB frame cap.
    fake.sendOversized(0, { bytes: 8 * 1024 * 1024, t: "GUILD_CREATE", pad: "random" })
    await gateway.waitForLog(/over limits\.frame_size \(4194304 bytes\); starting a new session/, 30_000)
    await fake.waitFor(() => fake!.identifies.length === 2 && fake!.readyShards().length === 1, 20_000, "a new session")
    fake.dispatch(0, "MESSAGE_CREATE", { m: "fresh" })
    await gateway.waitForLines(() => markers(gateway).includes("fresh"), 10_000)
    expect(peakRssMiB(gateway.child.pid!)).toBeLessThan(RSS_BOUND_MIB)
  }, 90_000)
})
