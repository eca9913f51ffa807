// A throwaway three-node Redis Cluster on free loopback ports, started with the installed
// redis-server, for tests that must see the gateway work against a cluster.
import { type ChildProcess, execFile, spawn } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { promisify } from "node:util"

const run = promisify(execFile)

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const server = createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })

export interface RedisCluster {
  readonly ports: ReadonlyArray<number>
  /** For REDIS_URL: several urls mean a cluster to the gateway. */
  readonly urls: string
  readonly stop: () => Promise<void>
}

export const startRedisCluster = async (): Promise<RedisCluster> => {
  const dir = mkdtempSync(join(tmpdir(), "redis-cluster-"))
  const ports: Array<number> = []
  const children: Array<ChildProcess> = []
  // Cluster nodes also listen on port + 10000 for their bus; pick ports whose bus port is free too.
  while (ports.length < 3) {
    const port = await freePort()
    if (port > 55_000 || ports.includes(port)) continue
    ports.push(port)
  }
  for (const port of ports) {
    const child = spawn("redis-server", [
      "--port", String(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
      "--cluster-config-file", join(dir, `nodes-${port}.conf`), "--dir", dir,
      "--save", "", "--appendonly", "no", "--protected-mode", "no"
    ], { stdio: "ignore" })
    children.push(child)
  }
  const stop = async () => {
    for (const child of children) child.kill("SIGKILL")
    await Promise.all(children.map((c) => new Promise((r) => (c.exitCode !== null ? r(null) : c.once("exit", r)))))
    rmSync(dir, { recursive: true, force: true })
  }
  try {
    for (const port of ports) await waitFor(async () => (await run("redis-cli", ["-p", String(port), "ping"])).stdout.includes("PONG"))
    await run("redis-cli", ["--cluster", "create", ...ports.map((p) => `127.0.0.1:${p}`), "--cluster-replicas", "0", "--cluster-yes"])
    for (const port of ports) {
      await waitFor(async () => (await run("redis-cli", ["-p", String(port), "cluster", "info"])).stdout.includes("cluster_state:ok"))
    }
  } catch (error) {
    await stop()
    throw error
  }
  return { ports, urls: ports.map((p) => `redis://127.0.0.1:${p}`).join(","), stop }
}

const waitFor = async (check: () => Promise<boolean>, timeoutMs = 15_000) => {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    try {
      if (await check()) return
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) throw new Error("redis cluster did not come up")
    await new Promise((r) => setTimeout(r, 100))
  }
}
