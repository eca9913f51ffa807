// The seam between a shard and its websocket. The live layer is ws plus the zlib/zstd inflater; a
// test swaps in an in-memory transport that scripts the server. Payloads are handed over
// synchronously, in the socket's own callback: the per-event hot path never enters a fiber.
import { Context, Effect, Layer, type Scope } from "effect"
import { AppConfig } from "../Config/AppConfig.ts"
import { USER_AGENT } from "../Discord/UserAgent.ts"
import { type Connection, type ConnectError, openConnection } from "./Connection.ts"
import { InflateError, makeInflater } from "./Inflater.ts"

export type { Connection } from "./Connection.ts"
export { ConnectError } from "./Connection.ts"

export interface TransportHandlers {
  /** One complete, decompressed payload (JSON text). Called synchronously; must not throw. */
  readonly onPayload: (text: string) => void
  /** The byte stream cannot be decoded (corrupt compression): the connection is useless. */
  readonly onUndecodable: (detail: string) => void
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
            onError: (error) => handlers.onUndecodable(error.message)
          })
          yield* Effect.addFinalizer(() => Effect.sync(() => inflater.close()))
          const onFrame = (frame: Buffer) => {
            try {
              inflater.push(frame)
            } catch (error) {
              handlers.onUndecodable(error instanceof InflateError ? error.message : `frame handling failed: ${String(error)}`)
            }
          }
          return yield* openConnection(url, { onFrame, onClose: handlers.onClose }, {
            openTimeoutMs: options.openTimeoutMs,
            headers: { "User-Agent": USER_AGENT }
          })
        })
    })
  })
)
