// The seam between a shard and its websocket. The live layer is ws plus the zlib/zstd inflater; a
// test swaps in an in-memory transport that scripts the server. Payloads are handed over
// synchronously, in the socket's own callback: the per-event hot path never enters a fiber.
import { Context, Effect, Layer, type Scope } from "effect"
import { AppConfig } from "../Config/AppConfig.ts"
import { USER_AGENT } from "../Discord/UserAgent.ts"
import { type Connection, type ConnectError, openConnection } from "./Connection.ts"
import { type DroppedPayload, InflateError, makeInflater } from "./Inflater.ts"

export type { Connection } from "./Connection.ts"
export { ConnectError } from "./Connection.ts"

export interface TransportHandlers {
  /**
   * One complete, decompressed payload (its JSON bytes). Called synchronously; must not throw.
   * The bytes may be overwritten once it returns (Inflater.ts): copy what is kept.
   */
  readonly onPayload: (bytes: Buffer) => void
  /** A payload over limits.payload_size, discarded as it was inflated; the stream goes on. */
  readonly onDropped: (payload: DroppedPayload) => void
  /**
   * The byte stream cannot be decoded: corrupt compression (`resumable`: a RESUME gets clean data),
   * or a frame or unfinished message over its cap (not resumable: a RESUME would replay it).
   */
  readonly onUndecodable: (detail: string, resumable: boolean) => void
  /** The websocket closed (1006 when the TCP connection dropped without a close frame). */
  readonly onClose: (code: number, reason: string) => void
}

export interface TransportOptions {
  /** Dial to open, hard: a server that drips its upgrade reply cannot hold the shard forever. */
  readonly openTimeoutMs: number
}

export class Transport extends Context.Service<Transport, {
  /** Opens a connection for the scope; closing the scope closes it with a resumable code. */
  readonly connect: (url: string, handlers: TransportHandlers, options: TransportOptions) => Effect.Effect<Connection, ConnectError, Scope.Scope>
}>()("gateway/Transport") {}

export const TransportLive = Layer.effect(
  Transport,
  Effect.gen(function*() {
    const config = yield* AppConfig
    return Transport.of({
      connect: (url, handlers, options) =>
        Effect.gen(function*() {
          const inflater = makeInflater(config.compress, {
            onPayload: handlers.onPayload,
            onOversized: handlers.onDropped,
            onError: (error) => handlers.onUndecodable(error.message, error.resumable)
          }, false, { maxPayloadBytes: config.limits.payloadBytes, maxPendingBytes: config.limits.partialBytes })
          yield* Effect.addFinalizer(() => Effect.sync(() => inflater.close()))
          const onFrame = (frame: Buffer) => {
            try {
              inflater.push(frame)
            } catch (error) {
              if (error instanceof InflateError) handlers.onUndecodable(error.message, error.resumable)
              else handlers.onUndecodable(`frame handling failed: ${String(error)}`, true)
            }
          }
          const onFrameTooLarge = () =>
            handlers.onUndecodable(
              `Discord sent a websocket message over limits.frame_size (${config.limits.frameBytes} bytes); starting a new session`,
              false
            )
          return yield* openConnection(url, { onFrame, onClose: handlers.onClose, onFrameTooLarge }, {
            openTimeoutMs: options.openTimeoutMs,
            headers: { "User-Agent": USER_AGENT },
            maxPayload: config.limits.frameBytes
          })
        })
    })
  })
)
