// Child process bookkeeping for the benchmark: per-process CPU and memory from /proc, a registry
// that kills every child we started when the bench exits (normally, on error or on a signal),
// and bounded waiting.
import { execFileSync } from "node:child_process"
import type { ChildProcess } from "node:child_process"
import { readFileSync } from "node:fs"

const CLK_TCK = (() => {
  try {
    return Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100
  } catch {
    return 100
  }
})()

/** User + system CPU of a process (all its threads), in microseconds; resolution is one clock tick. */
export function cpuMicros(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
  // The command name may contain spaces and parentheses: fields start after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
  const ticks = Number(fields[11]) + Number(fields[12])
  return (ticks * 1_000_000) / CLK_TCK
}

export interface Memory {
  /** Resident set now, bytes. */
  readonly rss: number
  /** Peak resident set (VmHWM), bytes. */
  readonly hwm: number
}

export function memory(pid: number): Memory {
  const status = readFileSync(`/proc/${pid}/status`, "utf8")
  const kb = (key: string): number => {
    const match = new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(status)
    if (match === null) throw new Error(`/proc/${pid}/status has no ${key}`)
    return Number(match[1]) * 1024
  }
  return { rss: kb("VmRSS"), hwm: kb("VmHWM") }
}

// ---- children ------------------------------------------------------------------------------

const children = new Set<ChildProcess>()

/** Registers a child so it is killed when the bench exits, whatever the reason. */
export function track<T extends ChildProcess>(child: T): T {
  children.add(child)
  child.once("exit", () => children.delete(child))
  return child
}

function killAll(): void {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
  }
  children.clear()
}

let installed = false
/** Installs the exit hooks once: children never outlive the bench. */
export function installCleanup(): void {
  if (installed) return
  installed = true
  process.on("exit", killAll)
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.on(signal, () => {
      process.stderr.write(`bench: ${signal}, stopping children\n`)
      killAll()
      process.exit(130)
    })
  }
}

export function exited(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) {
    return Promise.resolve({ code: child.exitCode, signal: child.signalCode })
  }
  return new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })))
}

/** SIGTERM, then SIGKILL if the child is still there after `graceMs`. */
export async function stop(child: ChildProcess, graceMs = 15_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  const done = exited(child)
  if (child.exitCode !== null || child.signalCode !== null) return done
  child.kill("SIGTERM")
  const timer = setTimeout(() => child.kill("SIGKILL"), graceMs)
  try {
    return await done
  } finally {
    clearTimeout(timer)
  }
}

/** Keeps the last `limit` characters a stream wrote, for error messages. */
export function tail(stream: NodeJS.ReadableStream | null, limit = 4000): () => string {
  let text = ""
  stream?.on("data", (chunk: Buffer | string) => {
    text = (text + chunk.toString()).slice(-limit)
  })
  return () => text
}

/** Rejects if the child exits before `promise` settles: a crashed client fails the run at once. */
export function unlessExits<T>(child: ChildProcess, name: string, promise: Promise<T>, stderr?: () => string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onExit = (code: number | null, signal: NodeJS.Signals | null): void => {
      const last = stderr?.().trim().split("\n").slice(-5).join("\n") ?? ""
      reject(new Error(`${name} exited early (code ${code}, signal ${signal})${last === "" ? "" : `:\n${last}`}`))
    }
    if (child.exitCode !== null || child.signalCode !== null) return onExit(child.exitCode, child.signalCode)
    child.once("exit", onExit)
    promise.then(
      (value) => {
        child.off("exit", onExit)
        resolve(value)
      },
      (error: unknown) => {
        child.off("exit", onExit)
        reject(error)
      }
    )
  })
}

/** Polls `check` every `intervalMs` until it returns true; rejects after `timeoutMs`. */
export async function waitUntil(check: () => boolean | Promise<boolean>, timeoutMs: number, label: string, intervalMs = 50): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (await check()) return
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${label}`)
    await new Promise((resolve) => setTimeout(resolve, intervalMs))
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

export function withTimeout<T>(promise: Promise<T>, timeoutMs: number, label: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms: ${label}`)), timeoutMs)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

// ---- the rest of the machine ---------------------------------------------------------------

export interface SystemCpu {
  /** CPU time spent by everything on the machine (user, nice, system, irq, softirq), µs. */
  readonly busy: number
  /** Time the hypervisor gave our virtual CPUs to someone else, µs. */
  readonly steal: number
}

export function systemCpu(): SystemCpu {
  const line = readFileSync("/proc/stat", "utf8").split("\n", 1)[0]!
  const [user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).slice(1).map(Number)
  const us = (ticks: number | undefined): number => ((ticks ?? 0) * 1_000_000) / CLK_TCK
  return { busy: us(user) + us(nice) + us(system) + us(irq) + us(softirq), steal: us(steal) }
}

/** BENCH_QUIET_WAIT_MS shortens the wait while iterating (0: never wait). */
const QUIET_WAIT_MS = Number(process.env.BENCH_QUIET_WAIT_MS ?? 60_000)

/**
 * Other work on the machine skews every figure (this box is shared): wait, bounded, until the
 * whole machine uses less than `maxCores` for a second. Returns the load last seen, in cores.
 */
export async function waitQuiet(log: (line: string) => void, maxWaitMs = QUIET_WAIT_MS, maxCores = 0.3): Promise<number> {
  const deadline = Date.now() + maxWaitMs
  let warned = false
  for (;;) {
    const before = systemCpu()
    await sleep(1_000)
    const cores = (systemCpu().busy - before.busy) / 1_000_000
    if (cores < maxCores) return cores
    if (Date.now() > deadline) {
      log(`the machine stayed busy (${cores.toFixed(2)} cores used by other processes); measuring anyway`)
      return cores
    }
    if (!warned) log(`waiting for the machine to quieten (${cores.toFixed(2)} cores in use by other processes)`)
    warned = true
  }
}
