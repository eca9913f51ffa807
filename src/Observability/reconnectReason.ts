// A short, bounded metric label for why a shard's connection ended, read from the Ending's
// sentence (ShardSession writes those for people). The e2e metrics test checks the common ones,
// so a reworded sentence shows up there instead of silently turning into "other".
import type { Ending } from "../Shard/Reconnect.ts"

const CLOSED = /closed the connection \((\d+)/

export const reconnectReason = (ending: Pick<Ending, "reason">): string => {
  const text = ending.reason
  const closed = CLOSED.exec(text)
  if (closed !== null) return closed[1] === "1006" ? "dropped" : `close_${closed[1]}`
  if (text.includes("(op 7)")) return "op7"
  if (text.includes("(op 9)")) return text.includes("resumable") ? "op9_resumable" : "op9"
  if (text.startsWith("zombie")) return "zombie"
  if (text.startsWith("could not connect")) return "connect_error"
  if (text.startsWith("no HELLO")) return "hello_timeout"
  if (text.startsWith("corrupt compressed data") || text.startsWith("frame handling failed")) return "decode_error"
  if (text.includes("not JSON") || text.startsWith("READY without")) return "bad_payload"
  return "other"
}
