// The folder layout is the architecture: dependencies between src/ folders point one way. A cycle
// (Shard imports Broker imports Shard) means two folders are really one, or a contract sits on the
// wrong side; this test names the cycle so it is fixed where it starts.
import { readdirSync, readFileSync, statSync } from "node:fs"
import { join, relative, resolve, dirname, sep } from "node:path"
import { describe, expect, it } from "vitest"

const SRC = resolve(import.meta.dirname, "../../src")

const files = (dir: string): Array<string> =>
  readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    return statSync(path).isDirectory() ? files(path) : path.endsWith(".ts") ? [path] : []
  })

/** The top folder under src/ ("" for files directly in src/). */
const folderOf = (path: string) => {
  const parts = relative(SRC, path).split(sep)
  return parts.length > 1 ? parts[0]! : ""
}

const folderGraph = () => {
  const graph = new Map<string, Map<string, string>>()
  for (const file of files(SRC)) {
    const from = folderOf(file)
    const text = readFileSync(file, "utf8")
    for (const match of text.matchAll(/^(?:import|export)[^"']*?from\s+["'](\.[^"']+)["']/gm)) {
      const to = folderOf(resolve(dirname(file), match[1]!))
      if (to === from || to === "" || from === "") continue
      const edges = graph.get(from) ?? new Map<string, string>()
      if (!edges.has(to)) edges.set(to, `${relative(SRC, file)} -> ${match[1]}`)
      graph.set(from, edges)
    }
  }
  return graph
}

const cycles = (graph: Map<string, Map<string, string>>): Array<string> => {
  const found: Array<string> = []
  for (const [a, edges] of graph) {
    for (const [b, why] of edges) {
      if (a < b && graph.get(b)?.has(a)) found.push(`${a} <-> ${b} (${why}; ${graph.get(b)!.get(a)})`)
    }
  }
  // Longer cycles: a path from b back to a through other folders.
  const reach = (from: string, target: string, seen: Set<string>): boolean => {
    for (const next of graph.get(from)?.keys() ?? []) {
      if (next === target) return true
      if (!seen.has(next)) {
        seen.add(next)
        if (reach(next, target, seen)) return true
      }
    }
    return false
  }
  for (const [a, edges] of graph) {
    for (const b of edges.keys()) {
      if (graph.get(b)?.has(a)) continue
      if (reach(b, a, new Set([b]))) found.push(`${a} -> ${b} -> ... -> ${a}`)
    }
  }
  return found
}

describe("architecture", () => {
  it("has no import cycles between the folders of src/", () => {
    expect(cycles(folderGraph())).toEqual([])
  })
})
