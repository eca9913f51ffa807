// `node scripts/check-lock.ts [DIR]`: fails (exit 1) naming every package-lock.json entry that an
// offline, hash-checked install could not fetch: `nix run` (importNpmLock) downloads each package
// by its `resolved` URL and checks it against its `integrity`, so both must be there, and the URL
// must be the public registry's (a mirror's host only resolves on the machine that wrote it).
// Also checks that the committed .npmrc keeps npm writing the URLs. Run by .ci/run.
import { readFileSync } from "node:fs"
import { join, resolve } from "node:path"

const PUBLIC_REGISTRY = "https://registry.npmjs.org/"

interface LockEntry {
  readonly version?: string
  readonly resolved?: string
  readonly integrity?: string
  readonly link?: boolean
  readonly name?: string
}

/** The package name an entry installs: its own `name` (an alias) or the last node_modules/ segment. */
const packageName = (key: string, entry: LockEntry) =>
  entry.name ?? key.slice(key.lastIndexOf("node_modules/") + "node_modules/".length)

/** What is wrong with one entry of `packages`, or undefined. */
export const entryProblem = (key: string, entry: LockEntry): string | undefined => {
  // The project itself, and workspace links, are not fetched.
  if (key === "" || entry.link === true) return undefined
  const missing = [entry.resolved ? undefined : "resolved", entry.integrity ? undefined : "integrity"].filter(Boolean)
  if (missing.length > 0) return `${key}@${entry.version ?? "?"}: no ${missing.join(" and no ")}`
  const resolved = entry.resolved!
  if (resolved.startsWith("file:")) return undefined
  if (!resolved.startsWith(PUBLIC_REGISTRY)) {
    return `${key}@${entry.version ?? "?"}: resolved ${resolved} is not on ${PUBLIC_REGISTRY}`
  }
  const name = packageName(key, entry)
  const base = name.startsWith("@") ? name.split("/")[1] : name
  const expected = `${PUBLIC_REGISTRY}${name}/-/${base}-${entry.version}.tgz`
  if (resolved !== expected) return `${key}@${entry.version ?? "?"}: resolved ${resolved}, expected ${expected}`
  return undefined
}

export const lockProblems = (lockText: string): Array<string> => {
  const lock = JSON.parse(lockText) as { lockfileVersion?: number; packages?: Record<string, LockEntry> }
  if (lock.packages === undefined || (lock.lockfileVersion ?? 0) < 2) {
    return [`lockfileVersion ${lock.lockfileVersion ?? "?"} has no "packages" section: regenerate it with npm 7 or later`]
  }
  return Object.entries(lock.packages).flatMap(([key, entry]) => entryProblem(key, entry) ?? [])
}

/** The .npmrc must turn npm's URL omission off, or the next `npm install` drops them again. */
export const npmrcProblem = (npmrcText: string | undefined): string | undefined => {
  const setting = npmrcText
    ?.split("\n")
    .map((line) => line.trim())
    .find((line) => /^omit-lockfile-registry-resolved\s*=/.test(line))
  return setting?.replace(/\s/g, "") === "omit-lockfile-registry-resolved=false"
    ? undefined
    : ".npmrc must contain omit-lockfile-registry-resolved=false (a user config may set it to true)"
}

const main = () => {
  const dir = resolve(process.argv[2] ?? ".")
  const problems = lockProblems(readFileSync(join(dir, "package-lock.json"), "utf8"))
  let npmrc: string | undefined
  try {
    npmrc = readFileSync(join(dir, ".npmrc"), "utf8")
  } catch {
    npmrc = undefined
  }
  const rc = npmrcProblem(npmrc)
  if (rc) problems.push(rc)
  if (problems.length === 0) {
    process.stdout.write("check-lock: every package-lock.json entry has a public resolved URL and an integrity\n")
    return
  }
  for (const problem of problems) process.stderr.write(`check-lock: ${problem}\n`)
  process.stderr.write(
    `check-lock: ${problems.length} problem(s). Fix: with this repository's .npmrc in place, delete the ` +
      "entries named above from package-lock.json and run `npm install --package-lock-only`: npm fetches them again and writes both\n"
  )
  process.exitCode = 1
}

if (import.meta.main) main()
