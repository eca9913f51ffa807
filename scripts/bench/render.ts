// Turns the scenarios' results into the Markdown report (printed, and written to bench/RESULTS.md).
import { CLIENT_LABELS } from "./clients.ts"
import type { ClientKind } from "./clients.ts"
import type { ProfileSummary } from "./profile.ts"
import { fixed, int, kib, mib, MiB, ratio, table } from "./report.ts"
import { growth } from "./scenarios/large.ts"
import type { LargeSample } from "./scenarios/large.ts"
import type { MemorySample } from "./scenarios/memory.ts"
import { IDENTIFY_WINDOW_MS } from "./scenarios/startup.ts"
import type { StartupSample } from "./scenarios/startup.ts"
import type { ThroughputConfig, ThroughputResult } from "./scenarios/throughput.ts"

export type Outcome<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: string }

export type ProfiledRun = ProfileSummary & { readonly path: string; readonly eventsPerSec: number; readonly cpuPerEvent: number }

export interface ReportInput {
  readonly started: Date
  readonly seconds: number
  readonly quick: boolean
  readonly machine: { readonly cpu: string; readonly cores: number; readonly memory: number; readonly node: string; readonly kernel: string; readonly revision: string }
  readonly throughput: ThroughputConfig
  readonly memoryCounts: ReadonlyArray<number>
  readonly startup: { readonly shards: number; readonly maxConcurrency: number }
  readonly large: { readonly sizes: ReadonlyArray<number>; readonly compressions: ReadonlyArray<string>; readonly repeat: number }
  readonly results: {
    readonly throughput?: Outcome<Array<ThroughputResult>>
    readonly profile?: Outcome<ProfiledRun>
    readonly memory?: Outcome<Array<MemorySample>>
    readonly startup?: Outcome<Array<StartupSample>>
    readonly large?: Outcome<Array<LargeSample>>
  }
  readonly notes: ReadonlyArray<string>
}

const R = true
const L = false

function failed(error: string): string {
  return `**Failed:** ${error.replace(/\n/g, " ")}\n`
}

function throughputSection(config: ThroughputConfig, outcome: Outcome<Array<ThroughputResult>>): string {
  const out: Array<string> = ["## Throughput\n"]
  const events = Math.ceil(config.events / config.shards) * config.shards
  out.push(
    `${int(events)} dispatches over ${config.shards} shards, zlib-stream, sent by the fake as fast as each client reads ` +
      `(ws backpressure). Median of ${config.repeat} run(s) by events/s. CPU is user+system time of the process (all threads, ` +
      `from /proc) between the first event sent and the last one consumed, divided by the event count. Our gateway forwards ` +
      "every dispatch (`DISCORD_EVENTS=*`): to stdout, read by a separate counting process (its CPU is the helper column), or to " +
      "Redis Streams, where an event counts once Redis acknowledged it (polled with XLEN; redis-server's CPU is the helper column).\n"
  )
  if (!outcome.ok) return out.join("\n") + "\n" + failed(outcome.error)
  const results = outcome.value
  const rows = results.map((r) => {
    const m = r.median
    if (m === undefined) return [CLIENT_LABELS[r.kind], "failed", "", "", "", "", "", "", ""]
    return [
      CLIENT_LABELS[r.kind],
      int(m.eventsPerSec),
      fixed(m.cpuPerEvent),
      m.helpers.map((h) => `${h.name} ${fixed(h.cpuPerEvent)}`).join(", ") || "—",
      fixed(m.fakeCpuPerEvent),
      mib(m.peakRss),
      fixed(m.seconds, 2),
      r.samples.map((s) => int(s.eventsPerSec)).join(" / "),
      `${fixed(m.otherCores, 2)} / ${fixed(m.stealCores, 2)}`
    ]
  })
  out.push(table(["client", "events/s", "client CPU µs/event", "helper CPU µs/event", "fake CPU µs/event", "peak RSS MiB", "wall s", "each run (events/s)", "other load / steal (cores)"], rows, [L, R, R, L, R, R, R, L, R]))
  out.push("\nOther load = CPU used meanwhile by processes outside the run (this machine is shared); steal = CPU the hypervisor withheld. Both skew events/s; the CPU-per-event figures are less sensitive to them.")
  for (const r of results) {
    if (r.median !== undefined && r.median.extra !== 0) out.push(`\nNote: ${CLIENT_LABELS[r.kind]} counted ${r.median.extra} events more than were sent.`)
    for (const error of r.errors) out.push(`\nFailed run of ${CLIENT_LABELS[r.kind]}: ${error.replace(/\n/g, " ")}`)
  }

  const by = new Map(results.flatMap((r) => (r.median === undefined ? [] : [[r.kind, r.median] as const])))
  const ratioRows: Array<Array<string>> = []
  for (const ours of ["ours", "ours-small-heap", "ours-redis"] as const) {
    const o = by.get(ours)
    if (o === undefined) continue
    for (const peer of ["djs", "ceiling"] as const) {
      const p = by.get(peer)
      if (p === undefined) continue
      ratioRows.push([`${CLIENT_LABELS[ours]} / ${CLIENT_LABELS[peer]}`, ratio(o.eventsPerSec, p.eventsPerSec), ratio(o.cpuPerEvent, p.cpuPerEvent), ratio(o.peakRss, p.peakRss)])
    }
  }
  if (ratioRows.length > 0) {
    out.push("\nRatios (events/s: higher is better for ours; CPU and RSS: lower is better for ours):\n")
    out.push(table(["ours / peer", "events/s", "CPU µs/event", "peak RSS"], ratioRows, [L, R, R, R]))
  }
  const mix = results.find((r) => r.median !== undefined)?.median?.byType
  if (mix !== undefined) {
    const total = Object.values(mix).reduce((s, e) => s + e.bytes, 0)
    const mixRows = Object.entries(mix)
      .sort((a, b) => b[1].count - a[1].count)
      .map(([t, e]) => [t, int(e.count), int(e.bytes / e.count), `${fixed((100 * e.bytes) / total)} %`])
    out.push(`\nThe mix (JSON size of \`d\`; ${mib(total)} MiB in all, before compression):\n`)
    out.push(table(["event", "count", "avg bytes", "share of bytes"], mixRows, [L, R, R, R]))
  }
  return out.join("\n") + "\n"
}

function profileSection(outcome: Outcome<ProfiledRun>): string {
  const out: Array<string> = ["## Where our gateway's CPU goes\n"]
  out.push(
    "One extra throughput run of our gateway (stdout broker) under `node --cpu-prof`, not counted above. Self time of the " +
      "main thread from the first event sent to the last one read (idle excluded); zlib inflate runs synchronously inside " +
      "`inflateSync` (Transport/Inflater), on the main thread.\n"
  )
  if (!outcome.ok) return out.join("\n") + "\n" + failed(outcome.error)
  const p = outcome.value
  out.push(`Busy ${fixed(p.busyMs / 1000, 2)} s of ${fixed(p.totalMs / 1000, 2)} s; that run: ${int(p.eventsPerSec)} events/s, ${fixed(p.cpuPerEvent)} µs CPU/event under the profiler.\n`)
  out.push(table(["function", "where", "self ms", "share"], p.functions.map((f) => [f.name, f.where || "—", fixed(f.ms, 0), `${fixed(f.share * 100)} %`]), [L, L, R, R]))
  out.push("\nBy module:\n")
  out.push(table(["module", "self ms", "share"], p.modules.map((m) => [m.name, fixed(m.ms, 0), `${fixed(m.share * 100)} %`]), [L, R, R]))
  return out.join("\n") + "\n"
}

function memorySection(counts: ReadonlyArray<number>, outcome: Outcome<Array<MemorySample>>): string {
  const out: Array<string> = ["## Memory per idle shard\n"]
  out.push(
    "Resident memory (VmRSS) of the client holding N connected, READY, idle shards (no guilds; heartbeats only), read a few " +
      "seconds after the last READY. Per shard = (RSS at N − RSS at 1) / (N − 1). Fake Discord: max_concurrency = N.\n"
  )
  if (!outcome.ok) return out.join("\n") + "\n" + failed(outcome.error)
  const samples = outcome.value
  const kinds = [...new Set(samples.map((s) => s.kind))]
  const max = Math.max(...counts)
  const min = Math.min(...counts)
  const perShard = new Map<ClientKind, number>()
  const rows = kinds.map((kind) => {
    const at = (n: number) => samples.find((s) => s.kind === kind && s.shards === n)
    const low = at(min)
    const high = at(max)
    const per = low !== undefined && high !== undefined && max > min ? (high.rss - low.rss) / (max - min) : Number.NaN
    if (Number.isFinite(per)) perShard.set(kind, per)
    return [CLIENT_LABELS[kind], ...counts.map((n) => { const s = at(n); return s === undefined ? "—" : s.error !== undefined ? "failed" : mib(s.rss) }), Number.isFinite(per) ? kib(per) : "—", fixed(high?.readySeconds ?? Number.NaN)]
  })
  out.push(table(["client", ...counts.map((n) => `RSS MiB @${n}`), `KiB per shard (${min}→${max})`, `s to all READY @${max}`], rows, [L, ...counts.map(() => R), R, R]))
  const ours = perShard.get("ours")
  const peerRows = (["djs", "ceiling"] as const).filter((k) => perShard.has(k)).map((k) => [`ours / ${CLIENT_LABELS[k]}`, ratio(ours, perShard.get(k))])
  if (ours !== undefined && peerRows.length > 0) {
    out.push("\nPer-shard ratio (lower is better for ours):\n")
    out.push(table(["ours / peer", "memory per shard"], peerRows, [L, R]))
  }
  for (const s of samples) if (s.error !== undefined) out.push(`\nFailed: ${CLIENT_LABELS[s.kind]} with ${s.shards} shards: ${s.error.replace(/\n/g, " ")}`)
  return out.join("\n") + "\n"
}

function startupSection(config: { readonly shards: number; readonly maxConcurrency: number }, outcome: Outcome<Array<StartupSample>>): string {
  const buckets = Math.ceil(config.shards / config.maxConcurrency)
  const window = IDENTIFY_WINDOW_MS / 1000
  const out: Array<string> = ["## Startup\n"]
  out.push(
    `${config.shards} shards, max_concurrency ${config.maxConcurrency}: Discord allows ${config.maxConcurrency} identifies per ${window} s, ` +
      `so ${buckets} buckets. Yardstick ceil(N/M) × ${window} s = ${buckets * window} s; nothing can be READY sooner than ` +
      `(ceil(N/M) − 1) × ${window} s = ${(buckets - 1) * window} s. Time from process spawn to the fake having sent READY on every shard. ` +
      "Violations = identifies the fake refused for breaking the bucket rule.\n"
  )
  if (!outcome.ok) return out.join("\n") + "\n" + failed(outcome.error)
  const rows = outcome.value.map((s) =>
    s.error !== undefined
      ? [CLIENT_LABELS[s.kind], "failed", `${buckets * window}`, "—", "—", "—", "—"]
      : [CLIENT_LABELS[s.kind], fixed(s.seconds, 2), `${buckets * window}`, ratio(s.seconds, buckets * window), String(s.identifies), String(s.violations), s.closestViolationMs === null ? "—" : String(s.closestViolationMs)]
  )
  out.push(table(["client", "all READY s", "yardstick s", "vs yardstick", "identifies", "violations", "closest same-bucket gap ms"], rows, [L, R, R, R, R, R, R]))
  for (const s of outcome.value) if (s.error !== undefined) out.push(`\nFailed: ${CLIENT_LABELS[s.kind]}: ${s.error.replace(/\n/g, " ")}`)
  return out.join("\n") + "\n"
}

function largeSection(config: ReportInput["large"], outcome: Outcome<Array<LargeSample>>): string {
  const out: Array<string> = ["## Large payloads\n"]
  out.push(
    `One GUILD_CREATE at a time (${config.repeat} per case, median time) into our gateway (stdout broker), a fresh gateway ` +
      "per case. Time = from the fake starting to send to the line read from the gateway's stdout (includes the fake's " +
      "compression and the pipe); gateway CPU = the gateway process's CPU per payload (10 ms clock ticks). Δ peak = VmHWM − RSS before the first payload. zlib-stream messages are split into 64 KiB frames.\n"
  )
  if (!outcome.ok) return out.join("\n") + "\n" + failed(outcome.error)
  const samples = outcome.value
  const rows = samples.map((s) => {
    const delta = s.peakRss - s.rssBefore
    return [s.compress, fixed(s.bytes / 1e6, 2), fixed(s.ms, 0), fixed(s.bytes / 1e6 / (s.ms / 1000), 0), fixed(s.cpuMs, 0), mib(s.rssBefore), mib(s.peakRss), mib(delta), fixed(delta / MiB / (s.bytes / 1e6), 1)]
  })
  out.push(table(["compression", "MB (JSON)", "ms", "MB/s", "gateway CPU ms", "RSS before MiB", "peak RSS MiB", "Δ peak MiB", "Δ peak MiB per MB"], rows, [L, R, R, R, R, R, R, R, R]))
  out.push("\nGrowth from the smallest to the largest payload (per-MB figure of the largest ÷ that of the smallest; 1.00 = linear):\n")
  const growthRows = [...new Set(samples.map((s) => s.compress))].map((compress) => {
    const own = samples.filter((s) => s.compress === compress)
    const time = growth(own.map((s) => ({ x: s.bytes, y: s.ms })))
    const cpu = growth(own.map((s) => ({ x: s.bytes, y: s.cpuMs })))
    const mem = growth(own.map((s) => ({ x: s.bytes, y: s.peakRss - s.rssBefore })))
    const show = (g: { factor: number; verdict: string }): string => `${fixed(g.factor, 2)}: ${g.verdict}`
    return [compress, show(time), show(cpu), show(mem)]
  })
  out.push(table(["compression", "time", "gateway CPU", "Δ peak RSS"], growthRows, [L, L, L, L]))
  return out.join("\n") + "\n"
}

export function renderReport(input: ReportInput): string {
  const m = input.machine
  const out: Array<string> = [
    "# Benchmark results\n",
    `Generated by \`npm run bench${input.quick ? " -- --quick" : ""}\` on ${input.started.toISOString().slice(0, 16).replace("T", " ")} UTC ` +
      `in ${fixed(input.seconds / 60, 1)} min.\n`,
    `- CPU: ${m.cpu}, ${m.cores} cores; memory ${fixed(m.memory / 2 ** 30, 0)} GiB; Linux ${m.kernel}`,
    `- Node.js ${m.node}; gateway built from ${m.revision}`,
    "- Fake Discord (test/fake-discord) in a process of its own; every client in its own process; loopback only.",
    "- Clients: **ours** = `node dist/main.js` (env config); **@discordjs/ws** = WebSocketManager with `CompressionMethod.ZlibNative` " +
      "(node:zlib; the optional zlib-sync add-on is not installed), counting `dispatch` events; **ceiling** = `ws` + one node:zlib " +
      "inflate stream per connection + `JSON.parse` of every payload, nothing else.\n"
  ]
  for (const note of input.notes) out.push(`Note: ${note}\n`)
  const r = input.results
  if (r.throughput !== undefined) out.push(throughputSection(input.throughput, r.throughput))
  if (r.profile !== undefined) out.push(profileSection(r.profile))
  if (r.memory !== undefined) out.push(memorySection(input.memoryCounts, r.memory))
  if (r.startup !== undefined) out.push(startupSection(input.startup, r.startup))
  if (r.large !== undefined) out.push(largeSection(input.large, r.large))
  return out.join("\n")
}
