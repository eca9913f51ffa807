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

const LINE_START = Buffer.from(`{"event":"`)
const LINE_DATA = Buffer.from(`","data":`)
const LINE_END = Buffer.from(`}\n`)
const FRAMING_BYTES = LINE_START.length + LINE_DATA.length + LINE_END.length

/** Each event name's bytes, made once (a bounded handful of names). */
const NAMES_KEPT = 512
const nameBytes = new Map<string, Buffer>()
const bytesOf = (t: string): Buffer => {
  let bytes = nameBytes.get(t)
  if (bytes === undefined) {
    bytes = Buffer.from(t, "utf8")
    if (nameBytes.size < NAMES_KEPT) nameBytes.set(t, bytes)
  }
  return bytes
}

/** Copies a few bytes: a loop beats a native call at this size. */
const put = (out: Buffer, at: number, bytes: Buffer): number => {
  for (let i = 0; i < bytes.length; i++) out[at + i] = bytes[i]!
  return at + bytes.length
}

/**
 * The batch as `{"event":"T","data":D}` lines, in one buffer: `d`'s bytes are copied as Discord
 * sent them, never decoded to text and encoded back.
 */
export const jsonLines = (batch: ReadonlyArray<DispatchEvent>, allocate: (size: number) => Buffer = Buffer.allocUnsafe): Buffer => {
  let size = 0
  for (const e of batch) size += FRAMING_BYTES + bytesOf(e.t).length + e.data.length
  const out = allocate(size)
  let at = 0
  for (const e of batch) {
    at = put(out, at, LINE_START)
    at = put(out, at, bytesOf(e.t))
    at = put(out, at, LINE_DATA)
    out.set(e.data, at)
    at = put(out, at + e.data.length, LINE_END)
  }
  return out
}

type Write = (chunk: string | Uint8Array) => Effect.Effect<void, { readonly message: string }>

/** Node's stdout: one write, resumed by its callback (the data has left the process's buffer). */
const directWrite = (output: NodeJS.WritableStream): Write => (chunk) =>
  Effect.callback((resume) => {
    output.write(chunk, (error) => resume(error ? Effect.fail(error) : Effect.void))
  })

/** Batches up to this size are written from one buffer kept for the next batch. */
const KEPT_BUFFER_MAX = 4 * 1024 * 1024

/**
 * Node's stdout is written batch after batch, each write awaited before the next batch is built,
 * so one buffer serves them all: a fresh one of a few hundred KiB per batch costs the kernel's page
 * faults every time (10 % of the gateway's CPU per event in a profile). A batch built while a write
 * is still out (not expected) or larger than KEPT_BUFFER_MAX gets a buffer of its own.
 */
const keptBuffer = () => {
  let kept: Buffer | undefined
  let lent = false
  return {
    take: (size: number): Buffer => {
      if (lent || size > KEPT_BUFFER_MAX) return Buffer.allocUnsafe(size)
      if (kept === undefined || kept.length < size) kept = Buffer.allocUnsafeSlow(Math.max(size, 64 * 1024))
      lent = true
      return kept.subarray(0, size)
    },
    /** The write of what `take` lent has completed (or failed): its bytes are no longer read. */
    returned: (): void => {
      lent = false
    }
  }
}

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
  // Other Stdio sinks may keep the chunks they are given: only Node's stdout reuses one buffer.
  const buffer = isNodeStdio(stdio) ? keptBuffer() : undefined
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
      if (buffer === undefined) return write(jsonLines(batch))
      return write(jsonLines(batch, buffer.take)).pipe(Effect.ensuring(Effect.sync(buffer.returned)))
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
