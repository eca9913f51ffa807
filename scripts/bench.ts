// `npm run bench`: measures our gateway against @discordjs/ws and a minimal ws+zlib loop (the
// ceiling) on the bundled fake Discord, which always runs in a process of its own. Prints the
// results as Markdown and writes them to bench/RESULTS.md (bench/RESULTS.quick.md with --quick).
//
//   node scripts/bench.ts [--quick] [--only throughput,memory,heap,startup,large] [--clients ours,ours-redis,djs,ceiling]
//                         [--events 50000] [--shards 16] [--repeat 3] [--profile] [--out PATH]
//   node scripts/bench.ts --render PATH.json [--out PATH]    (the report again from a run's raw results)
//
// Every run also writes its raw results next to the report (RESULTS.json), so the report can be
// rendered again without measuring again.
//
// --clients may add ours-small-heap (our gateway with --max-semi-space-size=2), left out by default:
// users start `node dist/main.js` without flags, and that is what the targets are about.
//
// Needs dist/ (npm run build) and, for the Redis row, Redis on 127.0.0.1:6379 (database 9 is
// flushed; BENCH_REDIS_URL overrides). Every wait is bounded; children die with the bench.
import { execFileSync } from "node:child_process"
import { readdirSync, readFileSync, mkdirSync, mkdtempSync, writeFileSync, existsSync } from "node:fs"
import { cpus, tmpdir, totalmem, release } from "node:os"
import { dirname, join, resolve } from "node:path"
import { parseArgs } from "node:util"
import { CLIENT_KINDS, openRedis } from "./bench/clients.ts"
import type { ClientKind } from "./bench/clients.ts"
import { installCleanup } from "./bench/proc.ts"
import { summarise } from "./bench/profile.ts"
import { largeScenario } from "./bench/scenarios/large.ts"
import type { LargeSample } from "./bench/scenarios/large.ts"
import { heapScenario } from "./bench/scenarios/heap.ts"
import type { HeapResult } from "./bench/scenarios/heap.ts"
import { memoryScenario } from "./bench/scenarios/memory.ts"
import type { MemorySample } from "./bench/scenarios/memory.ts"
import { startupScenario } from "./bench/scenarios/startup.ts"
import type { StartupSample } from "./bench/scenarios/startup.ts"
import { runThroughput, throughputScenario } from "./bench/scenarios/throughput.ts"
import type { ThroughputConfig, ThroughputResult } from "./bench/scenarios/throughput.ts"
import { renderReport } from "./bench/render.ts"
import type { Outcome, ProfiledRun, ReportInput } from "./bench/render.ts"

const SCENARIOS = ["throughput", "memory", "heap", "startup", "large"] as const
const DEFAULT_CLIENTS: ReadonlyArray<ClientKind> = ["ours", "ours-redis", "djs", "ceiling"]
type Scenario = (typeof SCENARIOS)[number]

const ROOT = resolve(import.meta.dirname, "..")
const log = (line: string): void => {
  process.stderr.write(`bench: ${line}\n`)
}

function list<T extends string>(value: string | undefined, allowed: ReadonlyArray<T>, flag: string): Array<T> | undefined {
  if (value === undefined) return undefined
  const items = value.split(",").map((s) => s.trim()).filter((s) => s !== "")
  for (const item of items) {
    if (!allowed.includes(item as T)) throw new Error(`--${flag}: unknown "${item}" (expected ${allowed.join(", ")})`)
  }
  return items as Array<T>
}

function positive(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined
  const n = Number(value)
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${flag} must be a positive integer, got "${value}"`)
  return n
}

/** The commit measured, and whether src/ differed from it (dist/ is built from the work tree). */
function revision(): string {
  try {
    const head = execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: ROOT, encoding: "utf8" }).trim()
    const dirty = execFileSync("git", ["status", "--porcelain", "--", "src"], { cwd: ROOT, encoding: "utf8" }).trim() !== ""
    return dirty ? `${head} with uncommitted changes in src/` : head
  } catch {
    return "unknown (not a git checkout)"
  }
}

async function attempt<T>(name: string, run: () => Promise<T>): Promise<Outcome<T>> {
  try {
    return { ok: true, value: await run() }
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error)
    log(`${name} failed: ${message}`)
    return { ok: false, error: message }
  }
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      quick: { type: "boolean", default: false },
      only: { type: "string" },
      clients: { type: "string" },
      events: { type: "string" },
      shards: { type: "string" },
      repeat: { type: "string" },
      profile: { type: "boolean", default: false },
      out: { type: "string" },
      render: { type: "string" },
      help: { type: "boolean", short: "h", default: false }
    },
    strict: true
  })
  if (values.help === true) {
    process.stdout.write(
      "usage: node scripts/bench.ts [--quick] [--only throughput,memory,heap,startup,large]\n" +
        "         [--clients ours,ours-redis,djs,ceiling,ours-small-heap] [--events N] [--shards N] [--repeat N] [--profile] [--out PATH]\n"
    )
    return 0
  }
  if (values.render !== undefined) {
    const input = JSON.parse(readFileSync(values.render, "utf8")) as ReportInput & { started: string }
    const report = renderReport({ ...input, started: new Date(input.started) })
    process.stdout.write(report)
    if (values.out !== undefined) writeFileSync(resolve(values.out), report)
    return 0
  }
  if (!existsSync(join(ROOT, "dist/main.js"))) throw new Error("dist/main.js is missing: run `npm run build` first")
  installCleanup()

  const quick = values.quick === true
  const only = new Set<Scenario>(list(values.only, SCENARIOS, "only") ?? SCENARIOS)
  let clients: Array<ClientKind> = list(values.clients, CLIENT_KINDS, "clients") ?? [...DEFAULT_CLIENTS]
  const notes: Array<string> = []
  if (only.has("throughput") && clients.includes("ours-redis")) {
    try {
      const redis = await openRedis()
      redis.disconnect()
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error)
      log(`skipping ours-redis: ${message}`)
      notes.push(`The Redis row was skipped: ${message}.`)
      clients = clients.filter((c) => c !== "ours-redis")
    }
  }

  const peers = (kinds: ReadonlyArray<ClientKind>): Array<ClientKind> => kinds.filter((k) => clients.includes(k))
  const throughput: ThroughputConfig = {
    events: positive(values.events, "events") ?? (quick ? 5_000 : 50_000),
    shards: positive(values.shards, "shards") ?? (quick ? 4 : 16),
    repeat: positive(values.repeat, "repeat") ?? (quick ? 1 : 3),
    guildCreateEvery: quick ? 1_000 : 2_500,
    guildCreateBytes: 300_000,
    clients
  }
  // The extra rows issue 9 asks for: zstd-stream (ours only: the peers do not speak it) and one shard.
  const throughputExtras: Array<ThroughputConfig> = [
    { ...throughput, compress: "zstd-stream" as const, clients: peers(["ours"]) },
    { ...throughput, shards: 1, events: quick ? 2_000 : 10_000, clients: peers(["ours", "ours-redis", "djs", "ceiling"]) }
  ].filter((c) => c.clients.length > 0)
  const memoryCounts = quick ? [1, 10, 50] : [1, 100, 1000]
  const startup = quick
    ? [{ shards: 20, maxConcurrency: 20 }, { shards: 8, maxConcurrency: 4 }, { shards: 3, maxConcurrency: 1 }]
    : [{ shards: 100, maxConcurrency: 100 }, { shards: 64, maxConcurrency: 16 }, { shards: 16, maxConcurrency: 1 }]
  const heap = { idleShards: quick ? 20 : 100, burst: { ...throughput, repeat: 1 } }
  const large = { sizes: [1_000_000, 2_500_000, 5_000_000], compressions: ["zlib-stream", "zstd-stream"] as const, repeat: quick ? 2 : 3 }

  const started = new Date()
  const results: {
    throughput?: Outcome<Array<ThroughputResult>>
    profile?: Outcome<ProfiledRun>
    memory?: Outcome<Array<MemorySample>>
    startup?: Outcome<Array<StartupSample>>
    large?: Outcome<Array<LargeSample>>
    heap?: Outcome<HeapResult>
  } = {}

  if (only.has("throughput")) {
    results.throughput = await attempt("throughput", async () => {
      const rows = await throughputScenario(throughput, log)
      for (const extra of throughputExtras) rows.push(...(await throughputScenario(extra, log)))
      return rows
    })
    if (values.profile === true) {
      results.profile = await attempt("profile", async () => {
        const dir = mkdtempSync(join(tmpdir(), "spectacles-bench-prof-"))
        log(`profile: one more run of ours with --cpu-prof (not counted in the table), into ${dir}`)
        const sample = await runThroughput("ours", { ...throughput, repeat: 1 }, log, ["--cpu-prof", `--cpu-prof-dir=${dir}`])
        const file = readdirSync(dir).find((f) => f.endsWith(".cpuprofile"))
        if (file === undefined) throw new Error(`no .cpuprofile written to ${dir} (did the gateway exit cleanly?)`)
        return { ...summarise(join(dir, file), sample.window), path: join(dir, file), eventsPerSec: sample.eventsPerSec, cpuPerEvent: sample.cpuPerEvent }
      })
    }
  }
  if (only.has("memory")) {
    results.memory = await attempt("memory", () => memoryScenario({ counts: memoryCounts, clients: peers(["ours", "ours-small-heap", "djs", "ceiling"]), settleMs: quick ? 1_500 : 3_000 }, log))
  }
  if (only.has("heap")) {
    results.heap = await attempt("heap", () => heapScenario(heap, log))
  }
  if (only.has("startup")) {
    results.startup = await attempt("startup", () => startupScenario({ cases: startup, clients: peers(["ours", "djs", "ceiling"]), repeatSingleWave: quick ? 1 : 5 }, log))
  }
  if (only.has("large")) {
    results.large = await attempt("large", () => largeScenario(large, log))
  }

  const input: ReportInput = {
    started,
    seconds: (Date.now() - started.getTime()) / 1000,
    quick,
    command: `node scripts/bench.ts${process.argv.slice(2).length > 0 ? ` ${process.argv.slice(2).join(" ")}` : ""}`,
    machine: {
      cpu: cpus()[0]?.model ?? "unknown",
      cores: cpus().length,
      memory: totalmem(),
      node: process.version,
      kernel: release(),
      revision: revision()
    },
    throughput,
    throughputExtras,
    memoryCounts,
    startup,
    large,
    results,
    notes
  }
  const report = renderReport(input)
  process.stdout.write(report)
  const out = resolve(values.out ?? join(ROOT, quick ? "bench/RESULTS.quick.md" : "bench/RESULTS.md"))
  mkdirSync(dirname(out), { recursive: true })
  writeFileSync(out, report)
  writeFileSync(out.replace(/\.md$/, "") + ".json", JSON.stringify(input, null, 1))
  log(`wrote ${out}`)
  const failed = Object.values(results).some((r) => r !== undefined && !r.ok)
  return failed ? 1 : 0
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`bench: ${error instanceof Error ? error.message : String(error)}\n`)
    process.exit(2)
  }
)
