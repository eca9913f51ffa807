// Spawns the built daemon (dist/main.js) the way a user runs it, and collects what it prints.
import { type ChildProcess, spawn } from "node:child_process"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"

export const MAIN = resolve(import.meta.dirname, "../../dist/main.js")

export interface GatewayProcess {
  readonly child: ChildProcess
  /** Complete stdout lines so far. */
  readonly lines: Array<string>
  readonly stdout: () => string
  readonly stderr: () => string
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  /** Resolves when a stderr log line matches. */
  readonly waitForLog: (pattern: RegExp, timeoutMs?: number) => Promise<void>
  readonly waitForLines: (predicate: (lines: ReadonlyArray<string>) => boolean, timeoutMs?: number) => Promise<void>
  readonly kill: (signal?: NodeJS.Signals) => Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

export interface SpawnOptions {
  readonly env: Record<string, string>
  readonly args?: ReadonlyArray<string>
  /** Defaults to a fresh empty folder, so the repository's gateway.toml is not picked up. */
  readonly cwd?: string
}

export const freshDir = () => mkdtempSync(join(tmpdir(), "gateway-test-"))

const until = (check: () => boolean, timeoutMs: number, what: () => string) =>
  new Promise<void>((resolvePromise, reject) => {
    if (check()) return resolvePromise()
    const timer = setInterval(() => {
      if (!check()) return
      clearInterval(timer)
      clearTimeout(deadline)
      resolvePromise()
    }, 20)
    const deadline = setTimeout(() => {
      clearInterval(timer)
      reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what()}`))
    }, timeoutMs)
  })

export const spawnGateway = (options: SpawnOptions): GatewayProcess => {
  const child = spawn(process.execPath, [MAIN, ...(options.args ?? [])], {
    cwd: options.cwd ?? freshDir(),
    // Only what the test gives, plus PATH: nothing from the developer's shell leaks in.
    env: { PATH: process.env.PATH ?? "", ...options.env },
    stdio: ["pipe", "pipe", "pipe"]
  })
  let out = ""
  let err = ""
  const lines: Array<string> = []
  let partial = ""
  child.stdout!.setEncoding("utf8")
  child.stdout!.on("data", (chunk: string) => {
    out += chunk
    partial += chunk
    const parts = partial.split("\n")
    partial = parts.pop() ?? ""
    for (const line of parts) if (line.length > 0) lines.push(line)
  })
  child.stderr!.setEncoding("utf8")
  child.stderr!.on("data", (chunk: string) => {
    err += chunk
    if (process.env.GATEWAY_TEST_VERBOSE) process.stderr.write(chunk)
  })
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolvePromise) =>
    child.once("exit", (code, signal) => resolvePromise({ code, signal }))
  )
  let done = false
  void exited.then(() => {
    done = true
  })
  const tail = () => `\n--- stderr tail ---\n${err.slice(-3000)}`
  return {
    child,
    lines,
    stdout: () => out,
    stderr: () => err,
    exited,
    waitForLog: (pattern, timeoutMs = 20_000) => until(() => pattern.test(err), timeoutMs, () => `${pattern}${tail()}`),
    waitForLines: (predicate, timeoutMs = 20_000) => until(() => predicate(lines), timeoutMs, () => `stdout lines (${lines.length} so far)${tail()}`),
    kill: async (signal = "SIGTERM") => {
      if (!done) child.kill(signal)
      const timer = setTimeout(() => child.kill("SIGKILL"), 20_000)
      const result = await exited
      clearTimeout(timer)
      return result
    }
  }
}

/** Every test's gateway goes away even when the test fails. */
export const reaper = () => {
  const running = new Set<GatewayProcess>()
  return {
    track: (g: GatewayProcess) => {
      running.add(g)
      return g
    },
    killAll: async () => {
      await Promise.all([...running].map((g) => g.kill("SIGKILL")))
      running.clear()
    }
  }
}
