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

export const makeInflater = (kind: CompressionKind, callbacks: InflaterCallbacks, forceAsync = false): Inflater => {
  switch (kind) {
    case "none":
      return {
        synchronous: true,
        push: (frame) => callbacks.onPayload(frame.toString("utf8")),
        close: () => {}
      }
    case "zlib-stream":
      return framed(zlib.createInflate({ chunkSize: 64 * 1024 }), zlib.constants.Z_SYNC_FLUSH, endsWithSyncFlush, callbacks, forceAsync)
    case "zstd-stream":
      // Every zstd-stream frame is one whole payload; the frame does not end a zstd frame.
      return framed(zlib.createZstdDecompress({ chunkSize: 64 * 1024 } as zlib.ZstdOptions), zlib.constants.ZSTD_e_continue, () => true, callbacks, forceAsync)
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
    const chunkSize = internals._chunkSize ?? 64 * 1024
    let out = Buffer.allocUnsafe(chunkSize)
    let outOffset = 0
    const inflateSync = (input: Buffer): Buffer => {
      const parts: Array<Buffer> = []
      let total = 0
      let inOff = 0
      let inLen = input.length
      for (;;) {
        const outLen = chunkSize - outOffset
        handle.writeSync(flushFlag, input, inOff, inLen, out, outOffset, outLen)
        if (failure) throw new InflateError(`corrupt compressed data: ${failure.message}`)
        const outLeft = state[0]!
        const inLeft = state[1]!
        const produced = outLen - outLeft
        if (produced > 0) {
          parts.push(out.subarray(outOffset, outOffset + produced))
          total += produced
          outOffset += produced
        }
        // A full output buffer is handed out whole; the next bytes go to a fresh one.
        if (outLeft === 0 || outOffset >= chunkSize) {
          out = Buffer.allocUnsafe(chunkSize)
          outOffset = 0
        }
        if (outLeft !== 0) break
        inOff += inLen - inLeft
        inLen = inLeft
      }
      return parts.length === 1 ? parts[0]! : Buffer.concat(parts, total)
    }
    return {
      synchronous: true,
      close,
      push: (frame) => {
        if (closed) return
        const input = take(frame)
        if (input === undefined) return
        if (failure) throw new InflateError(`corrupt compressed data: ${failure.message}`)
        let bytes: Buffer
        try {
          bytes = inflateSync(input)
        } catch (e) {
          throw e instanceof InflateError ? e : new InflateError(`corrupt compressed data: ${String(e)}`)
        }
        // zstd may hold a payload back until its next block; an empty result just waits.
        if (bytes.length > 0) callbacks.onPayload(bytes.toString("utf8"))
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
