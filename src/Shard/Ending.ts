// Why a shard's connection ended, as data. What happens next (resume, identify afresh, stop), the
// metric label and the sentence in the log are all derived from the tag here, in one place.
import { closeAction } from "../Discord/CloseCodes.ts"

export type Ending =
  /** The peer closed the websocket (or the TCP connection dropped: 1006). */
  | { readonly _tag: "Closed"; readonly code: number; readonly reason: string }
  /** op 7. */
  | { readonly _tag: "ReconnectRequested" }
  /** op 9; `resumable` only when d was true and there is a session to resume. */
  | { readonly _tag: "InvalidSession"; readonly resumable: boolean }
  /** A heartbeat found the last one unacknowledged and nothing else heard since. */
  | { readonly _tag: "Zombie"; readonly intervalMs: number }
  | { readonly _tag: "HelloTimeout"; readonly afterMs: number }
  /** Data we cannot read: corrupt compression (`compression`) or a payload that is not a payload. */
  | { readonly _tag: "Undecodable"; readonly layer: "compression" | "payload"; readonly detail: string }
  /** READY without the session it must carry. */
  | { readonly _tag: "BadReady" }
  /** A frame too large to read past: the stream cannot go on, a RESUME would replay it. */
  | { readonly _tag: "Oversized"; readonly detail: string }
  | { readonly _tag: "ConnectFailed"; readonly url: string; readonly reason: string }
  /** This process could not renew the shard's lease in time: another may run the shard now. */
  | { readonly _tag: "LeaseLapsed" }

export type NextStep = "resume" | "identify" | "fatal"

export const Endings = {
  closed: (code: number, reason: string): Ending => ({ _tag: "Closed", code, reason }),
  reconnectRequested: { _tag: "ReconnectRequested" } as Ending,
  invalidSession: (resumable: boolean): Ending => ({ _tag: "InvalidSession", resumable }),
  zombie: (intervalMs: number): Ending => ({ _tag: "Zombie", intervalMs }),
  helloTimeout: (afterMs: number): Ending => ({ _tag: "HelloTimeout", afterMs }),
  undecodable: (layer: "compression" | "payload", detail: string): Ending => ({ _tag: "Undecodable", layer, detail }),
  badReady: { _tag: "BadReady" } as Ending,
  oversized: (detail: string): Ending => ({ _tag: "Oversized", detail }),
  connectFailed: (url: string, reason: string): Ending => ({ _tag: "ConnectFailed", url, reason }),
  leaseLapsed: { _tag: "LeaseLapsed" } as Ending
} as const

/** What the next connection does. A resume without a session becomes an identify (the driver's call). */
export const nextStep = (ending: Ending): NextStep => {
  switch (ending._tag) {
    case "Closed":
      return closeAction(ending.code).kind
    case "InvalidSession":
      return ending.resumable ? "resume" : "identify"
    case "BadReady":
    case "Oversized":
      return "identify"
    default:
      return "resume"
  }
}

/** op 9 not resumable: Discord asks for a random 1-5 s wait before identifying again. */
export const fixedWaitRange = (ending: Ending): readonly [number, number] | undefined =>
  ending._tag === "InvalidSession" && !ending.resumable ? [1_000, 5_000] : undefined

/** The peer cannot be trusted to finish a close handshake: close, then destroy at once. */
export const mustTerminate = (ending: Ending): boolean => ending._tag === "Zombie" || ending._tag === "HelloTimeout"

/** A short, bounded label for `gateway_reconnects_total{reason}`. */
export const endingLabel = (ending: Ending): string => {
  switch (ending._tag) {
    case "Closed":
      return ending.code === 1006 ? "dropped" : `close_${ending.code}`
    case "ReconnectRequested":
      return "op7"
    case "InvalidSession":
      return ending.resumable ? "op9_resumable" : "op9"
    case "Zombie":
      return "zombie"
    case "HelloTimeout":
      return "hello_timeout"
    case "Undecodable":
      return ending.layer === "compression" ? "decode_error" : "bad_payload"
    case "BadReady":
      return "bad_payload"
    case "Oversized":
      return "oversized"
    case "ConnectFailed":
      return "connect_error"
    case "LeaseLapsed":
      return "lease_lapsed"
  }
}

/** The sentence an operator reads. A reason the server gave is shown as given. */
export const describeEnding = (ending: Ending): string => {
  switch (ending._tag) {
    case "Closed": {
      const action = closeAction(ending.code)
      const meaning = ending.reason === "" ? action.reason : action.meaning
      return ending.reason === ""
        ? `Discord closed the connection (${ending.code}: ${meaning})`
        : `Discord closed the connection (${ending.code} "${ending.reason}": ${meaning})`
    }
    case "ReconnectRequested":
      return "Discord asked to reconnect (op 7)"
    case "InvalidSession":
      return ending.resumable ? "session invalidated, resumable (op 9)" : "session invalidated (op 9)"
    case "Zombie":
      return `zombie connection: no heartbeat ACK and nothing else received for ${ending.intervalMs} ms`
    case "HelloTimeout":
      return `no HELLO within ${ending.afterMs / 1000}s`
    case "Undecodable":
      return ending.detail
    case "BadReady":
      return "READY without session_id or resume_gateway_url"
    case "Oversized":
      return ending.detail
    case "ConnectFailed":
      return `could not connect to ${ending.url}: ${ending.reason}`
    case "LeaseLapsed":
      return "this process could not renew the shard's lease in time; stopped reading and sending until it holds the lease again"
  }
}
