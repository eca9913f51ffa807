// Events as lines on standard output: {"event": NAME, "data": D}. Nothing else is ever written
// there (logs go to stderr). Standard output is the platform's Stdio service (NodeStdio in the
// daemon), so a test swaps it; a batch counts as delivered once the stream accepted the write
// (a pipe or file: in the kernel; a full pipe: after it drained).
import { Effect, Layer, type Stdio, Stream } from "effect"
import { currentStdio } from "../Process/Stdio.ts"
import { AppConfig } from "../Config/AppConfig.ts"
import { Broker, BrokerError } from "./Broker.ts"
import type { DispatchEvent } from "./DispatchEvent.ts"
import { encodeEventMsgpack } from "./Encoding.ts"

/** `{"event":"T","data":D}` built from the raw `d` text, so the event is never re-serialised. */
export const jsonLine = (e: DispatchEvent): string => `{"event":"${e.t}","data":${e.data}}\n`

export const makeStdoutBroker = (stdio: Stdio.Stdio, encoding: "json" | "msgpack") => {
  let open = true
  const stdout = stdio.stdout()
  // One write per batch: the batch is joined first, so the platform's sink runs once per batch.
  const write = (chunk: string | Uint8Array) =>
    Stream.run(Stream.succeed(chunk), stdout).pipe(
      Effect.mapError((error) => {
        open = false
        return new BrokerError({ broker: "stdout", reason: `write failed: ${error.message}`, cause: error })
      })
    )
  return Broker.of({
    name: "stdout",
    connected: () => open,
    publish: (batch) => {
      if (encoding === "msgpack") {
        // Length-free concatenation is a valid MessagePack stream: decoders read object after object.
        return write(Buffer.concat(batch.map(encodeEventMsgpack)))
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
