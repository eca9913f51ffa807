// Reads the gateway's standard output (stdout broker: one JSON line per event) and counts lines,
// in its own process so the reading CPU is reported apart from the gateway's. Every event is one
// line: the gateway forwards `d` as Discord sent it, and JSON text never holds a raw newline.
import { Counter, serve } from "./rpc.ts"

const counter = new Counter()
process.stdin.on("data", (chunk: Buffer) => {
  let lines = 0
  for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) lines++
  counter.add(lines, chunk.length)
})
process.stdin.on("end", () => {})
serve(counter.handlers())
