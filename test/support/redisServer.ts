// A redis-server of a test's own, on a free port, durable on every write (appendfsync always), so
// a test can kill and restart it without touching the shared Redis on 6379.
import { type ChildProcess, spawn } from "node:child_process"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Redis } from "ioredis"
import { freePort, waitFor } from "../brokers/support.ts"

export interface OwnRedis {
  readonly port: number
  readonly url: string
  /** SIGKILL, resolved once the process is gone. */
  readonly kill: () => Promise<void>
  /** Starts it again on the same port and data folder; resolves once it answers PING. */
  readonly start: () => Promise<void>
}

export const startOwnRedis = async (): Promise<OwnRedis> => {
  const port = await freePort()
  const dir = mkdtempSync(join(tmpdir(), "redis-own-"))
  let child: ChildProcess | undefined
  const start = async () => {
    child = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--dir", dir, "--appendonly", "yes", "--appendfsync", "always", "--save", ""], { stdio: "ignore" })
    await waitFor("redis", async () => {
      const r = new Redis({ port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null })
      r.on("error", () => {})
      try {
        await r.connect()
        return (await r.ping()) === "PONG"
      } catch {
        return false
      } finally {
        r.disconnect()
      }
    })
  }
  const kill = async () => {
    const running = child
    if (running === undefined || running.exitCode !== null) return
    running.kill("SIGKILL")
    await new Promise((r) => running.once("exit", r))
  }
  await start()
  return { port, url: `redis://127.0.0.1:${port}`, kill, start }
}
