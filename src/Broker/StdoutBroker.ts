// Events as lines on standard output: {"event": NAME, "data": D}. Nothing else is ever written
// there (logs go to stderr). A batch counts as delivered once the write has been flushed.
import { Effect, Layer } from "effect"
import { AppConfig } from "../Config/AppConfig.ts"
import { Broker, BrokerError } from "./Broker.ts"
import type { DispatchEvent } from "./DispatchEvent.ts"
import type { PayloadEncoding } from "../Config/GatewayConfig.ts"
import { encodeEvent } from "./Encoding.ts"

/** `{"event":"T","data":D}` built from the raw `d` text, so the event is never re-serialised. */
export const jsonLine = (e: DispatchEvent): string => `{"event":"${e.t}","data":${e.data}}\n`

const write = (output: NodeJS.WritableStream, chunk: string | Uint8Array) =>
  Effect.callback<void, BrokerError>((resume) => {
    output.write(chunk, (error) => {
      resume(error ? Effect.fail(new BrokerError({ broker: "stdout", reason: `write failed: ${error.message}`, cause: error })) : Effect.void)
    })
  })

export const makeStdoutBroker = (output: NodeJS.WritableStream, encoding: PayloadEncoding) => {
  let open = true
  output.on("error", () => {
    open = false
  })
  return Broker.of({
    name: "stdout",
    connected: () => open,
    publish: (batch) => {
      if (encoding !== "json") {
        // Length-free concatenation is a valid MessagePack stream: decoders read object after object.
        const parts = batch.map((e) => encodeEvent(encoding, e))
        return write(output, Buffer.concat(parts))
      }
      let text = ""
      for (const e of batch) text += jsonLine(e)
      return write(output, text)
    }
  })
}

export const StdoutBrokerLive = Layer.effect(
  Broker,
  Effect.map(AppConfig, (config) => makeStdoutBroker(process.stdout, config.broker.encoding))
)
