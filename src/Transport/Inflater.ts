// Transport decompression (DISCORD_GATEWAY.md §12): one context per connection, fed every frame.
//
// The hot path decompresses synchronously through the zlib handle that node:zlib streams wrap,
// the same loop Node's own inflateSync runs, minus the close at the end (which would lose the
// shared context). That saves a thread-pool round trip per message. Where a Node release no
// longer exposes that handle, the stream API is used instead (asynchronous, same results).
//
// Memory is bounded by the limits, not by what the peer sends: a payload that inflates past
// maxPayloadBytes is counted and thrown away piece by piece while it is inflated (the context
// must still see all of it, so the stream goes on), and reported through onOversized with what
// its first bytes say (op, t, s: Discord writes them before d). Unterminated zlib-stream data
// is buffered up to maxPendingBytes; past that the stream cannot go on and push fails with an
// InflateError that is not resumable (a RESUME would replay the same payload).
import * as zlib from "node:zlib"
import { peekEnvelope } from "../Discord/PayloadScanner.ts"

export type CompressionKind = "zlib-stream" | "zstd-stream" | "none"

export class InflateError extends Error {
  readonly _tag = "InflateError"
  /**
   * False when resuming the session would only meet the same data again (a partial message past
   * its cap): the session must identify afresh.
   */
  readonly resumable: boolean
  constructor(message: string, options?: { readonly resumable?: boolean }) {
    super(message)
    this.resumable = options?.resumable ?? true
  }
}

export interface InflateLimits {
  /** Largest payload (after decompression, in bytes) handed on; larger ones are dropped while inflated. */
  readonly maxPayloadBytes: number
  /** Most compressed bytes of one unfinished zlib-stream message buffered (frames without 00 00 ff ff). */
  readonly maxPendingBytes: number
}

const MiB = 1024 * 1024

/** Well above Discord's largest real payloads (a GUILD_CREATE of a huge guild is a few MB). */
export const DEFAULT_INFLATE_LIMITS: InflateLimits = { maxPayloadBytes: 32 * MiB, maxPendingBytes: 32 * MiB }

/** A payload discarded for its size: what it was, as far as its first bytes tell. */
export interface DroppedPayload {
  /** Its full size in bytes (counted while it was inflated and thrown away). */
  readonly bytes: number
  readonly limit: number
  readonly op: number | undefined
  readonly t: string | undefined
  readonly s: number | undefined
}

/** Bytes of an oversized payload kept to tell what it was. */
const HEAD_BYTES = 512

const dropped = (bytes: number, limit: number, head: Buffer): DroppedPayload => ({ bytes, limit, ...peekEnvelope(head.toString("utf8")) })

/** Decompresses one connection's frames into complete payloads (their UTF-8 bytes). */
export interface Inflater {
  /**
   * Feed one websocket frame. `onPayload` is called with each complete payload, synchronously
   * where the runtime allows (always, for the sync path) or later (async fallback).
   * Throws InflateError when the data is corrupt (sync path); the async path reports it through
   * `onError`.
   */
  readonly push: (frame: Buffer) => void
  readonly close: () => void
  /** True when payloads are decoded inside push (tests and the benchmark report it). */
  readonly synchronous: boolean
}

export interface InflaterCallbacks {
  /**
   * One complete payload's bytes. On the synchronous path they are a view of a buffer shared by
   * every connection and overwritten by the next payload: copy what must outlive the call.
   */
  readonly onPayload: (bytes: Buffer) => void
  readonly onError: (error: InflateError) => void
  /**
   * A payload over limits.maxPayloadBytes was discarded; the stream goes on. Called in the
   * payload's place (in order with onPayload). Log it (type, seq, size) and count it.
   */
  readonly onOversized?: (payload: DroppedPayload) => void
}

const ZLIB_SUFFIX = 0xffff0000 // 00 00 ff ff read as a little-endian uint32

const endsWithSyncFlush = (b: Buffer): boolean => b.length >= 4 && b.readUInt32LE(b.length - 4) === ZLIB_SUFFIX

/** The shared output buffer of the synchronous path. */
const SCRATCH_BYTES = 256 * 1024
const scratch = Buffer.allocUnsafe(SCRATCH_BYTES)

/**
 * Node gives every stream an output buffer of `chunkSize`; the synchronous path writes to the
 * shared scratch buffer instead, so its streams get the smallest size zlib allows.
 */
const streamChunk = (forceAsync: boolean) => (forceAsync ? 64 * 1024 : zlib.constants.Z_MIN_CHUNK)

export const makeInflater = (
  kind: CompressionKind,
  callbacks: InflaterCallbacks,
  forceAsync = false,
  limits: InflateLimits = DEFAULT_INFLATE_LIMITS
): Inflater => {
  switch (kind) {
    case "none":
      return {
        synchronous: true,
        push: (frame) => {
          if (frame.length <= limits.maxPayloadBytes) return callbacks.onPayload(frame)
          callbacks.onOversized?.(dropped(frame.length, limits.maxPayloadBytes, frame.subarray(0, HEAD_BYTES)))
        },
        close: () => {}
      }
    case "zlib-stream":
      return framed(zlib.createInflate({ chunkSize: streamChunk(forceAsync) }), zlib.constants.Z_SYNC_FLUSH, endsWithSyncFlush, callbacks, forceAsync, limits)
    case "zstd-stream":
      // Every zstd-stream frame is one whole payload; the frame does not end a zstd frame.
      return framed(zlib.createZstdDecompress({ chunkSize: streamChunk(forceAsync) } as zlib.ZstdOptions), zlib.constants.ZSTD_e_continue, () => true, callbacks, forceAsync, limits)
  }
}

interface NativeHandle {
  onerror?: (this: NativeHandle, message: string, errno: number, code?: string) => void
  writeSync(flush: number, input: Buffer, inOff: number, inLen: number, out: Buffer, outOff: number, outLen: number): void
}

interface StreamInternals {
  _handle?: NativeHandle | null
  _writeState?: Uint32Array
  _chunkSize?: number
}

const framed = (
  stream: zlib.Inflate | zlib.ZstdDecompress,
  flushFlag: number,
  complete: (frame: Buffer) => boolean,
  callbacks: InflaterCallbacks,
  forceAsync: boolean,
  limits: InflateLimits
): Inflater => {
  const internals = stream as unknown as StreamInternals
  let failure: Error | undefined
  stream.on("error", (e: Error) => {
    failure = e
  })
  const pending: Array<Buffer> = []
  let pendingBytes = 0
  /** Set once buffered data went past its cap: the context cannot be fed consistently any more. */
  let overflow: InflateError | undefined
  const take = (frame: Buffer): Buffer | undefined => {
    if (overflow) throw overflow
    if (!complete(frame)) {
      if (pendingBytes + frame.length > limits.maxPendingBytes) {
        const total = pendingBytes + frame.length
        pending.length = 0
        pendingBytes = 0
        overflow = new InflateError(
          `an unfinished compressed message grew past ${limits.maxPendingBytes} bytes (${total} buffered without its end marker); ` +
            "the stream cannot go on, so the session must start afresh",
          { resumable: false }
        )
        throw overflow
      }
      pending.push(frame)
      pendingBytes += frame.length
      return undefined
    }
    if (pending.length === 0) return frame
    pending.push(frame)
    const whole = Buffer.concat(pending, pendingBytes + frame.length)
    pending.length = 0
    pendingBytes = 0
    return whole
  }
  // After close the native handle is freed; writing to it would abort the process, so a frame
  // that arrives late (the socket is still closing) is ignored.
  let closed = false
  const close = () => {
    closed = true
    pending.length = 0
    stream.close()
  }

  const handle = internals._handle
  if (!forceAsync && handle && typeof handle.writeSync === "function" && internals._writeState) {
    const state = internals._writeState
    // The handle reports corrupt input through onerror during writeSync; the stream's 'error'
    // event would only come on a later tick.
    const original = handle.onerror
    handle.onerror = function(message, errno, code) {
      failure = new Error(message)
      original?.call(this, message, errno, code)
    }
    const inflateSync = (input: Buffer): Buffer | DroppedPayload => {
      // Output goes to one scratch buffer shared by every connection (decoding is synchronous
      // and the payload is read before the next call), so an idle shard holds no buffer.
      let parts: Array<Buffer> | undefined
      let total = 0
      /** Set once the payload is over the cap: only its first bytes are kept from then on. */
      let head: Buffer | undefined
      let inOff = 0
      let inLen = input.length
      for (;;) {
        handle.writeSync(flushFlag, input, inOff, inLen, scratch, 0, SCRATCH_BYTES)
        if (failure) throw new InflateError(`corrupt compressed data: ${failure.message}`)
        const outLeft = state[0]!
        const inLeft = state[1]!
        const produced = SCRATCH_BYTES - outLeft
        total += produced
        if (head === undefined && total > limits.maxPayloadBytes) {
          const first = parts?.[0] ?? scratch
          head = Buffer.from(first.subarray(0, Math.min(HEAD_BYTES, parts === undefined ? produced : first.length)))
          parts = undefined
        }
        if (outLeft !== 0) {
          if (head !== undefined) return dropped(total, limits.maxPayloadBytes, head)
          if (parts === undefined) return scratch.subarray(0, produced)
          parts.push(Buffer.from(scratch.subarray(0, produced)))
          return Buffer.concat(parts)
        }
        // The scratch buffer filled up: keep a copy (unless discarding) and go on with the rest.
        if (head === undefined) (parts ??= []).push(Buffer.from(scratch))
        inOff += inLen - inLeft
        inLen = inLeft
      }
    }
    return {
      synchronous: true,
      close,
      push: (frame) => {
        if (closed) return
        const input = take(frame)
        if (input === undefined) return
        if (failure) throw new InflateError(`corrupt compressed data: ${failure.message}`)
        let payload: Buffer | DroppedPayload
        try {
          payload = inflateSync(input)
        } catch (e) {
          throw e instanceof InflateError ? e : new InflateError(`corrupt compressed data: ${String(e)}`)
        }
        if (!Buffer.isBuffer(payload)) callbacks.onOversized?.(payload)
        // zstd may hold a payload back until its next block; an empty result just waits.
        else if (payload.length > 0) callbacks.onPayload(payload)
      }
    }
  }

  // Fallback: the public stream API, one flush per complete message, results in order.
  const output: Array<Buffer> = []
  let outputBytes = 0
  let head: Buffer | undefined
  stream.on("data", (chunk: Buffer) => {
    outputBytes += chunk.length
    if (head !== undefined) return
    if (outputBytes <= limits.maxPayloadBytes) return void output.push(chunk)
    // Over the cap: keep the first bytes to tell what it was, drop the rest as it comes.
    const first = output[0] ?? chunk
    head = Buffer.from(first.subarray(0, HEAD_BYTES))
    output.length = 0
  })
  let reported = false
  stream.on("error", (e: Error) => {
    if (reported) return
    reported = true
    callbacks.onError(new InflateError(`corrupt compressed data: ${e.message}`))
  })
  return {
    synchronous: false,
    close,
    push: (frame) => {
      if (closed || overflow) return
      let input: Buffer | undefined
      try {
        input = take(frame)
      } catch (e) {
        if (e instanceof InflateError) return callbacks.onError(e)
        throw e
      }
      if (input === undefined || failure) return
      stream.write(input)
      stream.flush(flushFlag, () => {
        if (failure) return
        const size = outputBytes
        const first = head
        outputBytes = 0
        head = undefined
        if (first !== undefined) return callbacks.onOversized?.(dropped(size, limits.maxPayloadBytes, first))
        if (output.length === 0) return
        const bytes = output.length === 1 ? output[0]! : Buffer.concat(output)
        output.length = 0
        callbacks.onPayload(bytes)
      })
    }
  }
}
