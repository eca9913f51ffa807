// Commands on standard input, end to end: the built daemon against the fake Discord.
import { spawn } from "node:child_process"
import { encode } from "@msgpack/msgpack"
import { afterEach, beforeEach, describe, expect, it } from "vitest"
import { type FakeDiscord, startFakeDiscord } from "../fake-discord/FakeDiscord.ts"
import { freshDir, MAIN, reaper, spawnGateway } from "../support/gateway.ts"
import { arrivals, BIG_GUILD, finalCounters, gatewayEnv, guildOn, logLines, membersD, presenceD, sleep } from "./support.ts"

const procs = reaper()
let fake: FakeDiscord
const TOKEN = "stdin-e2e-token"
const IDENTIFY_TOKEN = "NzkyNzE1NDU0MTk2MDg4ODQy.X-hvzA.Ovy4MCQywSkoMRRclStW4xAYK7I"

// A fresh fake per test, so one test's identifies do not use up the next one's identify bucket.
beforeEach(async () => {
  fake = await startFakeDiscord({ token: TOKEN, shardCount: 2, maxConcurrency: 2 })
})
afterEach(async () => {
  await procs.killAll()
  await fake.close()
})

const line = (value: unknown) => `${JSON.stringify(value)}\n`

describe("commands on stdin", () => {
  it("routes JSON lines and MessagePack by shard_id, guild_id and broadcast, exactly once; refuses bad ones and keeps running", async () => {
    const gateway = procs.track(spawnGateway({ env: gatewayEnv(fake, 2) }))
    await fake.waitFor(() => fake.readyShards().length === 2, 30_000, "2 shards ready")
    const stdin = gateway.child.stdin!
    stdin.write(line({ op: 8, shard_id: 1, d: membersD(guildOn(0, 2), "in-shard-id") })) // explicit shard wins
    stdin.write(line({ op: 8, d: membersD(BIG_GUILD, "in-d-guild") })) // (big >> 22) % 2 = 1
    stdin.write(line({ op: 8, guild_id: guildOn(0, 2, 5), d: membersD(guildOn(0, 2, 5), "in-top-guild") }))
    stdin.write(`{"op":8,"guild_id":${BIG_GUILD},"d":{"guild_id":${BIG_GUILD},"query":"","limit":0,"nonce":"in-number-guild"}}\n`)
    stdin.write(line({ op: 3, d: presenceD("in-all") }))
    // MessagePack, straight after JSON on the same stream: a uint64 guild id and a broadcast.
    stdin.write(Buffer.from(encode({ op: 8, d: { guild_id: BigInt(BIG_GUILD), query: "", limit: 0, nonce: "in-pack" } }, { useBigInt64: true })))
    stdin.write(Buffer.from(encode({ op: 3, d: presenceD("in-pack-all") })))
    // Bad ones: each refused, none reaches Discord, none stops the gateway.
    stdin.write("{this is not json\n")
    stdin.write(line({ op: 2, d: { token: IDENTIFY_TOKEN, intents: 0, properties: {} } }))
    stdin.write(line({ op: 99, d: {} }))
    stdin.write(line({ op: 3, shard_id: 0, d: { ...presenceD("in-too-large"), padding: "x".repeat(5000) } }))
    stdin.write(line({ op: 3, shard_id: 5, d: presenceD("in-bad-shard") }))
    stdin.write(Buffer.from(encode([1, 2, 3])))
    stdin.write("\n")
    stdin.write(line({ op: 3, shard_id: 0, d: presenceD("in-after") }))

    const expected = [
      "in-shard-id@1", "in-d-guild@1", "in-top-guild@0", "in-number-guild@1", "in-all@0", "in-all@1",
      "in-pack@1", "in-pack-all@0", "in-pack-all@1", "in-after@0"
    ].sort()
    await fake.waitFor(() => arrivals(fake, "in-").length >= expected.length, 15_000, "the commands")
    await sleep(500) // room for a duplicate to show up
    expect(arrivals(fake, "in-")).toEqual(expected)
    // What Discord got is op and d only, the uint64 guild id as a string.
    const pack = fake.received.find((r) => (r.d as { nonce?: string }).nonce === "in-pack")!
    expect(pack.d).toEqual(membersD(BIG_GUILD, "in-pack"))
    const numeric = fake.received.find((r) => (r.d as { nonce?: string }).nonce === "in-number-guild")!
    expect(numeric.d).toEqual(membersD(BIG_GUILD, "in-number-guild"))
    // Nothing made Discord close a connection; only the gateway's own identifies went out as op 2.
    expect(fake.closes.filter((c) => c.by === "server")).toEqual([])
    expect(fake.received.filter((r) => r.op === 2).length).toBe(2)
    expect(gateway.child.exitCode).toBeNull()

    const exit = await gateway.kill("SIGTERM")
    expect(exit.code).toBe(0)
    const counters = finalCounters(gateway)
    expect(counters.received).toBe(8)
    expect(counters.sent).toBe(10)
    expect(Object.fromEntries(counters.refused)).toEqual({ malformed: 1, op_not_allowed: 2, too_large: 1, bad_shard_id: 1, not_object: 1 })
    const stderr = gateway.stderr()
    const warnings = logLines(gateway).filter((l) => l.level === "WARN").map((l) => l.message)
    expect(warnings.length).toBe(6)
    expect(warnings).toContainEqual(expect.stringMatching(/refused \(op_not_allowed\): op 99 is not a command/))
    expect(warnings).toContainEqual(expect.stringMatching(/refused \(bad_shard_id\): "shard_id" must be an integer from 0 to 1/))
    expect(stderr).not.toContain(IDENTIFY_TOKEN)
    expect(stderr).not.toContain(IDENTIFY_TOKEN.split(".")[0])
    expect(stderr).not.toContain(TOKEN)
    // Refusals echo at most ~100 characters of the command.
    const tooLarge = warnings.find((l) => l.includes("(too_large)"))!
    expect(tooLarge.split("; command: ")[1]!.length).toBeLessThanOrEqual(101)
  }, 60_000)

  it("refuses a command for a shard another process runs when there is no broker to forward it", async () => {
    const gateway = procs.track(spawnGateway({ env: gatewayEnv(fake, 2, { DISCORD_SHARD_IDS: "0" }) }))
    await gateway.waitForLog(/shards ready 1\/1|READY/, 30_000)
    await fake.waitFor(() => fake.readyShards().includes(0), 30_000, "shard 0 ready")
    gateway.child.stdin!.write(line({ op: 3, shard_id: 1, d: presenceD("nl-elsewhere") }))
    gateway.child.stdin!.write(line({ op: 3, d: presenceD("nl-all") }))
    gateway.child.stdin!.write(line({ op: 3, shard_id: 0, d: presenceD("nl-local") }))
    await fake.waitFor(() => arrivals(fake, "nl-").length >= 2, 10_000, "local commands")
    await gateway.waitForLog(/refused \(not_local\): shard 1 is not run by this process/)
    await sleep(300)
    expect(arrivals(fake, "nl-")).toEqual(["nl-all@0", "nl-local@0"])
    expect((await gateway.kill("SIGTERM")).code).toBe(0)
    expect(finalCounters(gateway).refused.get("not_local")).toBe(1)
  }, 60_000)

  it("keeps running when standard input ends, or was never there (</dev/null)", async () => {
    const gateway = procs.track(spawnGateway({ env: gatewayEnv(fake, 2) }))
    gateway.child.stdin!.write(line({ op: 3, shard_id: 1, d: presenceD("eof-last") }))
    gateway.child.stdin!.end()
    await gateway.waitForLog(/standard input ended/, 30_000)
    // A command written just before the end still goes out once the shard is ready.
    await fake.waitFor(() => arrivals(fake, "eof-").length === 1, 30_000, "the last command")
    await sleep(1_000)
    expect(gateway.child.exitCode).toBeNull()
    expect((await gateway.kill("SIGTERM")).code).toBe(0)

    // stdin on /dev/null, as a daemon started without a terminal gets it.
    const child = spawn(process.execPath, [MAIN], { cwd: freshDir(), env: { PATH: process.env.PATH ?? "", ...gatewayEnv(fake, 2) }, stdio: ["ignore", "ignore", "pipe"] })
    let err = ""
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => void (err += chunk))
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)))
    try {
      const deadline = Date.now() + 30_000
      while (!/standard input ended/.test(err) && Date.now() < deadline) await sleep(50)
      expect(err).toMatch(/standard input ended/)
      await sleep(1_500)
      expect(child.exitCode).toBeNull()
      child.kill("SIGTERM")
      expect(await exited).toBe(0)
    } finally {
      child.kill("SIGKILL")
    }
  }, 90_000)
})
