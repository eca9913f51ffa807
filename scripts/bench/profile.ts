// Summarises a V8 .cpuprofile (node --cpu-prof): self time per function and per module, so the
// report can say where our gateway's CPU goes under load.
import { readFileSync } from "node:fs"
import { SourceMap } from "node:module"
import { fileURLToPath } from "node:url"

interface ProfileNode {
  readonly id: number
  readonly callFrame: Frame
}

/** Where a profile says code ran or allocated (0-based line and column). */
export interface Frame {
  readonly functionName: string
  readonly url: string
  readonly lineNumber: number
  readonly columnNumber?: number
}

const sourceMaps = new Map<string, SourceMap | undefined>()

/**
 * The frame's place in the sources: dist/ is one bundle (npm run build), so a frame in it is
 * looked up in the bundle's source map (src/Shard/ShardSession.ts, node_modules/effect/...).
 * Anything else, or a frame the map does not cover, is returned as it is.
 */
export function original(frame: Frame): { readonly url: string; readonly line: number } {
  const { url } = frame
  if (!/\/dist\/[^/]+\.js$/.test(url)) return { url, line: frame.lineNumber + 1 }
  if (!sourceMaps.has(url)) {
    let map: SourceMap | undefined
    try {
      map = new SourceMap(JSON.parse(readFileSync(`${url.startsWith("file:") ? fileURLToPath(url) : url}.map`, "utf8")))
    } catch {
      map = undefined
    }
    sourceMaps.set(url, map)
  }
  const entry = sourceMaps.get(url)?.findEntry(frame.lineNumber, frame.columnNumber ?? 0)
  if (entry === undefined || !("originalSource" in entry) || entry.originalSource === "") return { url, line: frame.lineNumber + 1 }
  return { url: new URL(entry.originalSource, url).href, line: entry.originalLine + 1 }
}

/** A frame's place for the tables: "src/Shard/ShardSession.ts:12" (or "" for native code), and its module bucket. */
export function place(frame: Frame, name: string): { readonly where: string; readonly module: string } {
  if (frame.url === "") return { where: "", module: moduleOf("", name) }
  const at = original(frame)
  return { where: `${shortUrl(at.url)}:${at.line}`, module: moduleOf(at.url, name) }
}

interface CpuProfile {
  readonly startTime: number
  readonly nodes: ReadonlyArray<ProfileNode>
  readonly samples: ReadonlyArray<number>
  readonly timeDeltas: ReadonlyArray<number>
}

export interface SelfTime {
  readonly name: string
  readonly where: string
  readonly ms: number
  readonly share: number
}

export interface ProfileSummary {
  readonly totalMs: number
  /** Total minus (idle): time the main thread was busy. */
  readonly busyMs: number
  readonly functions: ReadonlyArray<SelfTime>
  readonly modules: ReadonlyArray<SelfTime>
}

/** "file:///…/node_modules/effect/dist/x.js" -> "effect/dist/x.js"; "…/src/Transport/Inflater.ts" -> "src/Transport/Inflater.ts". */
export function shortUrl(url: string): string {
  if (url === "") return ""
  const nm = url.lastIndexOf("node_modules/")
  if (nm !== -1) return url.slice(nm + "node_modules/".length)
  for (const dir of ["/src/", "/dist/"]) {
    const at = url.lastIndexOf(dir)
    if (at !== -1) return url.slice(at + 1)
  }
  return url.replace(/^file:\/\//, "")
}

/** Module bucket: a package name, a directory of src/ (or dist/), or a node: built-in. */
export function moduleOf(url: string, name: string): string {
  if (url === "") return name.startsWith("(") ? name : "(native)"
  if (url.startsWith("node:")) return url
  const short = shortUrl(url)
  const parts = short.split("/")
  if (short.startsWith("src/") || short.startsWith("dist/")) return parts.length > 2 ? `${parts[0]}/${parts[1]}` : short
  return parts[0]!.startsWith("@") ? `${parts[0]}/${parts[1]}` : parts[0]!
}

/**
 * `window`: only samples taken within [start, end] µs of the monotonic clock (the clock of
 * `startTime` and of process.hrtime in any process on the machine), e.g. the measured blast.
 */
export function summarise(path: string, window?: readonly [number, number], top = 15): ProfileSummary {
  const profile = JSON.parse(readFileSync(path, "utf8")) as CpuProfile
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const selfUs = new Map<number, number>()
  let at = profile.startTime
  for (let i = 0; i < profile.samples.length; i++) {
    const delta = profile.timeDeltas[i] ?? 0
    at += delta
    if (window !== undefined && (at < window[0] || at > window[1])) continue
    const id = profile.samples[i]!
    selfUs.set(id, (selfUs.get(id) ?? 0) + delta)
  }
  let totalUs = 0
  let idleUs = 0
  const functions = new Map<string, { name: string; where: string; us: number }>()
  const modules = new Map<string, number>()
  for (const [id, us] of selfUs) {
    const frame = byId.get(id)!.callFrame
    totalUs += us
    if (frame.functionName === "(idle)") idleUs += us
    const name = frame.functionName === "" ? "(anonymous)" : frame.functionName
    const { where, module } = place(frame, name)
    const key = `${name}@${where}`
    const entry = functions.get(key) ?? { name, where, us: 0 }
    entry.us += us
    functions.set(key, entry)
    modules.set(module, (modules.get(module) ?? 0) + us)
  }
  const busyUs = totalUs - idleUs
  const share = (us: number): number => (busyUs > 0 ? us / busyUs : 0)
  return {
    totalMs: totalUs / 1000,
    busyMs: busyUs / 1000,
    functions: [...functions.values()]
      .filter((f) => f.name !== "(idle)")
      .sort((a, b) => b.us - a.us)
      .slice(0, top)
      .map((f) => ({ name: f.name, where: f.where, ms: f.us / 1000, share: share(f.us) })),
    modules: [...modules.entries()]
      .filter(([m]) => m !== "(idle)")
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([m, us]) => ({ name: m, where: "", ms: us / 1000, share: share(us) }))
  }
}
