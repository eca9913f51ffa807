// Reads a gateway payload's envelope (op, t, s, and where d lies) from its bytes, without decoding
// the payload. The hot path only needs these to route an event and forwards `d` as the bytes it
// came in, so decoding every event to text, a JSON.parse (and a JSON.stringify or an encode back
// to bytes to publish it) is work nobody uses. Anything unexpected returns undefined and the
// caller falls back to JSON.parse.

export interface Envelope {
  op: number
  t: string | null
  s: number | null
  /** Byte offsets of the `d` value in the payload: bytes.subarray(dStart, dEnd). -1 when d is absent. */
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
const ZERO = 0x30
const NINE = 0x39
const LETTER_D = 0x64
const LETTER_O = 0x6f
const LETTER_P = 0x70
const LETTER_S = 0x73
const LETTER_T = 0x74

const isSpace = (c: number) => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09

const skipSpace = (b: Uint8Array, i: number): number => {
  while (i < b.length && isSpace(b[i]!)) i++
  return i
}

/** Index just past the closing quote of the string starting at `i` (b[i] === '"'), or -1. */
const skipString = (b: Uint8Array, i: number): number => {
  const n = b.length
  let j = i + 1
  while (j < n) {
    const c = b[j]!
    if (c === QUOTE) return j + 1
    // An escape covers the next byte, whatever it is (\\ and \" included).
    j += c === BACKSLASH ? 2 : 1
  }
  return -1
}

/** Index just past the value starting at `i`, or -1 when it is malformed. */
const skipValue = (b: Uint8Array, i: number): number => {
  const c = b[i]
  if (c === QUOTE) return skipString(b, i)
  const n = b.length
  if (c === OPEN_BRACE || c === OPEN_BRACKET) {
    let depth = 0
    let j = i
    while (j < n) {
      const ch = b[j]!
      if (ch === QUOTE) {
        j = skipString(b, j)
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
  while (j < n) {
    const ch = b[j]!
    if (ch === COMMA || ch === CLOSE_BRACE || ch === CLOSE_BRACKET || isSpace(ch)) break
    j++
  }
  return j === i ? -1 : j
}

const isNull = (b: Uint8Array, start: number, end: number): boolean =>
  end - start === 4 && b[start] === 0x6e && b[start + 1] === 0x75 && b[start + 2] === 0x6c && b[start + 3] === 0x6c

/** What JSON.parse makes of the number at start..end: digits read directly, anything else by Number(). */
const readNumber = (b: Buffer, start: number, end: number): number => {
  // Up to 15 digits stay exact in a double; longer or fancier numbers (1e3, 2.0, -1) take the slow road.
  if (end - start <= 15) {
    let n = 0
    let i = start
    for (; i < end; i++) {
      const c = b[i]!
      if (c < ZERO || c > NINE) break
      n = n * 10 + (c - ZERO)
    }
    if (i === end) return n
  }
  return Number(latin1(b, start, end))
}

const latin1 = (b: Buffer, start: number, end: number): string => b.toString("latin1", start, end)
const utf8 = (b: Buffer, start: number, end: number): string => b.toString("utf8", start, end)

/**
 * Event names, kept once each: the same few dozen names arrive millions of times, and a string
 * made once keeps its hash for the Set and Map lookups every event goes through. Bounded, so a
 * peer sending endless made-up names cannot grow it.
 */
const NAMES_KEPT = 512
const names = new Map<number, string>()

/** The event name at start..end (its bytes, quotes excluded), or undefined when it holds an escape. */
const eventName = (b: Buffer, start: number, end: number): string | undefined => {
  // FNV-1a over the bytes, then a check that the kept name has those very bytes.
  let hash = 0x811c9dc5
  let ascii = true
  for (let i = start; i < end; i++) {
    const c = b[i]!
    if (c === BACKSLASH) return undefined
    if (c >= 0x80) ascii = false
    hash = Math.imul(hash ^ c, 0x01000193)
  }
  const key = (hash >>> 0) * 64 + Math.min(end - start, 63)
  const kept = names.get(key)
  if (kept !== undefined && kept.length === end - start) {
    let same = true
    for (let i = 0; i < kept.length; i++) {
      if (kept.charCodeAt(i) !== b[start + i]) {
        same = false
        break
      }
    }
    if (same) return kept
  }
  const name = ascii ? latin1(b, start, end) : utf8(b, start, end)
  if (ascii && names.size < NAMES_KEPT) names.set(key, name)
  return name
}

/**
 * Discord writes every payload as {"t":…,"s":…,"op":…,"d":…}: `d` last. When the envelope keys
 * came first, `d` runs to the closing brace of the payload and need not be walked byte by byte,
 * which is most of the scanning cost. The closing characters are checked; `verifyTail` decides
 * whether to walk it anyway (the caller samples, so a change of format is noticed).
 */
const lastNonSpace = (b: Uint8Array, end: number): number => {
  let i = end - 1
  while (i >= 0 && isSpace(b[i]!)) i--
  return i
}

/** Which envelope key the key string at i..keyEnd (quotes included) is. */
const Key = { Other: 0, Op: 1, T: 2, S: 3, D: 4 } as const
type Key = (typeof Key)[keyof typeof Key]

const keyAt = (b: Uint8Array, i: number, keyEnd: number): Key => {
  const length = keyEnd - i - 2
  const first = b[i + 1]
  if (length === 1) return first === LETTER_T ? Key.T : first === LETTER_S ? Key.S : first === LETTER_D ? Key.D : Key.Other
  return length === 2 && first === LETTER_O && b[i + 2] === LETTER_P ? Key.Op : Key.Other
}

/**
 * Reads the envelope of one payload (its UTF-8 bytes, as inflated) without decoding the rest.
 * Offsets are byte offsets into `bytes`.
 */
export const scanEnvelope = (bytes: Buffer, verifyTail = true): Envelope | undefined => {
  const b = bytes
  let i = skipSpace(b, 0)
  if (b[i] !== OPEN_BRACE) return undefined
  const env: Envelope = { op: -1, t: null, s: null, dStart: -1, dEnd: -1, undecodable: undefined }
  i = skipSpace(b, i + 1)
  if (b[i] === CLOSE_BRACE) return undefined
  for (;;) {
    if (b[i] !== QUOTE) return undefined
    const keyEnd = skipString(b, i)
    if (keyEnd === -1) return undefined
    const key = keyAt(b, i, keyEnd)
    i = skipSpace(b, keyEnd)
    if (b[i] !== COLON) return undefined
    i = skipSpace(b, i + 1)
    if (!verifyTail && key === Key.D && env.op >= 0 && env.t !== null && env.s !== null) {
      // d last: its value ends where the payload's final brace begins.
      const close = lastNonSpace(b, b.length)
      const dEnd = lastNonSpace(b, close) + 1
      const first = b[i]
      const last = b[dEnd - 1]
      if (
        b[close] === CLOSE_BRACE &&
        ((first === OPEN_BRACE && last === CLOSE_BRACE) || (first === OPEN_BRACKET && last === CLOSE_BRACKET))
      ) {
        env.dStart = i
        env.dEnd = dEnd
        return env
      }
    }
    const valueEnd = skipValue(b, i)
    if (valueEnd === -1) return undefined
    switch (key) {
      case Key.Op: {
        if (isNull(b, i, valueEnd)) return undefined
        const op = readNumber(b, i, valueEnd)
        if (!Number.isInteger(op)) return undefined
        env.op = op
        break
      }
      case Key.S: {
        if (isNull(b, i, valueEnd)) break
        // JSON text of a number: what JSON.parse would make of it, judged the same way.
        const s = b[i] === QUOTE ? utf8(b, i + 1, valueEnd - 1) : readNumber(b, i, valueEnd)
        const problem = sequenceProblem(Number.isNaN(s) ? utf8(b, i, valueEnd) : s)
        if (problem === undefined) env.s = s as number
        else env.undecodable = problem
        break
      }
      case Key.T: {
        if (b[i] === QUOTE) {
          // Event names are plain upper-case words; an escape would need a real parse.
          const name = eventName(b, i + 1, valueEnd - 1)
          if (name === undefined) return undefined
          env.t = name
        } else if (!isNull(b, i, valueEnd)) return undefined
        break
      }
      case Key.D:
        env.dStart = i
        env.dEnd = valueEnd
        break
    }
    i = skipSpace(b, valueEnd)
    const c = b[i]
    if (c === COMMA) {
      i = skipSpace(b, i + 1)
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
  return (bytes: Buffer): Envelope | undefined => {
    if (!quick) return scanEnvelope(bytes, true)
    if (++count > VERIFY_FIRST && count % SAMPLE_EVERY !== 0) return scanEnvelope(bytes, false)
    const full = scanEnvelope(bytes, true)
    const fast = scanEnvelope(bytes, false)
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
