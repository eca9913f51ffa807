// Transport decompression (DISCORD_GATEWAY.md §12): one context per connection, fed every frame.
//
// The hot path decompresses synchronously through the zlib handle that node:zlib streams wrap,
// the same loop Node's own inflateSync runs, minus the close at the end (which would lose the
// shared context). That saves a thread-pool round trip per message. Where a Node release no
// longer exposes that handle, the stream API is used instead (asynchronous, same results).
import * as zlib from "node:zlib"

export type CompressionKind = "zlib-stream" | "zstd-stream" | "none"

export class InflateError extends Error {
  readonly _tag = "InflateError"
}

/** Decodes one connection's frames into complete payload texts. */
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
  readonly onPayload: (text: string) => void
  readonly onError: (error: InflateError) => void
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

export const makeInflater = (kind: CompressionKind, callbacks: InflaterCallbacks, forceAsync = false): Inflater => {
  switch (kind) {
    case "none":
      return {
        synchronous: true,
        push: (frame) => callbacks.onPayload(frame.toString("utf8")),
        close: () => {}
      }
    case "zlib-stream":
      return framed(zlib.createInflate({ chunkSize: streamChunk(forceAsync) }), zlib.constants.Z_SYNC_FLUSH, endsWithSyncFlush, callbacks, forceAsync)
    case "zstd-stream":
      // Every zstd-stream frame is one whole payload; the frame does not end a zstd frame.
      return framed(zlib.createZstdDecompress({ chunkSize: streamChunk(forceAsync) } as zlib.ZstdOptions), zlib.constants.ZSTD_e_continue, () => true, callbacks, forceAsync)
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
  forceAsync: boolean
): Inflater => {
  const internals = stream as unknown as StreamInternals
  let failure: Error | undefined
  stream.on("error", (e: Error) => {
    failure = e
  })
  const pending: Array<Buffer> = []
  let pendingBytes = 0
  const take = (frame: Buffer): Buffer | undefined => {
    if (!complete(frame)) {
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
    const inflateSync = (input: Buffer): string => {
      // Output goes to one scratch buffer shared by every connection (decoding is synchronous
      // and the text is taken out before the next call), so an idle shard holds no buffer.
      let parts: Array<Buffer> | undefined
      let inOff = 0
      let inLen = input.length
      for (;;) {
        handle.writeSync(flushFlag, input, inOff, inLen, scratch, 0, SCRATCH_BYTES)
        if (failure) throw new InflateError(`corrupt compressed data: ${failure.message}`)
        const outLeft = state[0]!
        const inLeft = state[1]!
        const produced = SCRATCH_BYTES - outLeft
        if (outLeft !== 0) {
          if (parts === undefined) return scratch.toString("utf8", 0, produced)
          parts.push(Buffer.from(scratch.subarray(0, produced)))
          return Buffer.concat(parts).toString("utf8")
        }
        // The scratch buffer filled up: keep a copy and go on with the rest of this payload.
        ;(parts ??= []).push(Buffer.from(scratch))
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
        let text: string
        try {
          text = inflateSync(input)
        } catch (e) {
          throw e instanceof InflateError ? e : new InflateError(`corrupt compressed data: ${String(e)}`)
        }
        // zstd may hold a payload back until its next block; an empty result just waits.
        if (text.length > 0) callbacks.onPayload(text)
      }
    }
  }

  // Fallback: the public stream API, one flush per complete message, results in order.
  const output: Array<Buffer> = []
  stream.on("data", (chunk: Buffer) => output.push(chunk))
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
      if (closed) return
      const input = take(frame)
      if (input === undefined || failure) return
      stream.write(input)
      stream.flush(flushFlag, () => {
        if (failure || output.length === 0) return
        const bytes = output.length === 1 ? output[0]! : Buffer.concat(output)
        output.length = 0
        callbacks.onPayload(bytes.toString("utf8"))
      })
    }
  }
}
