// One websocket to the gateway (the live Transport's socket). Frames are handed to a synchronous
// callback (the hot path stays out of fibers); the scope's release closes with a resumable code,
// never 1000/1001, completes the close handshake (reading again if we had paused), and tears the
// socket down if the peer does not answer the close.
import { Data, Effect } from "effect"
import WebSocket from "ws"

export class ConnectError extends Data.TaggedError("ConnectError")<{ readonly url: string; readonly reason: string }> {
  override get message() {
    return `could not connect to ${this.url}: ${this.reason}`
  }
}

export interface ConnectionHandlers {
  readonly onFrame: (frame: Buffer) => void
  readonly onClose: (code: number, reason: string) => void
  /** A message over `maxPayload` arrived: ws closes the socket (1009) right after. */
  readonly onFrameTooLarge?: () => void
}

export interface Connection {
  /** False once the socket is closing or closed: the write did not happen. */
  readonly send: (text: string) => boolean
  /** Closes with `code` (keep it outside 1000/1001 to keep the session), then drops TCP if unanswered. */
  readonly close: (code: number, reason: string) => void
  /** Sends a close frame with `code` (never 1000/1001) and drops the TCP connection without waiting. */
  readonly abort: (code: number, reason: string) => void
  readonly pause: () => void
  readonly resume: () => void
  readonly isOpen: () => boolean
}

/** How long a closing handshake may take before the socket is destroyed. */
const CLOSE_GRACE_MS = 2_000

export const RESUMABLE_CLOSE = 4000

export interface OpenOptions {
  readonly openTimeoutMs: number
  readonly headers: Readonly<Record<string, string>>
  /** Largest websocket message accepted, in bytes (0: no limit); a larger one closes with 1009. */
  readonly maxPayload?: number
}

export const openConnection = (url: string, handlers: ConnectionHandlers, options: OpenOptions) =>
  Effect.acquireRelease(
    // Interruptible: the dial's deadline (on the caller's clock) must be able to abandon it.
    Effect.interruptible(Effect.callback<WebSocket, ConnectError>((resume) => {
      const ws = new WebSocket(url, {
        perMessageDeflate: false,
        handshakeTimeout: options.openTimeoutMs,
        maxPayload: options.maxPayload ?? 0,
        headers: options.headers
      })
      const onOpenError = (error: Error) => resume(Effect.fail(new ConnectError({ url: redactQuery(url), reason: error.message })))
      ws.once("error", onOpenError)
      ws.once("open", () => {
        ws.off("error", onOpenError)
        resume(Effect.succeed(ws))
      })
      ws.on("message", (data) => handlers.onFrame(data as Buffer))
      ws.once("close", (code, reason) => handlers.onClose(code, reason.toString()))
      // After open, errors are followed by a close event, which is what the session acts on; a
      // message over maxPayload is told apart first (the close it causes reads as 1006 here).
      ws.on("error", (error: Error & { code?: string }) => {
        if (error.code === "WS_ERR_UNSUPPORTED_MESSAGE_LENGTH") handlers.onFrameTooLarge?.()
      })
      return Effect.sync(() => ws.terminate())
    })),
    (ws) =>
      Effect.callback<void>((resume) => {
        // The session is done with this socket: frames still arriving while it closes are not read
        // (their sequence numbers were never counted, so a resume replays them).
        ws.removeAllListeners("message")
        if (ws.readyState === WebSocket.CLOSED) return resume(Effect.void)
        // A socket paused for backpressure or shutdown must read again to see the peer's close reply.
        ws.resume()
        // Wait for the close to finish, so a shutdown that exits next has really sent the code.
        ws.once("close", () => resume(Effect.void))
        closeGracefully(ws, RESUMABLE_CLOSE, "gateway reconnecting")
      })
  ).pipe(Effect.map((ws): Connection => ({
    send: (text) => {
      if (ws.readyState !== WebSocket.OPEN) return false
      ws.send(text)
      return true
    },
    close: (code, reason) => closeGracefully(ws, code, reason),
    abort: (code, reason) => {
      if (ws.readyState === WebSocket.OPEN) ws.close(code, reason)
      ws.terminate()
    },
    pause: () => ws.pause(),
    resume: () => ws.resume(),
    isOpen: () => ws.readyState === WebSocket.OPEN
  })))

const closeGracefully = (ws: WebSocket, code: number, reason: string) => {
  if (ws.readyState === WebSocket.CLOSED) return
  if (ws.readyState === WebSocket.OPEN) {
    ws.close(code, reason)
    const timer = setTimeout(() => ws.terminate(), CLOSE_GRACE_MS)
    timer.unref()
    ws.once("close", () => clearTimeout(timer))
  } else {
    ws.terminate()
  }
}

/** Gateway urls carry no secrets, but keep logs short and uniform. */
const redactQuery = (url: string) => url.split("?")[0] ?? url
