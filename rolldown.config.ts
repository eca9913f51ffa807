// `npm run build`: the gateway as two ES module files, dist/main.js and dist/daemon.js (plus source
// maps), with every dependency bundled in and tree-shaken. Loaded as hundreds of separate modules
// (tsc's output), the daemon took ~0.7 s and ~40 MiB of RSS more just to start (bench/RESULTS.md).
// main.js stays small: it checks the Node version and sizes V8's young generation before it
// imports daemon.js (src/main.ts), so the split at that dynamic import is kept on purpose.
import { defineConfig } from "rolldown"

export default defineConfig({
  input: { main: "src/main.ts" },
  platform: "node",
  logLevel: "warn",
  tsconfig: "tsconfig.build.json",
  output: {
    dir: "dist",
    format: "esm",
    sourcemap: true,
    entryFileNames: "[name].js",
    chunkFileNames: "[name].js",
    cleanDir: true
  }
})
