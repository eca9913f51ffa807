// Writing one dispatch frame to a connection, with the two optional observation aids the cluster
// tests use to tell which connection (so which process) delivered an event: a `_conn` field
// spliced into `d`, and a delivery log. Both are off by default (benchmarks send millions).
import type { GatewayConnection } from "./connection.ts"
import type { FakeContext } from "./options.ts"
import type { Session } from "./sessions.ts"

/** Field added to a dispatch's `d` object when tagConnections is on. */
export const CONN_FIELD = "_conn"

// Every frame starts `{"t":<json string>,"s":<int>,"op":0,"d":`; inside the JSON string `t` a quote
// is always escaped, so the first `,"op":0,"d":` is the real one.
const D_MARK = `,"op":0,"d":`
const HEAD = /^\{"t":("(?:[^"\\]|\\.)*"),"s":(\d+),/

/** The frame with `"_conn":id` as the first member of its `d` object; unchanged when `d` is not an object. */
export function tagFrame(text: string, connectionId: number): string {
  const at = text.indexOf(D_MARK)
  if (at < 0 || text[at + D_MARK.length] !== "{") return text
  const open = at + D_MARK.length + 1
  const empty = text[open] === "}"
  return `${text.slice(0, open)}"${CONN_FIELD}":${connectionId}${empty ? "" : ","}${text.slice(open)}`
}

/** Sends a dispatch frame built for `session` (seq `seq`) on `conn`, tagged and logged as configured. */
export function sendDispatch(ctx: FakeContext, conn: GatewayConnection, session: Session, seq: number, t: string, text: string, replayed: boolean): void {
  if (!conn.writable) return
  conn.send(ctx.tagConnections ? tagFrame(text, conn.id) : text)
  if (ctx.recordDeliveries) {
    ctx.records.deliveries.push({ connectionId: conn.id, sessionId: session.id, shardId: session.shardId, shardCount: session.shardCount, seq, t, replayed, at: Date.now() })
  }
}

/** Replays stored frames (a RESUME) on `conn`; their t and seq are read back from the frame head. */
export function replayDispatches(ctx: FakeContext, conn: GatewayConnection, session: Session, frames: ReadonlyArray<string>): void {
  for (const text of frames) {
    if (!ctx.tagConnections && !ctx.recordDeliveries) {
      conn.send(text)
      continue
    }
    const head = HEAD.exec(text)
    if (head === null) conn.send(text)
    else sendDispatch(ctx, conn, session, Number(head[2]), JSON.parse(head[1]!) as string, text, true)
  }
}
