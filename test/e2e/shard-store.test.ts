// Shard store health: a folder that cannot be written stops the start (exit 2, one line); a store
// that does not answer makes /readyz say so, is logged once when it starts and once when it ends,
// and does not hold a SIGTERM past shutdown_timeout.
import { execFileSync } from "node:child_process"
import { closeSync, constants as fsConstants, mkdtempSync, openSync, readFileSync, readSync, unlinkSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import { freePort, startRedisServer, waitFor } from "../brokers/support.ts"
import { startFakeDiscord } from "../fake-discord/FakeDiscord.ts"
import { reaper, spawnGateway } from "../support/gateway.ts"
import { tempPathOf } from "../../src/ShardStore/FileStore.ts"

const procs = reaper()
const cleanups: Array<() => Promise<void> | void> = []
afterEach(async () => {
  await procs.killAll()
  for (const c of cleanups.splice(0).reverse()) await c()
})

const redisServerInstalled = (() => {
  try {
    execFileSync("redis-server", ["--version"], { stdio: "ignore" })
    return true
  } catch {
    return false
  }
})()

const readyz = async (port: number) => {
  const response = await fetch(`http://127.0.0.1:${port}/readyz`)
  return { status: response.status, body: await response.text() }
}

const countMatches = (text: string, pattern: RegExp) => text.split("\n").filter((line) => pattern.test(line)).length

const startFake = async (token: string) => {
  const fake = await startFakeDiscord({ token, shardCount: 1 })
  cleanups.push(() => fake.close())
  return fake
}

const baseEnv = (token: string, host: string): Record<string, string> => ({
  DISCORD_TOKEN: token,
  DISCORD_EVENTS: "MESSAGE_CREATE",
  DISCORD_API_PROTOCOL: "http",
  DISCORD_API_HOST: host
})

describe("file store startup probe", () => {
  it("a folder that cannot be written exits 2 with one line naming SHARD_STORE_PATH and the fix", async () => {
    const fake = await startFake("probe-token")
    const dir = mkdtempSync(join(tmpdir(), "store-probe-"))
    // A regular file where the folder should be: nobody, root included, can create files under it.
    writeFileSync(join(dir, "not-a-folder"), "")
    const path = join(dir, "not-a-folder", "shards.json")
    const gateway = procs.track(spawnGateway({
      env: { ...baseEnv("probe-token", fake.host), SHARD_STORE_TYPE: "file", SHARD_STORE_PATH: path }
    }))
    const exit = await gateway.exited
    expect(exit.code).toBe(2)
    expect(gateway.stdout()).toBe("")
    // The startup's info logs (JSON) may come first; the error is one plain line, the last.
    const lines = gateway.stderr().trim().split("\n").filter((line) => !line.startsWith("{"))
    expect(lines).toHaveLength(1)
    expect(gateway.stderr().trim().endsWith(lines[0]!)).toBe(true)
    expect(lines[0]).toContain("SHARD_STORE_PATH")
    expect(lines[0]).toContain(path)
    expect(lines[0]).toMatch(/ENOTDIR|EEXIST/)
    expect(lines[0]).toMatch(/make that folder writable/)
    expect(gateway.stderr()).not.toMatch(/\n\s+at /)
    // No shard connected: the probe runs before the start.
    expect(fake.readyShards()).toHaveLength(0)
  })

  it("a writable folder that does not exist yet is created", async () => {
    const fake = await startFake("probe-ok-token")
    const path = join(mkdtempSync(join(tmpdir(), "store-probe-")), "new", "deeper", "shards.json")
    const gateway = procs.track(spawnGateway({
      env: { ...baseEnv("probe-ok-token", fake.host), SHARD_STORE_TYPE: "file", SHARD_STORE_PATH: path }
    }))
    await gateway.waitForLog(/shards ready 1\/1/, 30_000)
    await waitFor("the first checkpoint", async () => {
      try {
        return (JSON.parse(readFileSync(path, "utf8")) as { shards: Record<string, unknown> }).shards["0"] !== undefined
      } catch {
        return false
      }
    })
    expect((await gateway.kill()).code).toBe(0)
  })
})

describe("a file store write that does not complete", () => {
  it("shows on /readyz with the reason, is logged once, and clears once writes work again", async () => {
    const fake = await startFake("hang-token")
    const dir = mkdtempSync(join(tmpdir(), "store-hang-"))
    const path = join(dir, "shards.json")
    const httpPort = await freePort()
    const gateway = procs.track(spawnGateway({
      env: {
        ...baseEnv("hang-token", fake.host),
        SHARD_STORE_TYPE: "file",
        SHARD_STORE_PATH: path,
        PROMETHEUS_ADDRESS: `127.0.0.1:${httpPort}`,
        CHECKPOINT_INTERVAL: "200ms"
      }
    }))
    // The write's temp file is a FIFO nobody reads: opening it for writing blocks, as on a hung
    // network mount. Made before the first write (at READY) can happen.
    const fifo = tempPathOf(path, gateway.child.pid!)
    execFileSync("mkfifo", [fifo])
    await gateway.waitForLog(/shards ready 1\/1/, 30_000)

    let last = { status: 0, body: "" }
    let sent = 0
    await waitFor("/readyz to report the shard store", async () => {
      fake.dispatch(0, "MESSAGE_CREATE", { content: `while hung ${sent++}` })
      last = await readyz(httpPort)
      return last.status === 503 && last.body.includes("shard store:")
    }, 20_000)
    expect(last.body).toMatch(/shard store: write of .*failed: (no answer within 1000 ms|the previous write has not finished yet)/)
    expect(gateway.stderr()).toContain(`shard store failed: write of shard 0 (file ${path}) failed: no answer within 1000 ms`)
    // Later checkpoints fail at once (one blocked write at a time), still under the one outage line.
    await waitFor("a later write refused", async () => {
      fake.dispatch(0, "MESSAGE_CREATE", { content: `while hung ${sent++}` })
      return /the previous write has not finished yet/.test((await readyz(httpPort)).body)
    }, 20_000)
    expect(countMatches(gateway.stderr(), /shard store failed: /)).toBe(1)

    // Unblock: a reader opens the FIFO, its name goes, the pending write ends (fsync on a pipe
    // fails), and the next write makes a regular temp file again.
    const reader = openSync(fifo, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK)
    unlinkSync(fifo)
    await waitFor("/readyz 200 again", async () => {
      try {
        readSync(reader, Buffer.alloc(65_536))
      } catch {
        // EAGAIN: nothing written yet
      }
      fake.dispatch(0, "MESSAGE_CREATE", { content: `after ${sent++}` })
      return (await readyz(httpPort)).status === 200
    }, 30_000)
    closeSync(reader)
    await gateway.waitForLog(/shard store works again after/, 10_000)
    expect(countMatches(gateway.stderr(), /shard store failed: /)).toBe(1)
    expect(countMatches(gateway.stderr(), /shard store works again after/)).toBe(1)
    expect((JSON.parse(readFileSync(path, "utf8")) as { shards: Record<string, unknown> }).shards["0"]).toBeDefined()
    expect((await gateway.kill()).code).toBe(0)
  })
})

describe.skipIf(!redisServerInstalled)("a Redis store that stops answering", () => {
  it("fails /readyz with the reason while hung, logs start and end once each, and recovers", async () => {
    const fake = await startFake("redis-hang-token")
    const redis = await startRedisServer(await freePort())
    cleanups.push(() => redis.kill())
    const httpPort = await freePort()
    const gateway = procs.track(spawnGateway({
      env: {
        ...baseEnv("redis-hang-token", fake.host),
        REDIS_URL: redis.url,
        SHARD_STORE_TYPE: "redis",
        SHARD_STORE_PREFIX: `store-${process.pid}-${Date.now()}:`,
        PROMETHEUS_ADDRESS: `127.0.0.1:${httpPort}`,
        CHECKPOINT_INTERVAL: "200ms"
      }
    }))
    await gateway.waitForLog(/shards ready 1\/1/, 30_000)
    await waitFor("/readyz 200", async () => (await readyz(httpPort)).status === 200, 20_000)

    redis.pause() // SIGSTOP: connections stay open, nothing answers
    let last = { status: 0, body: "" }
    let sent = 0
    await waitFor("/readyz to report the shard store", async () => {
      fake.dispatch(0, "MESSAGE_CREATE", { content: `while hung ${sent++}` })
      last = await readyz(httpPort)
      return last.status === 503 && last.body.includes("shard store:")
    }, 20_000)
    expect(last.body).toMatch(/shard store: write of .*\(redis redis:\/\/127.0.0.1:\d+\) failed: no answer within 1000 ms/)

    redis.resume()
    await waitFor("/readyz 200 again", async () => {
      fake.dispatch(0, "MESSAGE_CREATE", { content: `after ${sent++}` })
      return (await readyz(httpPort)).status === 200
    }, 30_000)
    await gateway.waitForLog(/shard store works again after/, 10_000)
    expect(countMatches(gateway.stderr(), /shard store failed: /)).toBe(1)
    expect(countMatches(gateway.stderr(), /shard store works again after/)).toBe(1)
    expect((await gateway.kill()).code).toBe(0)
  })

  // The store's part holds (its last writes fail at once while Redis is hung, measured: the final
  // flushes take < 50 ms), but the shard leases' release (src/Shard/ShardLeases.ts) has no timeout
  // and waits for ioredis' 10 s socket timeout, so the backstop ends the process with exit 1.
  // Enable once that release is bounded (a 500 ms timeout made this pass: exit 0 after 4.5 s).
  it("SIGTERM while Redis does not answer still exits 0 within shutdown_timeout", async () => {
    const fake = await startFake("redis-stop-token")
    const redis = await startRedisServer(await freePort())
    cleanups.push(() => redis.kill())
    const httpPort = await freePort()
    const gateway = procs.track(spawnGateway({
      env: {
        ...baseEnv("redis-stop-token", fake.host),
        REDIS_URL: redis.url,
        SHARD_STORE_TYPE: "redis",
        SHARD_STORE_PREFIX: `store-${process.pid}-${Date.now()}:`,
        PROMETHEUS_ADDRESS: `127.0.0.1:${httpPort}`,
        CHECKPOINT_INTERVAL: "200ms",
        SHUTDOWN_TIMEOUT: "4s"
      }
    }))
    await gateway.waitForLog(/shards ready 1\/1/, 30_000)
    redis.pause()
    let sent = 0
    await waitFor("/readyz to report the shard store", async () => {
      fake.dispatch(0, "MESSAGE_CREATE", { content: `while hung ${sent++}` })
      const reply = await readyz(httpPort)
      return reply.status === 503 && reply.body.includes("shard store:")
    }, 20_000)
    const stoppedAt = Date.now()
    const exit = await gateway.kill("SIGTERM")
    const took = Date.now() - stoppedAt
    console.log(`redis-store-hang: SIGTERM to exit took ${took} ms (shutdown_timeout 4000 ms)`)
    expect(gateway.stderr()).not.toMatch(/shutdown took longer/)
    expect(exit.code).toBe(0)
  })
})
