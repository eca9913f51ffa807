// The Node version check at the very start of dist/main.js: one line, exit 2, no stack trace.
import { execFileSync, spawnSync } from "node:child_process"
import { existsSync } from "node:fs"
import { describe, expect, it } from "vitest"
import { nodeVersionProblem } from "../../src/preflight.ts"
import { freshDir, MAIN } from "../support/gateway.ts"

/** A Node older than 22.19 on this machine (this image ships Node 20 as /usr/bin/node), if any. */
const oldNode = (() => {
  const candidates = new Set<string>(["/usr/bin/node", "/usr/local/bin/node"])
  try {
    for (const path of execFileSync("which", ["-a", "node"], { encoding: "utf8" }).split("\n")) if (path) candidates.add(path)
  } catch {
    // no `which`: the fixed candidates only
  }
  for (const path of candidates) {
    if (!existsSync(path)) continue
    const run = spawnSync(path, ["-p", "process.versions.node"], { encoding: "utf8" })
    const version = run.stdout?.trim()
    if (run.status === 0 && version && nodeVersionProblem(version, path) !== undefined) return { path, version }
  }
  return undefined
})()
if (oldNode === undefined) console.warn("preflight test: no Node older than 22.19 on this machine; the real-old-Node test is skipped")

describe("Node version check", () => {
  it("accepts 22.19 and later, refuses what is older, naming found, needed and the fix", () => {
    for (const ok of ["22.19.0", "22.20.1", "23.0.0", "24.0.0", "26.10.0"]) expect(nodeVersionProblem(ok, "/x/node")).toBeUndefined()
    for (const old of ["22.18.9", "22.0.0", "20.20.2", "18.19.0", "8.0.0"]) {
      const line = nodeVersionProblem(old, "/usr/bin/node")
      expect(line).toContain(`Node.js ${old} (/usr/bin/node) is too old`)
      expect(line).toContain(">= 22.19")
      expect(line).toContain("Install Node 24")
      expect(line).not.toContain("\n")
    }
  })

  it.skipIf(oldNode === undefined)("dist/main.js on an old Node exits 2 with that one line and no stack trace", () => {
    const run = spawnSync(oldNode!.path, [MAIN], {
      cwd: freshDir(),
      env: { PATH: process.env.PATH ?? "", DISCORD_TOKEN: "x" },
      encoding: "utf8",
      timeout: 30_000
    })
    expect(run.status).toBe(2)
    expect(run.stdout).toBe("")
    const lines = run.stderr.trimEnd().split("\n")
    expect(lines).toHaveLength(1)
    expect(lines[0]).toBe(nodeVersionProblem(oldNode!.version, oldNode!.path))
    expect(run.stderr).not.toMatch(/\bat \S+ \(|Error:/)
  })

  it("dist/main.js on this Node goes past the check (to the config error it would give anyway)", () => {
    const run = spawnSync(process.execPath, [MAIN], { cwd: freshDir(), env: { PATH: process.env.PATH ?? "" }, encoding: "utf8", timeout: 30_000 })
    expect(run.stderr).not.toContain("is too old")
    expect(run.status).toBe(2)
    expect(run.stderr).toMatch(/token/i)
  })
})
