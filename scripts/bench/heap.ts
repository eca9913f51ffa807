// Reads V8 heap data for the report: a heap snapshot summarised by kind of object (with what holds
// each kind), and a sampling heap profile summarised by allocating function and module.
import { type Frame, place } from "./profile.ts"

export interface HeapGroup {
  /** Constructor name for objects, "(kind)" for V8's internal kinds (strings, code, arrays…). */
  readonly name: string
  readonly count: number
  /** Sum of the objects' own sizes, bytes. */
  readonly bytes: number
  /** Who holds them (owner kind . field), by share of the group's bytes; first retainer only. */
  readonly heldBy: ReadonlyArray<{ readonly by: string; readonly share: number }>
}

export interface SnapshotSummary {
  readonly totalBytes: number
  readonly groups: ReadonlyArray<HeapGroup>
}

interface Snapshot {
  readonly snapshot: { readonly meta: { readonly node_fields: Array<string>; readonly node_types: [Array<string>]; readonly edge_fields: Array<string>; readonly edge_types: [Array<string>] } }
  readonly nodes: Array<number>
  readonly edges: Array<number>
  readonly strings: Array<string>
}

export function summariseSnapshot(json: string, top = 12): SnapshotSummary {
  const s = JSON.parse(json) as Snapshot
  const meta = s.snapshot.meta
  const NF = meta.node_fields.length
  const EF = meta.edge_fields.length
  const nType = meta.node_fields.indexOf("type")
  const nName = meta.node_fields.indexOf("name")
  const nSelf = meta.node_fields.indexOf("self_size")
  const nEdges = meta.node_fields.indexOf("edge_count")
  const eType = meta.edge_fields.indexOf("type")
  const eName = meta.edge_fields.indexOf("name_or_index")
  const eTo = meta.edge_fields.indexOf("to_node")
  const nodeTypes = meta.node_types[0]
  const edgeTypes = meta.edge_types[0]
  const count = s.nodes.length / NF

  const groupOf = (i: number): string => {
    const type = nodeTypes[s.nodes[i * NF + nType]!]!
    const name = s.strings[s.nodes[i * NF + nName]!]!
    if (type === "object" || type === "native") return name.length > 60 ? `${name.slice(0, 57)}…` : name
    if (type.includes("string")) return "(string)"
    return `(${type})`
  }
  const groups = new Array<string>(count)
  for (let i = 0; i < count; i++) groups[i] = groupOf(i)

  // First strong retainer of every node (edge order), as "owner group.field".
  const retainer = new Array<string | undefined>(count)
  let edge = 0
  for (let i = 0; i < count; i++) {
    const edges = s.nodes[i * NF + nEdges]!
    for (let k = 0; k < edges; k++, edge++) {
      const type = edgeTypes[s.edges[edge * EF + eType]!]!
      if (type === "weak" || type === "shortcut") continue
      const to = s.edges[edge * EF + eTo]! / NF
      if (retainer[to] !== undefined) continue
      const nameOrIndex = s.edges[edge * EF + eName]!
      const field = type === "element" || type === "hidden" ? "[]" : type === "internal" ? `<${s.strings[nameOrIndex] ?? ""}>` : s.strings[nameOrIndex] ?? "?"
      retainer[to] = `${groups[i]}.${field}`
    }
  }

  const byGroup = new Map<string, { count: number; bytes: number; heldBy: Map<string, number> }>()
  let totalBytes = 0
  for (let i = 0; i < count; i++) {
    const self = s.nodes[i * NF + nSelf]!
    totalBytes += self
    const g = byGroup.get(groups[i]!) ?? { count: 0, bytes: 0, heldBy: new Map<string, number>() }
    g.count++
    g.bytes += self
    const by = retainer[i] ?? "(root)"
    g.heldBy.set(by, (g.heldBy.get(by) ?? 0) + self)
    byGroup.set(groups[i]!, g)
  }
  return {
    totalBytes,
    groups: [...byGroup.entries()]
      .sort((a, b) => b[1].bytes - a[1].bytes)
      .slice(0, top)
      .map(([name, g]) => ({
        name,
        count: g.count,
        bytes: g.bytes,
        heldBy: [...g.heldBy.entries()].sort((a, b) => b[1] - a[1]).slice(0, 2).map(([by, bytes]) => ({ by, share: g.bytes > 0 ? bytes / g.bytes : 0 }))
      }))
  }
}

interface SamplingNode {
  readonly callFrame: Frame
  readonly selfSize: number
  readonly children: ReadonlyArray<SamplingNode>
}

export interface AllocationSite {
  readonly name: string
  readonly where: string
  readonly bytes: number
  readonly share: number
}

export interface SamplingSummary {
  readonly totalBytes: number
  readonly functions: ReadonlyArray<AllocationSite>
  readonly modules: ReadonlyArray<AllocationSite>
}

/** Bytes allocated (sampled estimate) per function and per module, from a sampling heap profile. */
export function summariseSampling(head: SamplingNode, top = 12): SamplingSummary {
  const functions = new Map<string, { name: string; where: string; bytes: number }>()
  const modules = new Map<string, number>()
  let totalBytes = 0
  const walk = (node: SamplingNode): void => {
    const f = node.callFrame
    if (node.selfSize > 0) {
      totalBytes += node.selfSize
      const name = f.functionName === "" ? "(anonymous)" : f.functionName
      const { where, module } = place(f, name)
      const key = `${name}@${where}`
      const entry = functions.get(key) ?? { name, where, bytes: 0 }
      entry.bytes += node.selfSize
      functions.set(key, entry)
      modules.set(module, (modules.get(module) ?? 0) + node.selfSize)
    }
    for (const child of node.children) walk(child)
  }
  walk(head)
  const share = (bytes: number): number => (totalBytes > 0 ? bytes / totalBytes : 0)
  return {
    totalBytes,
    functions: [...functions.values()].sort((a, b) => b.bytes - a.bytes).slice(0, top).map((f) => ({ ...f, share: share(f.bytes) })),
    modules: [...modules.entries()].sort((a, b) => b[1] - a[1]).slice(0, top).map(([name, bytes]) => ({ name, where: "", bytes, share: share(bytes) }))
  }
}
