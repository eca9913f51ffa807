// Turns the scenarios' results into the Markdown report (printed, and written to bench/RESULTS.md).
import { CLIENT_LABELS } from "./clients.ts"
import type { ClientKind } from "./clients.ts"
import type { ProfileSummary } from "./profile.ts"
import type { HeapResult } from "./scenarios/heap.ts"
import type { MemoryReading } from "./inspector.ts"
import { fixed, int, kib, mib, MiB, ratio, table } from "./report.ts"
import { growth } from "./scenarios/large.ts"
import type { LargeSample } from "./scenarios/large.ts"
import type { MemorySample } from "./scenarios/memory.ts"
import { IDENTIFY_WINDOW_MS, minimumSeconds, targetSeconds } from "./scenarios/startup.ts"
import type { StartupCase, StartupSample } from "./scenarios/startup.ts"
import type { ThroughputConfig, ThroughputResult } from "./scenarios/throughput.ts"

export type Outcome<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: string }

export type ProfiledRun = ProfileSummary & { readonly path: string; readonly eventsPerSec: number; readonly cpuPerEvent: number }

export interface ReportInput {
  readonly started: Date
  readonly seconds: number
  readonly quick: boolean
  /** The command line that produced the report. */
  readonly command: string
  readonly machine: { readonly cpu: string; readonly cores: number; readonly memory: number; readonly node: string; readonly kernel: string; readonly revision: string }
  readonly throughput: ThroughputConfig
  /** The extra throughput rows (zstd-stream, one shard). */
  readonly throughputExtras: ReadonlyArray<ThroughputConfig>
  readonly memoryCounts: ReadonlyArray<number>
  readonly startup: ReadonlyArray<StartupCase>
  readonly large: { readonly sizes: ReadonlyArray<number>; readonly compressions: ReadonlyArray<string>; readonly repeat: number }
  readonly results: {
    readonly throughput?: Outcome<Array<ThroughputResult>>
    readonly profile?: Outcome<ProfiledRun>
    readonly memory?: Outcome<Array<MemorySample>>
    readonly startup?: Outcome<Array<StartupSample>>
    readonly large?: Outcome<Array<LargeSample>>
    readonly heap?: Outcome<HeapResult>
  }
  readonly notes: ReadonlyArray<string>
}

const R = true
const L = false
const PEERS = ["djs", "ceiling"] as const

function failed(error: string): string {
  return `**Failed:** ${error.replace(/\n/g, " ")}\n`
}

const rowLabel = (r: ThroughputResult): string => `${CLIENT_LABELS[r.kind]}${r.compress === "zstd-stream" ? ", zstd-stream" : ""}${r.shards === 1 ? ", 1 shard" : ""}`

function throughputSection(config: ThroughputConfig, extras: ReadonlyArray<ThroughputConfig>, outcome: Outcome<Array<ThroughputResult>>): string {
  const out: Array<string> = ["## Throughput\n"]
  const events = Math.ceil(config.events / config.shards) * config.shards
  out.push(
    `${int(events)} dispatches over ${config.shards} shards, zlib-stream, sent by the fake as fast as each client reads ` +
      `(ws backpressure). Median of ${config.repeat} run(s) by events/s. CPU is user+system time of the process (all threads, ` +
      `from /proc) between the first event sent and the last one consumed, divided by the event count. Our gateway forwards ` +
      "every dispatch (`DISCORD_EVENTS=*`): to stdout, read by a separate counting process (its CPU is the helper column), or to " +
      "Redis Streams, where an event counts once Redis acknowledged it (polled with XLEN; redis-server's CPU is the helper column). " +
      "Every client is started plainly (`node dist/main.js`, no V8 flags)." +
      extras.map((e) => ` Extra rows: ${int(Math.ceil(e.events / e.shards) * e.shards)} events over ${e.shards} shard(s), ${e.compress ?? "zlib-stream"} (${e.clients.map((k) => CLIENT_LABELS[k]).join(", ")}).`).join("") +
      "\n"
  )
  if (!outcome.ok) return out.join("\n") + "\n" + failed(outcome.error)
  const results = outcome.value
  const rows = results.map((r) => {
    const m = r.median
    if (m === undefined) return [rowLabel(r), String(r.shards), "failed", "", "", "", "", "", "", ""]
    return [
      rowLabel(r),
      String(r.shards),
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
  out.push(table(["client", "shards", "events/s", "client CPU µs/event", "helper CPU µs/event", "fake CPU µs/event", "peak RSS MiB", "wall s", "each run (events/s)", "other load / steal (cores)"], rows, [L, R, R, R, L, R, R, R, L, R]))
  out.push("\nOther load = CPU used meanwhile by processes outside the run (this machine is shared); steal = CPU the hypervisor withheld. Both skew events/s; the CPU-per-event figures are less sensitive to them.")
  for (const r of results) {
    if (r.median !== undefined && r.median.extra !== 0) out.push(`\nNote: ${rowLabel(r)} counted ${r.median.extra} events more than were sent.`)
    for (const error of r.errors) out.push(`\nFailed run of ${rowLabel(r)}: ${error.replace(/\n/g, " ")}`)
  }

  const ratioRows: Array<Array<string>> = []
  for (const o of results) {
    if (!o.kind.startsWith("ours") || o.median === undefined) continue
    for (const peer of PEERS) {
      const p = results.find((r) => r.kind === peer && r.shards === o.shards && r.compress === "zlib-stream")?.median
      if (p === undefined) continue
      ratioRows.push([`${rowLabel(o)} / ${CLIENT_LABELS[peer]}${o.compress === "zstd-stream" ? " (zlib-stream)" : ""}`, ratio(o.median.eventsPerSec, p.eventsPerSec), ratio(o.median.cpuPerEvent, p.cpuPerEvent), ratio(o.median.peakRss, p.peakRss)])
    }
  }
  if (ratioRows.length > 0) {
    out.push("\nRatios, same run, same shard count (events/s: higher is better for ours; CPU and RSS: lower is better for ours; the peers only speak zlib-stream):\n")
    out.push(table(["ours / peer", "events/s", "CPU µs/event", "peak RSS"], ratioRows, [L, R, R, R]))
  }
  const mix = results.find((r) => r.median !== undefined && r.shards === config.shards)?.median?.byType
  if (mix !== undefined) {
    const total = Object.values(mix).reduce((s, e) => s + e.bytes, 0)
    const mixRows = Object.entries(mix)
      .sort((a, b) => b[1].count - a[1].count)
      .map(([t, e]) => [t, int(e.count), int(e.bytes / e.count), `${fixed((100 * e.bytes) / total)} %`])
    out.push(`\nThe mix of the ${config.shards}-shard runs (JSON size of \`d\`; ${mib(total)} MiB in all, before compression):\n`)
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

/** (RSS at n − RSS at the smallest count) / (n − smallest), per client. */
export function perShard(samples: ReadonlyArray<MemorySample>, kind: ClientKind, n: number): number {
  const own = samples.filter((s) => s.kind === kind && s.error === undefined)
  const min = Math.min(...own.map((s) => s.shards))
  const low = own.find((s) => s.shards === min)
  const high = own.find((s) => s.shards === n)
  return low !== undefined && high !== undefined && n > min ? (high.rss - low.rss) / (n - min) : Number.NaN
}

function memorySection(counts: ReadonlyArray<number>, outcome: Outcome<Array<MemorySample>>): string {
  const out: Array<string> = ["## Memory per idle shard\n"]
  const min = Math.min(...counts)
  const upper = counts.filter((n) => n > min)
  out.push(
    "Resident memory (VmRSS) of the client holding N connected, READY, idle shards (one small GUILD_CREATE each, then " +
      `heartbeats only), read a few seconds after the last READY. Per shard at N = (RSS at N − RSS at ${min}) / (N − ${min}). ` +
      "Fake Discord: max_concurrency = N.\n"
  )
  if (!outcome.ok) return out.join("\n") + "\n" + failed(outcome.error)
  const samples = outcome.value
  const kinds = [...new Set(samples.map((s) => s.kind))]
  const max = Math.max(...counts)
  const rows = kinds.map((kind) => {
    const at = (n: number) => samples.find((s) => s.kind === kind && s.shards === n)
    return [
      CLIENT_LABELS[kind],
      ...counts.map((n) => { const s = at(n); return s === undefined ? "—" : s.error !== undefined ? "failed" : mib(s.rss) }),
      ...upper.map((n) => { const per = perShard(samples, kind, n); return Number.isFinite(per) ? kib(per) : "—" }),
      fixed(at(max)?.readySeconds ?? Number.NaN)
    ]
  })
  out.push(table(["client", ...counts.map((n) => `RSS MiB @${n}`), ...upper.map((n) => `KiB per shard @${n}`), `s to all READY @${max}`], rows, [L, ...counts.map(() => R), ...upper.map(() => R), R]))
  const ratioRows = kinds.filter((k) => k.startsWith("ours")).flatMap((ours) =>
    PEERS.filter((p) => kinds.includes(p)).map((peer) => [`${CLIENT_LABELS[ours]} / ${CLIENT_LABELS[peer]}`, ...upper.map((n) => ratio(perShard(samples, ours, n), perShard(samples, peer, n)))])
  )
  if (ratioRows.length > 0) {
    out.push("\nPer-shard ratio (lower is better for ours):\n")
    out.push(table(["ours / peer", ...upper.map((n) => `per shard @${n}`)], ratioRows, [L, ...upper.map(() => R)]))
  }
  for (const s of samples) if (s.error !== undefined) out.push(`\nFailed: ${CLIENT_LABELS[s.kind]} with ${s.shards} shards: ${s.error.replace(/\n/g, " ")}`)
  return out.join("\n") + "\n"
}

function startupSection(cases: ReadonlyArray<StartupCase>, outcome: Outcome<Array<StartupSample>>): string {
  const window = IDENTIFY_WINDOW_MS / 1000
  const out: Array<string> = ["## Startup\n"]
  out.push(
    `N shards, max_concurrency M: Discord allows one identify per bucket (shard_id % M) per ${window} s, so nothing can be READY ` +
      `sooner than (ceil(N/M) − 1) × ${window} s (the minimum); the target is the minimum + 5 % + 1 s. Time from process spawn ` +
      "to the fake having sent READY on every shard (one small guild each). Violations = identifies the fake refused for breaking " +
      "the bucket rule. The ceiling paces identifies the least Discord accepts: per bucket, the next one 5.1 s after the previous; " +
      "ours keeps 5.2 s between two identifies of a bucket (a margin for network jitter), so its own floor is (ceil(N/M) − 1) × 5.2 s.\n"
  )
  if (!outcome.ok) return out.join("\n") + "\n" + failed(outcome.error)
  const samples = outcome.value
  const rows = samples.map((s) => {
    const ours = samples.find((o) => o.kind === "ours" && o.shards === s.shards && o.maxConcurrency === s.maxConcurrency)
    const base = [`${s.shards}`, `${s.maxConcurrency}`, CLIENT_LABELS[s.kind]]
    if (s.error !== undefined) return [...base, "failed", fixed(minimumSeconds(s), 0), fixed(targetSeconds(s), 2), "—", "—", "—", "—"]
    return [
      ...base,
      s.runs !== undefined && s.runs.length > 1 ? `${fixed(s.seconds, 2)} (median of ${s.runs.map((x) => fixed(x, 2)).join(", ")})` : fixed(s.seconds, 2),
      fixed(minimumSeconds(s), 0),
      fixed(targetSeconds(s), 2),
      s.seconds <= targetSeconds(s) && s.violations === 0 ? "yes" : "no",
      s.kind === "ours" ? "—" : ratio(ours?.seconds, s.seconds),
      `${s.identifies} / ${s.violations}`,
      s.closestViolationMs === null ? "—" : String(s.closestViolationMs)
    ]
  })
  out.push(table(["N", "M", "client", "all READY s", "minimum s", "target s", "met", "ours / this", "identifies / violations", "closest violating gap ms"], rows, [R, R, L, R, R, R, L, R, R, R]))
  for (const s of samples) if (s.error !== undefined) out.push(`\nFailed: ${CLIENT_LABELS[s.kind]} (${s.shards}, ${s.maxConcurrency}): ${s.error.replace(/\n/g, " ")}`)
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

/** Issue 9's figures before this work (from the issue and the previous bench/RESULTS.md), for the "before" column. */
const BEFORE: Record<string, string> = {
  "idle@100": "334 KB vs 240 KB (1.39× @discordjs/ws)",
  "idle@1000": "125 vs 116 KiB (1.08× @discordjs/ws), 68 KiB ceiling",
  "peak:ours": "200 MB vs 279 MB (0.72×)",
  "peak:ours-redis": "283 MB vs 279 MB (1.01×)",
  "startup:100:100": "7.6 s (@discordjs/ws 0.68 s)",
  "startup:64:16": "17.7 s (target 16.75 s)",
  "startup:16:1": "not measured",
  "cpu:ours": "0.58× ceiling (0.40× @discordjs/ws)",
  "cpu:ours-redis": "0.97× ceiling (0.68× @discordjs/ws)"
}

function targetsSection(input: ReportInput): string {
  const out: Array<string> = ["## Issue 9 targets\n"]
  out.push("Every target of issue 9 with this run's figures; ratios are ours ÷ the peer measured in the same run. \"Before\" quotes the issue (and the previous results).\n")
  const rows: Array<Array<string>> = []
  const r = input.results
  const mem = r.memory?.ok === true ? r.memory.value : undefined
  const variants = [["ours", ""]] as const
  for (const n of input.memoryCounts.filter((c) => c >= 100)) {
    if (mem === undefined) break
    for (const [kind, suffix] of variants) {
      const [o, d, c] = ([kind, "djs", "ceiling"] as const).map((k) => perShard(mem, k, n))
      if (!Number.isFinite(o!)) continue
      const met = o! <= c! && o! <= 0.75 * d!
      rows.push([`idle RSS per shard @${n} (KiB)${suffix}`, kib(o!), kib(d!), kib(c!), ratio(o, d), ratio(o, c), "≤ ceiling and ≤ 0.75× djs", met ? "yes" : "no", suffix === "" ? BEFORE[`idle@${n}`] ?? "—" : "—"])
    }
  }
  const tp = r.throughput?.ok === true ? r.throughput.value : undefined
  const main = (kind: ClientKind) => tp?.find((x) => x.kind === kind && x.shards === input.throughput.shards && x.compress === "zlib-stream")?.median
  if (tp !== undefined) {
    const d = main("djs")
    const c = main("ceiling")
    for (const kind of ["ours", "ours-redis"] as const) {
      const o = main(kind)
      if (o === undefined) continue
      rows.push([`peak RSS, ${input.throughput.shards}-shard burst, ${CLIENT_LABELS[kind]} (MiB)`, mib(o.peakRss), d ? mib(d.peakRss) : "—", c ? mib(c.peakRss) : "—", ratio(o.peakRss, d?.peakRss), ratio(o.peakRss, c?.peakRss), "≤ 0.5× djs", d !== undefined && o.peakRss <= 0.5 * d.peakRss ? "yes" : "no", BEFORE[`peak:${kind}`] ?? "—"])
    }
    for (const [kind, goal] of [["ours", 0.5], ["ours-redis", 0.8]] as const) {
      const o = main(kind)
      if (o === undefined) continue
      rows.push([`CPU per event, ${CLIENT_LABELS[kind]} (µs)`, fixed(o.cpuPerEvent), d ? fixed(d.cpuPerEvent) : "—", c ? fixed(c.cpuPerEvent) : "—", ratio(o.cpuPerEvent, d?.cpuPerEvent), ratio(o.cpuPerEvent, c?.cpuPerEvent), `≤ ${goal}× ceiling`, c !== undefined && o.cpuPerEvent <= goal * c.cpuPerEvent ? "yes" : "no", BEFORE[`cpu:${kind}`] ?? "—"])
    }
    const zstd = tp.find((x) => x.kind === "ours" && x.compress === "zstd-stream")?.median
    if (zstd !== undefined) rows.push([`CPU per event, ours → stdout, zstd-stream (µs)`, fixed(zstd.cpuPerEvent), d ? fixed(d.cpuPerEvent) : "—", c ? fixed(c.cpuPerEvent) : "—", ratio(zstd.cpuPerEvent, d?.cpuPerEvent), ratio(zstd.cpuPerEvent, c?.cpuPerEvent), "a row (peers: zlib-stream)", "yes", "no row"])
    const one = (kind: ClientKind) => tp.find((x) => x.kind === kind && x.shards === 1)?.median
    const o1 = one("ours")
    if (o1 !== undefined) rows.push(["CPU per event, 1 shard, ours → stdout (µs)", fixed(o1.cpuPerEvent), one("djs") ? fixed(one("djs")!.cpuPerEvent) : "—", one("ceiling") ? fixed(one("ceiling")!.cpuPerEvent) : "—", ratio(o1.cpuPerEvent, one("djs")?.cpuPerEvent), ratio(o1.cpuPerEvent, one("ceiling")?.cpuPerEvent), "a row", "yes", "no row"])
  }
  const st = r.startup?.ok === true ? r.startup.value : undefined
  const shown = (x: StartupSample | undefined): string => (x === undefined ? "—" : x.error !== undefined ? "failed" : `${fixed(x.seconds, 2)}; ${x.violations}`)
  for (const [kind, suffix] of st === undefined ? [] : variants) for (const c of input.startup) {
    const at = (kind: ClientKind) => st!.find((x) => x.kind === kind && x.shards === c.shards && x.maxConcurrency === c.maxConcurrency)
    const o = at(kind)
    if (o === undefined) continue
    const met = o.error === undefined && o.seconds <= targetSeconds(c) && o.violations === 0
    rows.push([`all READY, N=${c.shards}, M=${c.maxConcurrency} (s; violations)${suffix}`, `${fixed(o.seconds, 2)}; ${o.violations}`, shown(at("djs")), shown(at("ceiling")), ratio(o.seconds, at("djs")?.seconds), ratio(o.seconds, at("ceiling")?.seconds), `≤ ${fixed(targetSeconds(c), 2)} s, 0 violations`, met ? "yes" : "no", suffix === "" ? BEFORE[`startup:${c.shards}:${c.maxConcurrency}`] ?? "—" : "—"])
  }
  if (rows.length === 0) return ""
  out.push(table(["target", "ours", "@discordjs/ws", "ceiling", "ours / djs", "ours / ceiling", "goal", "met", "before"], rows, [L, R, R, R, R, R, L, L, L]))
  return out.join("\n") + "\n"
}

function memoryRows(readings: ReadonlyArray<[string, MemoryReading]>): string {
  const keys: Array<[string, (m: MemoryReading) => number]> = [
    ["RSS", (m) => m.rss],
    ["V8 heap committed (heapTotal)", (m) => m.heapTotal],
    ["  of which new space (young generation)", (m) => m.spaces.new_space?.size ?? 0],
    ["  of which old space", (m) => m.spaces.old_space?.size ?? 0],
    ["  of which code space", (m) => m.spaces.code_space?.size ?? 0],
    ["  of which large objects", (m) => (m.spaces.large_object_space?.size ?? 0) + (m.spaces.new_large_object_space?.size ?? 0)],
    ["V8 heap used (live + not yet collected)", (m) => m.heapUsed],
    ["external (Buffers, zlib contexts)", (m) => m.external],
    ["  of which ArrayBuffers (Buffers)", (m) => m.arrayBuffers],
    ["RSS − heapTotal − external (native; < 0 when committed heap is not resident)", (m) => m.rss - m.heapTotal - m.external]
  ]
  return table(["MiB", ...readings.map(([label]) => label)], keys.map(([label, f]) => [label, ...readings.map(([, m]) => mib(f(m)))]), [L, ...readings.map(() => R)])
}

/** The report's reading of the memory figures: each big item, its size in this run, what keeps it down and what is left. */
function memoryAdvice(h: HeapResult): Array<string> {
  const lines: Array<string> = []
  const group = (snapshot: HeapResult["one"]["snapshot"], name: string) => snapshot.groups.find((g) => g.name === name)
  const source = group(h.one.snapshot, "(string)")
  const code = group(h.one.snapshot, "(code)")
  lines.push(
    `**Loading the code (fixed: ${mib(h.one.memory.rss)} MiB RSS at one shard, of which ${mib(h.one.memory.heapTotal)} MiB V8 heap).** ` +
      "`npm run build` bundles the gateway and its dependencies into dist/main.js and dist/daemon.js (rolldown, tree-shaken): loaded as " +
      "hundreds of modules (tsc's output), it started with 109 instead of 84 MiB of RSS and took 0.70 instead of 0.30 s to load " +
      "(measured when the build changed). At one shard the heap still holds " +
      `${source ? mib(source.bytes) : "?"} MiB of strings (${source?.heldBy[0] ? `${fixed(source.heldBy[0].share * 100, 0)} % held by ${source.heldBy[0].by}` : "mostly module source"}) ` +
      `and ${code ? mib(code.bytes) : "?"} MiB of code; the rest of the fixed RSS is mostly Node itself (see the minimal loop's RSS at one shard under Memory per idle shard).`
  )
  const newIdle = h.idle.memory.spaces.new_space?.size ?? 0
  const newPeak = h.burst.peak.spaces.new_space?.size ?? 0
  lines.push(
    `**V8's young generation (${mib(newIdle)} MiB committed when idle, ${mib(newPeak)} MiB at the burst's peak).** Left alone, V8 grows ` +
      "it to 32-64 MiB while the modules load and under a burst, and keeps it. dist/main.js keeps it at its starting size " +
      "(`--semi-space-growth-factor=1`, set by src/Process/youngGeneration.ts before the daemon loads, unless the user passed a " +
      "semi-space flag): scavenges come more often but find little alive, since almost nothing an event allocates outlives its turn."
  )
  const a = h.burst.allocated
  const top = a.functions.slice(0, 4)
  lines.push(
    `**Garbage per event (${int(a.totalBytes / h.burst.events)} bytes allocated per event during the burst).** ` +
      "A payload stays bytes from the inflater to the broker: `d` is never decoded to a string, and its copy lands in 256 KiB " +
      "blocks reused once the broker accepted every event in them (src/Broker/EventBytes.ts), so those bytes are neither garbage nor " +
      `new memory. What is left are small objects: ${top.map((f) => `${f.name} (${f.where || "native"}) ${int(f.bytes / h.burst.events)}`).join(", ")} bytes/event; ` +
      "ws's receiver (a Buffer per frame and its parsing state) is the same in every client built on ws."
  )
  const zlib = group(h.idle.snapshot, "Node / zlib_memory")
  const zlib1 = group(h.one.snapshot, "Node / zlib_memory")
  {
    const n = h.idle.shards
    const rssPerShard = (h.idle.memory.rss - h.one.memory.rss) / (n - 1)
    const livePerShard = (h.idle.snapshot.totalBytes - h.one.snapshot.totalBytes) / (n - 1)
    const perShardZlib = zlib === undefined ? 0 : (zlib.bytes - (zlib1?.bytes ?? 0)) / (n - 1)
    lines.push(
      `**Per idle shard (${kib(rssPerShard)} KiB of RSS between 1 and ${n} shards in this run).** Live objects grow ` +
        `${kib(livePerShard)} KiB per shard (snapshots after a full GC), ${kib(perShardZlib)} KiB of it zlib's inflate context ` +
        "(one per connection, as zlib-stream requires; the minimal loop pays the same); the rest is the shard's state, fibers and " +
        "closures, its socket and ws's buffers. The young generation no longer grows as shards start, so RSS per shard " +
        "follows what the shards hold rather than V8's sizing."
    )
  }
  return lines
}

function heapSection(outcome: Outcome<HeapResult>): string {
  const out: Array<string> = ["## Where our gateway's memory goes\n"]
  out.push(
    "Our gateway (stdout broker) started with `--inspect` so the bench can look inside (not counted in the tables above). " +
      "Idle: N shards after READY and one small GUILD_CREATE each; `process.memoryUsage()`, V8's heap spaces and a heap snapshot " +
      "(after a full GC) grouped by kind of object, with what holds each kind (its first retainer, as owner.field). Burst: the " +
      "throughput run's blast, the memory figures at the highest RSS seen (polled every 100 ms), and a sampling heap profile of " +
      "every byte allocated during the blast, collected or not (garbage is what fills the young generation and makes the peak).\n"
  )
  if (!outcome.ok) return out.join("\n") + "\n" + failed(outcome.error)
  const h = outcome.value
  out.push(`### ${h.idle.shards} idle shards, and the burst (${int(h.burst.events)} events over ${h.burst.shards} shards)\n`)
  out.push(memoryRows([["idle @1", h.one.memory], [`idle @${h.idle.shards}`, h.idle.memory], ["burst: before", h.burst.before], ["burst: at peak RSS", h.burst.peak]]))
  const n = h.idle.shards
  out.push(`\nHeap snapshots (after a full GC) at 1 and at ${n} idle shards: ${mib(h.one.snapshot.totalBytes)} and ${mib(h.idle.snapshot.totalBytes)} MiB of live objects. ` +
    `The kinds that grow most per shard, and the biggest fixed ones; per shard = (bytes @${n} − bytes @1) ÷ ${n - 1}:\n`)
  const at1 = new Map(h.one.snapshot.groups.map((g) => [g.name, g]))
  const atN = new Map(h.idle.snapshot.groups.map((g) => [g.name, g]))
  const growth = (name: string): number => ((atN.get(name)?.bytes ?? 0) - (at1.get(name)?.bytes ?? 0)) / (n - 1)
  const byGrowth = [...atN.keys()].sort((x, y) => growth(y) - growth(x)).slice(0, 10)
  const bySize = h.one.snapshot.groups.slice(0, 5).map((g) => g.name)
  const names = [...new Set([...byGrowth, ...bySize])].sort((x, y) => growth(y) - growth(x))
  out.push(table(
    ["kind", `objects @${n}`, "MiB @1", `MiB @${n}`, "KiB per shard", `held mostly by (@${n})`],
    names.map((name) => {
      const g = atN.get(name) ?? at1.get(name)!
      return [name.replace(/\|/g, "\\|"), int(atN.get(name)?.count ?? 0), mib(at1.get(name)?.bytes ?? 0), mib(atN.get(name)?.bytes ?? 0), fixed(growth(name) / 1024, 1), g.heldBy.map((b) => `${b.by.replace(/\|/g, "\\|")} ${fixed(b.share * 100, 0)} %`).join("; ")]
    }),
    [L, R, R, R, R, L]
  ))
  const a = h.burst.allocated
  out.push(`\nAllocated during the burst (sampled): ${mib(a.totalBytes)} MiB, ${int(a.totalBytes / h.burst.events)} bytes per event. By allocating function:\n`)
  out.push(table(["function", "where", "MiB", "bytes/event", "share"], a.functions.map((f) => [f.name, f.where || "—", mib(f.bytes), int(f.bytes / h.burst.events), `${fixed(f.share * 100)} %`]), [L, L, R, R, R]))
  out.push("\nBy module:\n")
  out.push(table(["module", "MiB", "bytes/event", "share"], a.modules.map((m) => [m.name, mib(m.bytes), int(m.bytes / h.burst.events), `${fixed(m.share * 100)} %`]), [L, R, R, R]))
  out.push("\n### What it is, and what keeps it down\n")
  out.push(memoryAdvice(h).map((line) => `- ${line}`).join("\n"))
  return out.join("\n") + "\n"
}

export function renderReport(input: ReportInput): string {
  const m = input.machine
  const out: Array<string> = [
    "# Benchmark results\n",
    `Generated by \`${input.command}\` (after \`npm run build\`) on ${input.started.toISOString().slice(0, 16).replace("T", " ")} UTC ` +
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
  const targets = targetsSection(input)
  if (targets !== "") out.push(targets)
  if (r.throughput !== undefined) out.push(throughputSection(input.throughput, input.throughputExtras, r.throughput))
  if (r.profile !== undefined) out.push(profileSection(r.profile))
  if (r.memory !== undefined) out.push(memorySection(input.memoryCounts, r.memory))
  if (r.heap !== undefined) out.push(heapSection(r.heap))
  if (r.startup !== undefined) out.push(startupSection(input.startup, r.startup))
  if (r.large !== undefined) out.push(largeSection(input.large, r.large))
  return out.join("\n")
}
