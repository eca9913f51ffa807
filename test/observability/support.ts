// Helpers for the end-to-end observability tests: a private redis-server that a test may kill and
// restart, free ports, and reading the daemon's metrics port from its startup log line.
import { type ChildProcess, spawn } from "node:child_process"
import { createServer } from "node:net"
import type { AddressInfo } from "node:net"
import type { GatewayProcess } from "../support/gateway.ts"
import { parseExposition, type Sample } from "./exposition.ts"

export const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const server = createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo
      server.close(() => resolve(port))
    })
  })

export interface PrivateRedis {
  readonly port: number
  readonly start: () => Promise<void>
  readonly stop: () => Promise<void>
}

/** A throwaway redis-server (no persistence) on its own port; start/stop may repeat. */
export const privateRedis = async (extraArgs: ReadonlyArray<string> = []): Promise<PrivateRedis> => {
  const port = await freePort()
  let child: ChildProcess | undefined
  return {
    port,
    start: () =>
      new Promise<void>((resolve, reject) => {
        const proc = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", ...extraArgs], {
          stdio: ["ignore", "pipe", "pipe"]
        })
        child = proc
        let out = ""
        const timer = setTimeout(() => reject(new Error(`redis-server on ${port} did not start:\n${out}`)), 10_000)
        proc.once("error", (error) => {
          clearTimeout(timer)
          reject(error)
        })
        proc.stdout!.on("data", (chunk: Buffer) => {
          out += chunk.toString()
          if (out.includes("Ready to accept connections")) {
            clearTimeout(timer)
            resolve()
          }
        })
      }),
    stop: async () => {
      const proc = child
      child = undefined
      if (proc === undefined || proc.exitCode !== null) return
      const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()))
      proc.kill("SIGKILL")
      await exited
    }
  }
}

export const redisServerInstalled = await new Promise<boolean>((resolve) => {
  const proc = spawn("redis-server", ["--version"], { stdio: "ignore" })
  proc.once("error", () => resolve(false))
  proc.once("exit", (code) => resolve(code === 0))
})

/** The metrics server's base url, from the daemon's "serving metrics at ..." log line. */
export const metricsBase = async (g: GatewayProcess): Promise<string> => {
  await g.waitForLog(/serving metrics at http:\/\/\S+/)
  const m = /serving metrics at (http:\/\/[^/\s"]+)/.exec(g.stderr())
  return m![1]!
}

export const scrape = async (base: string, path = "/metrics"): Promise<{ text: string; samples: Array<Sample> }> => {
  const res = await fetch(`${base}${path}`)
  if (res.status !== 200) throw new Error(`GET ${path}: ${res.status}`)
  const text = await res.text()
  return { text, samples: parseExposition(text).samples }
}

export const probe = async (base: string, path: string): Promise<{ status: number; body: string }> => {
  const res = await fetch(`${base}${path}`)
  return { status: res.status, body: await res.text() }
}

/** Polls until `check` passes (it throws or returns false otherwise). */
export const eventually = async <A>(check: () => Promise<A | false>, timeoutMs = 20_000, what = "condition"): Promise<A> => {
  const deadline = Date.now() + timeoutMs
  let last: unknown
  for (;;) {
    try {
      const value = await check()
      if (value !== false) return value
    } catch (error) {
      last = error
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ""}`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}
