// One accepted WebSocket: its transport (compression, frame splitting, backpressure, zombie
// mode) and its per-connection protocol state. Protocol decisions live in gateway.ts.
import type { Duplex } from "node:stream"
import type { WebSocket } from "ws"
import { createCompressor, deflateIndependent, splitFrames, storedBlock } from "./compression.ts"
import type { CompressionEngine, CompressKind, Compressor } from "./compression.ts"
import type { Session } from "./sessions.ts"

/** A dispatch body serialized once and sent many times (blast). */
export interface PreparedBody {
  readonly dJson: string
  /** UTF-8 of `dJson + "}"`: everything after the dispatch prefix. */
  readonly tail: Buffer
  /** deflateIndependent(tail), computed on first zlib-stream use. */
  deflated: Buffer | undefined
}

export interface ConnectionParams {
  readonly id: number
  readonly ws: WebSocket
  readonly socket: Duplex
  readonly url: string
  /** The `v` query parameter (NaN when absent). */
  readonly version: number
  readonly viaResumeUrl: boolean
  readonly compress: CompressKind | undefined
  readonly engine: CompressionEngine
  readonly splitFramesOver: number
  readonly sendLimit: { readonly max: number; readonly windowMs: number }
}

export class GatewayConnection {
  readonly id: number
  readonly ws: WebSocket
  readonly socket: Duplex
  readonly url: string
  readonly version: number
  readonly viaResumeUrl: boolean
  readonly compress: CompressKind | undefined
  /** Set once IDENTIFY or RESUME succeeded. */
  shardId: number | undefined = undefined
  shardCount: number | undefined = undefined
  session: Session | undefined = undefined
  authenticated = false
  /** "closing": a close was requested (frames still being flushed or handshake pending). */
  state: "open" | "closing" | "closed" = "open"
  /** Zombie: reads (and records) everything but never writes a byte, not even close/pong frames. */
  zombie = false
  /** Silent: dispatches still flow but heartbeats are not ACKed. */
  silent = false
  /** Date.now() of the last frame the client sent (a live client heartbeats at least every interval). */
  lastFrameAt = Date.now()
  /** Set when the fake initiated the end of this connection. */
  serverClose: { readonly code: number; readonly reason: string } | undefined = undefined

  readonly #compressor: Compressor | undefined
  readonly #splitOver: number
  readonly #times: Float64Array
  readonly #windowMs: number
  #timesHead = 0
  #timesCount = 0
  #pendingClose: { readonly code: number; readonly reason: string } | undefined = undefined
  #pendingBytes = 0
  #watchdog: ReturnType<typeof setTimeout> | undefined = undefined
  #waiters: Array<() => void> = []

  constructor(params: ConnectionParams) {
    this.id = params.id
    this.ws = params.ws
    this.socket = params.socket
    this.url = params.url
    this.version = params.version
    this.viaResumeUrl = params.viaResumeUrl
    this.compress = params.compress
    this.#compressor = params.compress === undefined ? undefined : createCompressor(params.compress, params.engine)
    this.#splitOver = params.compress === "zlib-stream" ? params.splitFramesOver : 0
    this.#times = new Float64Array(Math.max(1, params.sendLimit.max))
    this.#windowMs = params.sendLimit.windowMs
    this.socket.on("drain", () => this.#wake())
  }

  /** True while frames sent now would reach the client. */
  get writable(): boolean {
    return this.state === "open" && !this.zombie
  }

  /** Sends one gateway payload (JSON text), compressed as negotiated. Dropped when not writable. */
  send(text: string): void {
    if (!this.writable) return
    if (this.#compressor === undefined) this.ws.send(text)
    else this.#sendCompressed(this.#compressor, Buffer.from(text))
  }

  /**
   * Sends a dispatch whose `d` was serialized (and, for zlib, compressed) once for many sends:
   * `prefix` is `{"t":..,"s":..,"op":0,"d":`. With zlib-stream on the sync engine the prefix goes
   * out as a stored block followed by the shared self-contained deflate blocks of the body.
   */
  sendPrepared(prefix: string, body: PreparedBody): void {
    if (!this.writable) return
    const head = Buffer.from(prefix)
    const compressor = this.#compressor
    if (compressor === undefined) {
      this.ws.send(Buffer.concat([head, body.tail]), { binary: false })
      return
    }
    const enterSpliceMode = compressor.enterSpliceMode
    if (enterSpliceMode === undefined || compressor.pending > 0 || head.length > 65_535) {
      this.#sendCompressed(compressor, Buffer.concat([head, body.tail]))
      return
    }
    body.deflated ??= deflateIndependent(body.tail)
    const data = Buffer.concat([enterSpliceMode(), storedBlock(head), body.deflated])
    for (const frame of splitFrames(data, this.#splitOver)) this.ws.send(frame, { binary: true })
  }

  /**
   * Sends one payload given in pieces (e.g. a huge one, for the client's size limits) without the
   * fake holding it whole where it can: uncompressed as one websocket message in fragments;
   * compressed (sync engine) as one message whose fragments are the compressor's output, or with
   * `split` as one message per output chunk (only the last ends with 00 00 ff ff: the client
   * must buffer the others). The stream engine gathers the pieces and sends them as usual.
   */
  sendPieces(pieces: Iterable<Buffer>, split: boolean): void {
    if (!this.writable) return
    const compressor = this.#compressor
    if (compressor === undefined) {
      let previous: Buffer | undefined
      for (const piece of pieces) {
        if (previous !== undefined) this.ws.send(previous, { binary: false, fin: false })
        previous = piece
      }
      this.ws.send(previous ?? Buffer.alloc(0), { binary: false, fin: true })
      return
    }
    if (compressor.compressPieces === undefined || compressor.pending > 0) {
      this.#sendCompressed(compressor, Buffer.concat(Array.from(pieces)))
      return
    }
    compressor.compressPieces(pieces, (output, last) => {
      if (this.ws.readyState !== this.ws.OPEN || this.zombie) return
      this.ws.send(output, split ? { binary: true } : { binary: true, fin: last })
    })
  }

  #sendCompressed(compressor: Compressor, input: Buffer): void {
    this.#pendingBytes += input.length
    compressor.compress(input, (output) => {
      this.#pendingBytes -= input.length
      if (this.ws.readyState === this.ws.OPEN && !this.zombie) {
        for (const frame of splitFrames(output, this.#splitOver)) this.ws.send(frame, { binary: true })
      }
      if (compressor.pending === 0 && this.#pendingClose !== undefined) this.#closeNow(this.#pendingClose)
      this.#wake()
    })
  }

  /** Close frame after every payload already handed to `send` went out. */
  close(code: number, reason: string): void {
    if (this.state !== "open") return
    this.state = "closing"
    this.#stopWatchdog()
    if (this.#compressor !== undefined && this.#compressor.pending > 0) this.#pendingClose = { code, reason }
    else this.#closeNow({ code, reason })
    this.#wake()
  }

  /** Ends the TCP connection without a close frame. */
  drop(): void {
    this.state = this.state === "closed" ? "closed" : "closing"
    this.#stopWatchdog()
    this.ws.terminate()
    this.#wake()
  }

  /** Called from the ws 'close' event. */
  closed(): void {
    this.state = "closed"
    this.#stopWatchdog()
    this.#compressor?.close()
    this.#wake()
  }

  #closeNow(close: { readonly code: number; readonly reason: string }): void {
    this.#pendingClose = undefined
    try {
      this.ws.close(close.code, close.reason)
    } catch {
      this.ws.terminate()
    }
  }

  setZombie(on: boolean): void {
    if (on === this.zombie) return
    this.zombie = on
    // Swallow every write ws itself makes (pong, close reply) so the peer sees a dead-but-open
    // TCP connection; our own sends are skipped in `send`. Removing the own property restores
    // net.Socket.prototype.write.
    const target = this.socket as unknown as { write: unknown }
    if (on) target.write = () => true
    else delete target.write
    this.#wake()
  }

  /** Counts a received payload; false when it exceeds the sliding-window send limit. */
  countPayload(now: number): boolean {
    const capacity = this.#times.length
    if (this.#timesCount < capacity) {
      this.#times[(this.#timesHead + this.#timesCount) % capacity] = now
      this.#timesCount++
      return true
    }
    if (now - this.#times[this.#timesHead]! < this.#windowMs) return false
    this.#times[this.#timesHead] = now
    this.#timesHead = (this.#timesHead + 1) % capacity
    return true
  }

  /** (Re)arms the heartbeat watchdog; `onTimeout` runs if it is not re-armed in time. */
  armWatchdog(ms: number, onTimeout: () => void): void {
    this.#stopWatchdog()
    if (ms <= 0 || this.state !== "open") return
    this.#watchdog = setTimeout(onTimeout, ms)
    this.#watchdog.unref()
  }

  #stopWatchdog(): void {
    if (this.#watchdog !== undefined) clearTimeout(this.#watchdog)
    this.#watchdog = undefined
  }

  /** Bytes accepted by `send` that the kernel has not taken yet. */
  get backlog(): number {
    return this.ws.bufferedAmount + this.#pendingBytes
  }

  /** Resolves once the backlog is at most `lowWater` bytes, or the connection stops being writable. */
  async waitForRoom(lowWater: number): Promise<void> {
    while (this.writable && this.backlog > lowWater) {
      await new Promise<void>((resolve) => this.#waiters.push(resolve))
    }
  }

  #wake(): void {
    if (this.#waiters.length === 0) return
    const waiters = this.#waiters
    this.#waiters = []
    for (const resolve of waiters) resolve()
  }
}
