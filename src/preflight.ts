// The first module dist/main.js evaluates (main.ts imports it before anything else, and ESM runs
// imports in order): on a Node older than the gateway needs, stop with one line that says what to
// do, before a missing API (zlib's zstd, for one) fails later with a stack trace.
// Keep it free of imports and of syntax or APIs newer than Node 18, so that it runs there too.

/** The oldest Node the gateway runs on (package.json's engines). */
export const NODE_NEEDED = { major: 22, minor: 19 } as const

/** The one line to print when `version` (process.versions.node) is too old, else undefined. */
export const nodeVersionProblem = (version: string, execPath: string): string | undefined => {
  const [major = 0, minor = 0] = version.split(".").map((part) => Number.parseInt(part, 10))
  const { major: needMajor, minor: needMinor } = NODE_NEEDED
  if (major > needMajor || (major === needMajor && minor >= needMinor)) return undefined
  return `spectacles-gateway: Node.js ${version} (${execPath}) is too old: it needs Node.js >= ${needMajor}.${needMinor}. ` +
    "Install Node 24 (https://nodejs.org, or `nvm install 24`), or in a clone of the repository use " +
    "`npm start`, which runs the Node 24 that `npm install` put in node_modules"
}

const problem = nodeVersionProblem(process.versions.node, process.execPath)
if (problem !== undefined) {
  process.stderr.write(`${problem}\n`)
  process.exit(2)
}
