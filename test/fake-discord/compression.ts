// Transport compression (DISCORD_GATEWAY.md §12): one compression context per connection, each
// gateway payload flushed on its own so the client can decode it as soon as it arrives.
//
// Two engines produce identical bytes:
// - "sync" drives the native zlib handle directly (writeSync). It is an internal Node API, but it
//   is ~5x faster than the stream, which matters because benchmarks measure the client, not us.
// - "stream" is the documented Transform stream with a per-write flush flag; used when the
//   internal handle is not available, or when forced.
import zlib from "node:zlib"

export type CompressKind = "zlib-stream" | "zstd-stream"
export type CompressionEngine = "auto" | "sync" | "stream"

/** Compresses one payload; `emit` receives the compressed bytes (possibly later, always in order). */
export interface Compressor {
  compress(input: Buffer, emit: (output: Buffer) => void): void
  /**
   * zlib-stream, sync engine only: ends the shared history with a full flush and keeps using
   * full flushes from now on, so self-contained deflate blocks (see `deflateIndependent`) can be
   * spliced between our messages. Returns the flush bytes to send before the first spliced block.
   */
  readonly enterSpliceMode: (() => Buffer) | undefined
  /**
   * Sync engine only: compresses one payload given in pieces without holding it whole (pieces
   * are fed without a flush, the last one with the payload's flush). `emit` gets each output
   * chunk as it comes; `last` marks the one that ends the payload.
   */
  readonly compressPieces: ((pieces: Iterable<Buffer>, emit: (output: Buffer, last: boolean) => void) => void) | undefined
  /** Payloads handed to `compress` whose output has not been emitted yet. */
  readonly pending: number
  close(): void
}

const C = zlib.constants

function createStream(kind: CompressKind): zlib.Deflate | zlib.ZstdCompress {
  return kind === "zlib-stream"
    ? zlib.createDeflate({ flush: C.Z_SYNC_FLUSH })
    : zlib.createZstdCompress({ flush: C.ZSTD_e_flush })
}

interface NativeHandle {
  writeSync(flush: number, input: Buffer, inOff: number, inLen: number, out: Buffer, outOff: number, outLen: number): void
}

function nativeParts(stream: object): { handle: NativeHandle; state: Uint32Array } | undefined {
  const candidate = stream as { _handle?: { writeSync?: unknown }; _writeState?: unknown }
  const handle = candidate._handle
  const state = candidate._writeState
  if (handle === undefined || typeof handle.writeSync !== "function" || !(state instanceof Uint32Array)) return undefined
  return { handle: handle as NativeHandle, state }
}

function syncCompressor(kind: CompressKind, stream: zlib.Deflate | zlib.ZstdCompress, handle: NativeHandle, state: Uint32Array): Compressor {
  let flush: number = kind === "zlib-stream" ? C.Z_SYNC_FLUSH : C.ZSTD_e_flush
  const out = Buffer.allocUnsafe(64 * 1024)
  const noFlush = kind === "zlib-stream" ? C.Z_NO_FLUSH : C.ZSTD_e_continue
  const run = (input: Buffer, flushWith = flush): Buffer => {
    const parts: Array<Buffer> = []
    let inOff = 0
    let inLen = input.length
    // Loop until the engine stops filling the whole output buffer: then the flush is complete.
    for (;;) {
      handle.writeSync(flushWith, input, inOff, inLen, out, 0, out.length)
      const availOut = state[0]!
      const availIn = state[1]!
      const produced = out.length - availOut
      if (produced > 0) parts.push(Buffer.from(out.subarray(0, produced)))
      inOff += inLen - availIn
      inLen = availIn
      if (availOut !== 0) break
    }
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts)
  }
  let spliceMode = false
  return {
    pending: 0,
    enterSpliceMode: kind !== "zlib-stream" ? undefined : () => {
      if (spliceMode) return Buffer.alloc(0)
      spliceMode = true
      flush = C.Z_FULL_FLUSH
      return run(Buffer.alloc(0))
    },
    compress(input, emit) {
      emit(run(input))
    },
    compressPieces(pieces, emit) {
      let previous: Buffer | undefined
      for (const piece of pieces) {
        if (previous !== undefined) {
          const output = run(previous, noFlush)
          if (output.length > 0) emit(output, false)
        }
        previous = piece
      }
      emit(run(previous ?? Buffer.alloc(0)), true)
    },
    close() {
      stream.close()
    }
  }
}

function streamCompressor(stream: zlib.Deflate | zlib.ZstdCompress): Compressor {
  let chunks: Array<Buffer> = []
  let pending = 0
  // The zlib transform pushes all output of a write before invoking that write's callback, and
  // 'data' is emitted synchronously in flowing mode, so the chunks collected at callback time are
  // exactly this payload's bytes.
  stream.on("data", (chunk: Buffer) => chunks.push(chunk))
  stream.on("error", () => {})
  return {
    enterSpliceMode: undefined,
    compressPieces: undefined,
    get pending() {
      return pending
    },
    compress(input, emit) {
      pending++
      stream.write(input, () => {
        pending--
        const output = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)
        chunks = []
        emit(output)
      })
    },
    close() {
      stream.destroy()
    }
  }
}

export function createCompressor(kind: CompressKind, engine: CompressionEngine = "auto"): Compressor {
  const stream = createStream(kind)
  if (engine !== "stream") {
    const native = nativeParts(stream)
    if (native !== undefined) return syncCompressor(kind, stream, native.handle, native.state)
    if (engine === "sync") throw new Error("synchronous compression engine unavailable on this Node version")
  }
  return streamCompressor(stream)
}

/** Splits a zlib-stream message across several WS frames, like a chunking proxy would. */
export function splitFrames(data: Buffer, maxFrameBytes: number): Array<Buffer> {
  if (maxFrameBytes <= 0 || data.length <= maxFrameBytes) return [data]
  const frames: Array<Buffer> = []
  for (let off = 0; off < data.length; off += maxFrameBytes) frames.push(data.subarray(off, off + maxFrameBytes))
  return frames
}

/**
 * Raw deflate of `input` from a fresh state, ending with a full flush: the bytes reference nothing
 * before or after them, so they are valid at any byte-aligned point of a zlib stream whose
 * compressor ended its history with a full flush. Used by blast to compress each payload once.
 */
export function deflateIndependent(input: Buffer): Buffer {
  return zlib.deflateRawSync(input, { finishFlush: C.Z_FULL_FLUSH })
}

/** A stored (uncompressed) deflate block holding `data` (at most 65 535 bytes), for byte-aligned splicing. */
export function storedBlock(data: Buffer): Buffer {
  const block = Buffer.allocUnsafe(5 + data.length)
  block[0] = 0 // BFINAL=0, BTYPE=00 (stored), padding to the byte boundary
  block.writeUInt16LE(data.length, 1)
  block.writeUInt16LE(data.length ^ 0xffff, 3)
  data.copy(block, 5)
  return block
}
