// A raw command (bytes from stdin, a Redis field or an AMQP body) into a plain JS value. JSON text
// and MessagePack are told apart by the first byte that is not whitespace: "{" starts a JSON
// object, 0x80-0x8f / 0xde / 0xdf a MessagePack map. Anything else is decoded as whichever it
// looks like, so the refusal can say "not an object" rather than just "garbage".
//
// Integers beyond 2^53 (in practice only snowflakes) cannot be JS numbers without losing digits:
// they come out as decimal strings from JSON and as bigint from MessagePack.
import { decode } from "@msgpack/msgpack"
import { type Refusal, refusal } from "./Refusal.ts"

export type Parsed =
  | { readonly ok: true; readonly value: unknown; readonly format: "json" | "msgpack" }
  | { readonly ok: false; readonly refusal: Refusal }

/** Inputs longer than this are refused unread (a command is at most 4096 bytes once serialised). */
export const MAX_INPUT_BYTES = 64 * 1024

/** Nesting deeper than this is refused (Discord commands are a few levels deep). */
const MAX_DEPTH = 64

export const isWhitespace = (byte: number): boolean => byte === 0x20 || byte === 0x0a || byte === 0x0d || byte === 0x09

export const isMsgpackMapStart = (byte: number): boolean => (byte >= 0x80 && byte <= 0x8f) || byte === 0xde || byte === 0xdf

const OPEN_BRACE = 0x7b

export const parseRaw = (raw: Uint8Array | string): Parsed => {
  if (typeof raw === "string") {
    if (raw.length > MAX_INPUT_BYTES) return tooLong(raw.length)
    return parseJson(raw)
  }
  if (raw.byteLength > MAX_INPUT_BYTES) return tooLong(raw.byteLength)
  let i = 0
  while (i < raw.byteLength && isWhitespace(raw[i]!)) i++
  if (i === raw.byteLength) return { ok: false, refusal: refusal("malformed", "the command is empty") }
  const first = raw[i]!
  // Text: "{" or any other ASCII (a JSON array, a bare word...); the rest is MessagePack.
  if (first === OPEN_BRACE || first < 0x80) return parseJson(Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString("utf8"))
  return parseMsgpack(raw)
}

const tooLong = (length: number): Parsed => ({
  ok: false,
  refusal: refusal("too_large", `the command is ${length} bytes long; commands are at most 4096 bytes once serialised`)
})

const parseJson = (text: string): Parsed => {
  try {
    return { ok: true, value: JSON.parse(quoteLargeIntegers(text)), format: "json" }
  } catch (error) {
    return { ok: false, refusal: refusal("malformed", `not valid JSON (${error instanceof Error ? error.message : String(error)})`) }
  }
}

const parseMsgpack = (bytes: Uint8Array): Parsed => {
  let value: unknown
  try {
    value = decode(bytes, { useBigInt64: true })
  } catch (error) {
    return { ok: false, refusal: refusal("malformed", `not valid JSON or MessagePack (${error instanceof Error ? error.message : String(error)})`) }
  }
  // A binary value on its own is text to decode: clients of the original Go gateway sent
  // JSON text that way. (Inside a command, binary stays refused below.)
  if (value instanceof Uint8Array) return { ok: true, value: Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString("utf8"), format: "msgpack" }
  const problem = normalise(value, 0)
  if (typeof problem === "string") return { ok: false, refusal: refusal("malformed", problem) }
  return { ok: true, value: problem.value, format: "msgpack" }
}

/**
 * Makes a MessagePack value JSON-shaped: int64 that fit a double become numbers (encoders use
 * 64-bit formats for e.g. millisecond timestamps), larger ones stay bigint. Binary has no JSON form.
 */
const normalise = (value: unknown, depth: number): { value: unknown } | string => {
  if (depth > MAX_DEPTH) return `nested more than ${MAX_DEPTH} levels deep`
  if (typeof value === "bigint") {
    return { value: value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value }
  }
  if (value instanceof Uint8Array) return "MessagePack binary values cannot be sent to Discord (use strings)"
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const item = normalise(value[i], depth + 1)
      if (typeof item === "string") return item
      value[i] = item.value
    }
    return { value }
  }
  if (typeof value === "object" && value !== null) {
    const record = value as Record<string, unknown>
    for (const key of Object.keys(record)) {
      const item = normalise(record[key], depth + 1)
      if (typeof item === "string") return item
      record[key] = item.value
    }
  }
  return { value }
}

/** A run of 16+ digits is the only way an integer above 2^53 can appear; most commands have none. */
const LONG_DIGITS = /[0-9]{16}/

/**
 * Rewrites integer literals too large for a double as JSON strings, so `"guild_id":
 * 1234567890123456789` keeps its digits. Strings are skipped, escapes included; anything that
 * is not valid JSON is left for JSON.parse to reject.
 */
export const quoteLargeIntegers = (text: string): string => {
  if (!LONG_DIGITS.test(text)) return text
  let out = ""
  let copied = 0
  let i = 0
  const n = text.length
  while (i < n) {
    const c = text.charCodeAt(i)
    if (c === 0x22) {
      // Skip a string literal.
      i++
      while (i < n) {
        const s = text.charCodeAt(i)
        if (s === 0x5c) i += 2
        else if (s === 0x22) break
        else i++
      }
      i++
      continue
    }
    const isDigit = c >= 0x30 && c <= 0x39
    if (c !== 0x2d && !isDigit) {
      i++
      continue
    }
    // A number token: -?digits[.digits][e[+-]digits]
    const start = i
    if (c === 0x2d) i++
    const digitsStart = i
    while (i < n && text.charCodeAt(i) >= 0x30 && text.charCodeAt(i) <= 0x39) i++
    const digitsEnd = i
    let integer = digitsEnd > digitsStart
    while (i < n) {
      const t = text.charCodeAt(i)
      const part = (t >= 0x30 && t <= 0x39) || t === 0x2e || t === 0x65 || t === 0x45 || t === 0x2b || t === 0x2d
      if (!part) break
      integer = false
      i++
    }
    if (!integer || digitsEnd - digitsStart < 16) continue
    const literal = text.slice(start, digitsEnd)
    if (Number.isSafeInteger(Number(literal))) continue
    out += `${text.slice(copied, start)}"${literal}"`
    copied = digitsEnd
  }
  return copied === 0 ? text : out + text.slice(copied)
}
