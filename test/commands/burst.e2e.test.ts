// A burst of 300 commands to one shard: all are sent, in order, paced under Discord's 120
// payloads per 60 s (heartbeats included), so the fake never closes the connection with 4008.
// This takes a little over two minutes of real time by design; it has its own file so it runs
// alongside the other tests.
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest"
import { type FakeDiscord, startFakeDiscord } from "../fake-discord/FakeDiscord.ts"
import { reaper, spawnGateway } from "../support/gateway.ts"
import { finalCounters, gatewayEnv, markerOf, presenceD } from "./support.ts"

const procs = reaper()
let fake: FakeDiscord
const COUNT = 300
const WINDOW_MS = 60_000

beforeAll(async () => {
  fake = await startFakeDiscord({ token: "burst-token", shardCount: 1 })
})
afterEach(() => procs.killAll())
afterAll(() => fake.close())

/** Most timestamps in any window of `ms` (timestamps sorted). */
const busiestWindow = (times: ReadonlyArray<number>, ms: number): number => {
  let most = 0
  let start = 0
  for (let end = 0; end < times.length; end++) {
    while (times[end]! - times[start]! >= ms) start++
    most = Math.max(most, end - start + 1)
  }
  return most
}

describe("a burst of commands to one shard", () => {
  it(`sends all ${COUNT}, in order, about 115 per 60 s, without a rate-limit close`, async () => {
    const gateway = procs.track(spawnGateway({ env: gatewayEnv(fake, 1) }))
    await fake.waitFor(() => fake.readyShards().length === 1, 30_000, "shard ready")
    const connectionId = fake.sessionOf(0)!.connectionId
    let text = ""
    for (let i = 0; i < COUNT; i++) text += `${JSON.stringify({ op: 3, shard_id: 0, d: presenceD(`burst-${i}`) })}\n`
    gateway.child.stdin!.write(text)

    const burst = () => fake.received.filter((r) => markerOf(r)?.startsWith("burst-"))
    await fake.waitFor(() => burst().length >= COUNT, 200_000, `${COUNT} commands`)
    const commands = burst()
    expect(commands.map(markerOf)).toEqual(Array.from({ length: COUNT }, (_, i) => `burst-${i}`))
    // One connection all along: never closed for the rate (4008) or anything else.
    expect(fake.counters.rateLimitCloses).toBe(0)
    expect(fake.closes).toEqual([])
    expect(new Set(commands.map((r) => r.connectionId))).toEqual(new Set([connectionId]))

    const times = commands.map((r) => r.at)
    const everything = fake.received.filter((r) => r.connectionId === connectionId).map((r) => r.at)
    // Within Discord's limit counting every payload (identify and heartbeats too), with the
    // commands capped at 115 per window: paced, not merely lucky.
    expect(busiestWindow(everything, WINDOW_MS)).toBeLessThanOrEqual(120)
    expect(busiestWindow(times, WINDOW_MS)).toBeLessThanOrEqual(115)
    // ...and not slower than it needs to be: the first window is (nearly) full, and 300
    // commands need three windows.
    const first = times.filter((t) => t - times[0]! < WINDOW_MS).length
    expect(first).toBeGreaterThanOrEqual(110)
    const span = times.at(-1)! - times[0]!
    expect(span).toBeGreaterThanOrEqual(2 * WINDOW_MS - 2_000)
    expect(span).toBeLessThan(2 * WINDOW_MS + 15_000)
    console.log(`burst: first window ${first} commands, busiest window ${busiestWindow(times, WINDOW_MS)} commands / ${busiestWindow(everything, WINDOW_MS)} payloads, all ${COUNT} in ${(span / 1000).toFixed(1)}s`)

    expect((await gateway.kill("SIGTERM")).code).toBe(0)
    expect(finalCounters(gateway).sent).toBe(COUNT)
  }, 240_000)
})
