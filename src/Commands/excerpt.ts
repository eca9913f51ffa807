// What a refusal log line shows of the command: enough to recognise it, never more than ~100
// characters, and never a token (a bot that mistakenly sends an IDENTIFY would leak its token).
import { isMsgpackMapStart } from "./RawValue.ts"

export const EXCERPT_CHARS = 100

const TOKEN_VALUE = /("(?:token|password|secret)"\s*:\s*)"(?:[^"\\]|\\.)*"?/gi
// Long enough to be a bot token (three base64url parts), whatever field it is in.
const TOKEN_SHAPE = /[A-Za-z0-9_-]{20,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{20,}/g

export const redactSecrets = (text: string): string =>
  text.replace(TOKEN_VALUE, `$1"[redacted]"`).replace(TOKEN_SHAPE, "[redacted]")

/** A printable, redacted prefix of the raw command; binary input is described, not shown. */
export const excerpt = (raw: Uint8Array | string): string => {
  let text: string
  if (typeof raw === "string") text = raw
  else {
    let i = 0
    while (i < raw.byteLength && (raw[i] === 0x20 || raw[i] === 0x0a || raw[i] === 0x0d || raw[i] === 0x09)) i++
    const first = raw[i] ?? 0
    if (first >= 0x80 || isMsgpackMapStart(first)) return `(${raw.byteLength} bytes of binary / MessagePack)`
    // Decode a little more than shown, so redaction sees whole values near the cut.
    text = Buffer.from(raw.buffer, raw.byteOffset, Math.min(raw.byteLength, EXCERPT_CHARS * 8)).toString("utf8")
  }
  const printable = redactSecrets(text.slice(0, EXCERPT_CHARS * 8)).replace(/[\u0000-\u001f\u007f]+/g, " ").trim()
  return printable.length > EXCERPT_CHARS ? `${printable.slice(0, EXCERPT_CHARS)}…` : printable
}
