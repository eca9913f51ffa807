// Events as lines on standard output: {"event": NAME, "data": D}. Nothing else is ever written
// there (logs go to stderr). Standard output is the platform's Stdio service, so a test swaps it.
// When that service is the process's own (NodeStdio, as main provides), each batch is written to
// process.stdout directly and counts as delivered once the write was flushed: running Stdio's
// stdout sink per batch cost 10-30 µs more per batch than this write (measured in-process, 2 KB
// batches), on the hot path. Any other Stdio gets the batch through its stdout sink.
import { Effect, Layer, type Stdio, Stream } from "effect"
import { currentStdio, isNodeStdio } from "../Process/Stdio.ts"
import { AppConfig } from "../Config/AppConfig.ts"
import { allPublished, Broker, BrokerError } from "./Broker.ts"
import type { DispatchEvent } from "./DispatchEvent.ts"
import type { PayloadEncoding } from "../Config/GatewayConfig.ts"
import { encodeEvent } from "./Encoding.ts"

/** `{"event":"T","data":D}` built from the raw `d` text, so the event is never re-serialised. */
export const jsonLine = (e: DispatchEvent): string => `{"event":"${e.t}","data":${e.data}}\n`

type Write = (chunk: string | Uint8Array) => Effect.Effect<void, { readonly message: string }>

/** Node's stdout: one write, resumed by its callback (the data has left the process's buffer). */
const directWrite = (output: NodeJS.WritableStream): Write => (chunk) =>
  Effect.callback((resume) => {
    output.write(chunk, (error) => resume(error ? Effect.fail(error) : Effect.void))
  })

/** Any Stdio: the batch through its stdout sink. */
const sinkWrite = (stdio: Stdio.Stdio): Write => {
  const stdout = stdio.stdout()
  return (chunk) => Stream.run(Stream.succeed(chunk), stdout)
}

export const makeStdoutBroker = (stdio: Stdio.Stdio, encoding: PayloadEncoding) => {
  let open = true
  const writeOnce = isNodeStdio(stdio) ? directWrite(process.stdout) : sinkWrite(stdio)
  if (isNodeStdio(stdio)) {
    process.stdout.on("error", () => {
      open = false
    })
  }
  // One write per batch: the batch is joined first.
  const write = (chunk: string | Uint8Array) =>
    writeOnce(chunk).pipe(
      Effect.mapError((error) => {
        open = false
        return new BrokerError({ broker: "stdout", reason: `write failed: ${error.message}`, cause: error })
      }),
      Effect.as(allPublished)
    )
  return Broker.of({
    name: "stdout",
    connected: () => open,
    publish: (batch) => {
      if (encoding !== "json") {
        // Length-free concatenation is a valid MessagePack stream: decoders read object after object.
        return write(Buffer.concat(batch.map((e) => encodeEvent(encoding, e))))
      }
      let text = ""
      for (const e of batch) text += jsonLine(e)
      return write(text)
    }
  })
}

/** Writes to the Stdio in context (a test's own, or NodeStdio from main), else to Node's. */
export const StdoutBrokerLive = Layer.effect(
  Broker,
  Effect.gen(function*() {
    const config = yield* AppConfig
    const stdio = yield* currentStdio
    return makeStdoutBroker(stdio, config.broker.encoding)
  })
)
