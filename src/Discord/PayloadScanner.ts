// Reads a gateway payload's envelope (op, t, s, and where d lies) without building the payload.
// The hot path only needs these to route an event and forwards `d` as the text it came in, so a
// JSON.parse of every event (and a JSON.stringify to publish it) is work nobody uses.
// Anything unexpected returns undefined and the caller falls back to JSON.parse.

export interface Envelope {
  op: number
  t: string | null
  s: number | null
  /** Offsets of the `d` value in the text: text.slice(dStart, dEnd). -1 when d is absent. */
  dStart: number
  dEnd: number
  /**
   * Why the payload cannot be used although it was read (then `s` is null): its `s` is not a
   * sequence number. Such a payload is undecodable: a parse would not make it any better, and
   * taking it (s = 1e300, say) would make every later event of the session look like a replay.
   */
  undecodable: string | undefined
}

/** A sequence number: a whole number from 0 to 2^53 - 1 (beyond that, numbers lose digits). */
export const isSequence = (value: unknown): value is number => typeof value === "number" && Number.isSafeInteger(value) && value >= 0

/** Why a payload's `s` (as parsed) is unusable, or undefined when it is a sequence number or null. */
export const sequenceProblem = (value: unknown): string | undefined =>
  value === null || value === undefined || isSequence(value)
    ? undefined
    : `s is not a sequence number (a whole number from 0 to 2^53-1): got ${typeof value === "string" ? JSON.stringify(value) : String(value)}`

const QUOTE = 0x22
const BACKSLASH = 0x5c
const OPEN_BRACE = 0x7b
const CLOSE_BRACE = 0x7d
const OPEN_BRACKET = 0x5b
const CLOSE_BRACKET = 0x5d
const COMMA = 0x2c
const COLON = 0x3a

const isSpace = (c: number) => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09

const skipSpace = (text: string, i: number): number => {
  while (i < text.length && isSpace(text.charCodeAt(i))) i++
  return i
}

/** Index just past the closing quote of the string starting at `i` (text[i] === '"'), or -1. */
const skipString = (text: string, i: number): number => {
  let j = i + 1
  for (;;) {
    const q = text.indexOf('"', j)
    if (q === -1) return -1
    // An odd run of backslashes before the quote escapes it.
    let k = q - 1
    while (text.charCodeAt(k) === BACKSLASH) k--
    if ((q - 1 - k) % 2 === 0) return q + 1
    j = q + 1
  }
}

/** Index just past the value starting at `i`, or -1 when it is malformed. */
const skipValue = (text: string, i: number): number => {
  const c = text.charCodeAt(i)
  if (c === QUOTE) return skipString(text, i)
  if (c === OPEN_BRACE || c === OPEN_BRACKET) {
    let depth = 0
    let j = i
    const n = text.length
    while (j < n) {
      const ch = text.charCodeAt(j)
      if (ch === QUOTE) {
        j = skipString(text, j)
        if (j === -1) return -1
        continue
      }
      if (ch === OPEN_BRACE || ch === OPEN_BRACKET) depth++
      else if (ch === CLOSE_BRACE || ch === CLOSE_BRACKET) {
        depth--
        if (depth === 0) return j + 1
      }
      j++
    }
    return -1
  }
  // number, true, false, null: up to the next delimiter
  let j = i
  while (j < text.length) {
    const ch = text.charCodeAt(j)
    if (ch === COMMA || ch === CLOSE_BRACE || ch === CLOSE_BRACKET || isSpace(ch)) break
    j++
  }
  return j === i ? -1 : j
}

const readNumberOrNull = (text: string, start: number, end: number): number | null | undefined => {
  const raw = text.slice(start, end)
  if (raw === "null") return null
  const n = Number(raw)
  return Number.isInteger(n) ? n : undefined
}

/**
 * Discord writes every payload as {"t":…,"s":…,"op":…,"d":…}: `d` last. When the envelope keys
 * came first, `d` runs to the closing brace of the payload and need not be walked byte by byte,
 * which is most of the scanning cost. The closing characters are checked; `verifyTail` decides
 * whether to walk it anyway (the caller samples, so a change of format is noticed).
 */
const lastNonSpace = (text: string, end: number): number => {
  let i = end - 1
  while (i >= 0 && isSpace(text.charCodeAt(i))) i--
  return i
}

export const scanEnvelope = (text: string, verifyTail = true): Envelope | undefined => {
  let i = skipSpace(text, 0)
  if (text.charCodeAt(i) !== OPEN_BRACE) return undefined
  const env: Envelope = { op: -1, t: null, s: null, dStart: -1, dEnd: -1, undecodable: undefined }
  i = skipSpace(text, i + 1)
  if (text.charCodeAt(i) === CLOSE_BRACE) return undefined
  for (;;) {
    if (text.charCodeAt(i) !== QUOTE) return undefined
    const keyEnd = skipString(text, i)
    if (keyEnd === -1) return undefined
    const key = text.slice(i + 1, keyEnd - 1)
    i = skipSpace(text, keyEnd)
    if (text.charCodeAt(i) !== COLON) return undefined
    i = skipSpace(text, i + 1)
    if (!verifyTail && key === "d" && env.op >= 0 && env.t !== null && env.s !== null) {
      // d last: its value ends where the payload's final brace begins.
      const close = lastNonSpace(text, text.length)
      const dEnd = lastNonSpace(text, close) + 1
      const first = text.charCodeAt(i)
      const last = text.charCodeAt(dEnd - 1)
      if (
        text.charCodeAt(close) === CLOSE_BRACE &&
        ((first === OPEN_BRACE && last === CLOSE_BRACE) || (first === OPEN_BRACKET && last === CLOSE_BRACKET))
      ) {
        env.dStart = i
        env.dEnd = dEnd
        return env
      }
    }
    const valueEnd = skipValue(text, i)
    if (valueEnd === -1) return undefined
    switch (key) {
      case "op": {
        const op = readNumberOrNull(text, i, valueEnd)
        if (typeof op !== "number") return undefined
        env.op = op
        break
      }
      case "s": {
        const raw = text.slice(i, valueEnd)
        if (raw === "null") break
        // JSON text of a number: what JSON.parse would make of it, judged the same way.
        const s = text.charCodeAt(i) === QUOTE ? text.slice(i + 1, valueEnd - 1) : Number(raw)
        const problem = sequenceProblem(Number.isNaN(s) ? raw : s)
        if (problem === undefined) env.s = s as number
        else env.undecodable = problem
        break
      }
      case "t": {
        if (text.charCodeAt(i) === QUOTE) {
          const name = text.slice(i + 1, valueEnd - 1)
          // Event names are plain upper-case words; an escape would need a real parse.
          if (name.includes("\\")) return undefined
          env.t = name
        } else if (text.slice(i, valueEnd) !== "null") return undefined
        break
      }
      case "d":
        env.dStart = i
        env.dEnd = valueEnd
        break
    }
    i = skipSpace(text, valueEnd)
    const c = text.charCodeAt(i)
    if (c === COMMA) {
      i = skipSpace(text, i + 1)
      continue
    }
    if (c === CLOSE_BRACE) break
    return undefined
  }
  if (env.op < 0) return undefined
  return env
}

/** One in this many payloads is walked in full and compared with the quick read... */
const SAMPLE_EVERY = 64
/** ...and every one of the first payloads, so a format that differs from the start is caught at once. */
const VERIFY_FIRST = 1_024

/**
 * Reads envelopes the quick way (d last), walking one payload in SAMPLE_EVERY in full to check the
 * assumption still holds. On the first disagreement it walks every payload from then on and calls
 * `onMismatch` once: a changed format then costs speed, not correctness. (A change in the middle
 * of a run can slip past for at most one sample gap.)
 */
export const makeEnvelopeReader = (onMismatch: () => void) => {
  let count = 0
  let quick = true
  return (text: string): Envelope | undefined => {
    if (!quick) return scanEnvelope(text, true)
    if (++count > VERIFY_FIRST && count % SAMPLE_EVERY !== 0) return scanEnvelope(text, false)
    const full = scanEnvelope(text, true)
    const fast = scanEnvelope(text, false)
    if (full !== undefined && fast !== undefined && (full.dStart !== fast.dStart || full.dEnd !== fast.dEnd)) {
      quick = false
      onMismatch()
    }
    return full
  }
}

/**
 * What the first bytes of a payload say about it (for logging one too large to keep): Discord
 * writes t, s and op before d, so they are read from the text before the first `"d":`. Any of
 * them may be missing; nothing here is trusted beyond a log line.
 */
export const peekEnvelope = (head: string): { op: number | undefined; t: string | undefined; s: number | undefined } => {
  const d = head.indexOf('"d":')
  const before = d === -1 ? head : head.slice(0, d)
  const t = /"t"\s*:\s*"([A-Za-z0-9_]{1,64})"/.exec(before)?.[1]
  const s = /"s"\s*:\s*(\d{1,16})\s*[,}]/.exec(before)?.[1]
  const op = /"op"\s*:\s*(\d{1,4})\s*[,}]/.exec(before)?.[1]
  const seq = s === undefined ? undefined : Number(s)
  return { op: op === undefined ? undefined : Number(op), t, s: seq !== undefined && Number.isSafeInteger(seq) ? seq : undefined }
}
