// The lock-file check that CI runs: what `nix run` and offline installs need of package-lock.json.
import { execFileSync, spawnSync } from "node:child_process"
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { describe, expect, it } from "vitest"
import { lockProblems, npmrcProblem } from "../../scripts/check-lock.ts"

const ROOT = resolve(import.meta.dirname, "../..")
const SCRIPT = join(ROOT, "scripts/check-lock.ts")
const lockText = readFileSync(join(ROOT, "package-lock.json"), "utf8")

const withEntries = (entries: Record<string, unknown>) =>
  JSON.stringify({ lockfileVersion: 3, packages: { "": { name: "x" }, ...entries } })

describe("check-lock", () => {
  it("passes the repository's own lock file and .npmrc", () => {
    expect(lockProblems(lockText)).toEqual([])
    expect(npmrcProblem(readFileSync(join(ROOT, ".npmrc"), "utf8"))).toBeUndefined()
    const out = execFileSync(process.execPath, [SCRIPT, ROOT], { encoding: "utf8" })
    expect(out).toContain("every package-lock.json entry")
  })

  it("names each entry without resolved or integrity, and a mirror's URL", () => {
    const problems = lockProblems(withEntries({
      "node_modules/ws": { version: "8.23.0", integrity: "sha512-a" },
      "node_modules/@scope/pkg": { version: "1.0.0", resolved: "https://registry.npmjs.org/@scope/pkg/-/pkg-1.0.0.tgz" },
      "node_modules/mirrored": { version: "2.0.0", resolved: "http://npm-mirror.local:4873/mirrored/-/mirrored-2.0.0.tgz", integrity: "sha512-b" },
      "node_modules/good": { version: "1.2.3", resolved: "https://registry.npmjs.org/good/-/good-1.2.3.tgz", integrity: "sha512-c" },
      "node_modules/@scope/good": { version: "1.0.0", resolved: "https://registry.npmjs.org/@scope/good/-/good-1.0.0.tgz", integrity: "sha512-d" },
      "packages/local": { link: true, resolved: "packages/local" }
    }))
    expect(problems).toEqual([
      "node_modules/ws@8.23.0: no resolved",
      "node_modules/@scope/pkg@1.0.0: no integrity",
      "node_modules/mirrored@2.0.0: resolved http://npm-mirror.local:4873/mirrored/-/mirrored-2.0.0.tgz is not on https://registry.npmjs.org/"
    ])
  })

  it("refuses a lock without a packages section and an .npmrc that does not keep the URLs", () => {
    expect(lockProblems(JSON.stringify({ lockfileVersion: 1, dependencies: {} }))[0]).toMatch(/no "packages" section/)
    expect(npmrcProblem(undefined)).toMatch(/omit-lockfile-registry-resolved=false/)
    expect(npmrcProblem("omit-lockfile-registry-resolved=true\n")).toMatch(/omit-lockfile-registry-resolved=false/)
    expect(npmrcProblem("# keep\nomit-lockfile-registry-resolved = false\n")).toBeUndefined()
  })

  it("exits 1 naming the entry when run on a lock that lacks a URL", () => {
    const dir = mkdtempSync(join(tmpdir(), "check-lock-"))
    const lock = JSON.parse(lockText) as { packages: Record<string, { resolved?: string }> }
    delete lock.packages["node_modules/ws"]!.resolved
    writeFileSync(join(dir, "package-lock.json"), JSON.stringify(lock))
    writeFileSync(join(dir, ".npmrc"), "omit-lockfile-registry-resolved=false\n")
    const run = spawnSync(process.execPath, [SCRIPT, dir], { encoding: "utf8" })
    expect(run.status).toBe(1)
    expect(run.stderr).toContain("node_modules/ws@8.23.0: no resolved")
    expect(run.stderr).toContain("1 problem(s)")
  })
})
