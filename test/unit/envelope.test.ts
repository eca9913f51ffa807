import { describe, expect, it } from "vitest"
import { type Envelope, isSequence, makeEnvelopeReader, scanEnvelope as scanBytes, sequenceProblem } from "../../src/Discord/PayloadScanner.ts"

// The scanner reads a payload's bytes, as inflated; these tests write payloads as text.
const scanEnvelope = (text: string, verifyTail?: boolean) => scanBytes(Buffer.from(text), verifyTail)
const readerOf = (onMismatch: () => void) => {
  const read = makeEnvelopeReader(onMismatch)
  return (text: string) => read(Buffer.from(text))
}
/** d as text, from the byte offsets the scanner gives. */
const sliceD = (text: string, env: Envelope) => Buffer.from(text).subarray(env.dStart, env.dEnd).toString()

const dOf = (text: string) => {
  const env = scanEnvelope(text)
  if (!env || env.dStart < 0) throw new Error("no d")
  return sliceD(text, env)
}

describe("scanEnvelope", () => {
  it("reads op, t and s of a dispatch and slices d exactly", () => {
    const d = { content: 'quote " brace } bracket ] backslash \\', nested: [1, { x: null }], emoji: "é😀" }
    const text = JSON.stringify({ t: "MESSAGE_CREATE", s: 42, op: 0, d })
    const env = scanEnvelope(text)
    expect(env).toMatchObject({ op: 0, t: "MESSAGE_CREATE", s: 42 })
    expect(JSON.parse(dOf(text))).toEqual(d)
  })

  it("handles any key order, whitespace and extra top-level keys", () => {
    const text = ` { "d" : {"a":[1,2]} , "_trace":["x"], "op":0 ,"s":7,"t":"X" } `
    expect(scanEnvelope(text)).toMatchObject({ op: 0, t: "X", s: 7 })
    expect(dOf(text)).toBe(`{"a":[1,2]}`)
  })

  it("reads control payloads with null t and s", () => {
    expect(scanEnvelope(`{"t":null,"s":null,"op":10,"d":{"heartbeat_interval":41250}}`)).toMatchObject({ op: 10, t: null, s: null })
    expect(scanEnvelope(`{"op":11}`)).toMatchObject({ op: 11, dStart: -1 })
    const invalid = `{"t":null,"s":null,"op":9,"d":false}`
    expect(dOf(invalid)).toBe("false")
  })

  it("declines what it cannot read safely, so the caller parses instead", () => {
    for (const bad of [`{"op":0,"d":{"a":1}`, `[1]`, `{}`, `{"d":1}`, `{"op":"0"}`, `{"op":0,"t":"A\\u0042","s":1,"d":1}`, `not json`]) {
      expect(scanEnvelope(bad)).toBeUndefined()
    }
  })

  it("agrees with JSON.parse on strings ending in escaped backslashes", () => {
    const d = { a: "\\", b: "\\\\\"", c: "}" }
    const text = JSON.stringify({ op: 0, t: "T", s: 1, d })
    expect(JSON.parse(dOf(text))).toEqual(d)
  })
})

describe("the quick read (d last)", () => {
  it("slices d without walking it when the envelope keys come first, as Discord writes them", () => {
    const d = { content: "}{][\\\"", nested: { a: [1, 2, { b: "}" }] } }
    const text = JSON.stringify({ t: "MESSAGE_CREATE", s: 9, op: 0, d }) + " "
    const quick = scanEnvelope(text, false)!
    const full = scanEnvelope(text, true)!
    expect(quick).toEqual(full)
    expect(JSON.parse(sliceD(text, quick))).toEqual(d)
  })

  it("walks d when the tail does not close it (a key after d)", () => {
    const text = `{"t":"X","s":1,"op":0,"d":{"a":1},"x":[1]}`
    expect(sliceD(text, scanEnvelope(text, false)!)).toBe(`{"a":1}`)
  })

  it("a reader that samples notices a changed format and walks every payload from then on", () => {
    let mismatches = 0
    const read = readerOf(() => mismatches++)
    // A key after d whose value also ends in "}" fools the quick read; the sample catches it.
    const tricky = `{"t":"X","s":1,"op":0,"d":{"a":1},"x":{"b":2}}`
    const good = `{"t":"X","s":1,"op":0,"d":{"a":1}}`
    for (let i = 0; i < 1_100; i++) read(good)
    expect(mismatches).toBe(0)
    const results = Array.from({ length: 200 }, () => read(tricky)!)
    expect(mismatches).toBe(1)
    const after = results.slice(64)
    for (const env of after) expect(sliceD(tricky, env)).toBe(`{"a":1}`)

    // From the start of a run, every payload is checked.
    let early = 0
    const fresh = readerOf(() => early++)
    const first = fresh(tricky)!
    expect(early).toBe(1)
    expect(sliceD(tricky, first)).toBe(`{"a":1}`)
  })
})

describe("the sequence number s", () => {
  const dispatch = (s: string) => `{"t":"MESSAGE_CREATE","s":${s},"op":0,"d":{"id":"1"}}`

  it("takes whole numbers from 0 to 2^53-1", () => {
    for (const [raw, value] of [["1", 1], ["0", 0], ["9007199254740991", Number.MAX_SAFE_INTEGER], ["12e3", 12_000]] as const) {
      for (const verifyTail of [true, false]) {
        expect(scanEnvelope(dispatch(raw), verifyTail)).toMatchObject({ s: value, undecodable: undefined })
      }
    }
    expect(scanEnvelope(`{"t":null,"s":null,"op":11}`)).toMatchObject({ s: null, undecodable: undefined })
  })

  it("reports a fractional, huge, negative or non-numeric s as undecodable, with s null", () => {
    for (const raw of ["1e300", "9007199254740992", "1.5", "-1", `"5"`, "true", "[1]", "{}"]) {
      for (const verifyTail of [true, false]) {
        const env = scanEnvelope(dispatch(raw), verifyTail)
        expect(env, raw).toBeDefined()
        expect(env!.s, raw).toBeNull()
        expect(env!.undecodable, raw).toMatch(/^s is not a sequence number \(a whole number from 0 to 2\^53-1\): got /)
        // The rest is still read (for the log line): op, t and d.
        expect(env).toMatchObject({ op: 0, t: "MESSAGE_CREATE" })
      }
    }
    expect(scanEnvelope(dispatch("1e300"))!.undecodable).toBe("s is not a sequence number (a whole number from 0 to 2^53-1): got 1e+300")
    expect(scanEnvelope(dispatch(`"5"`))!.undecodable).toBe(`s is not a sequence number (a whole number from 0 to 2^53-1): got "5"`)
  })

  it("judges a parsed s the same way (for payloads the scanner declines)", () => {
    for (const raw of ["1", "0", "9007199254740991", "null", "1e300", "1.5", "-1", `"5"`]) {
      const parsed = JSON.parse(dispatch(raw)) as { s: unknown }
      const scanned = scanEnvelope(dispatch(raw))!
      expect(sequenceProblem(parsed.s), raw).toBe(scanned.undecodable)
      expect(isSequence(parsed.s), raw).toBe(scanned.s !== null)
    }
  })

  it("a reader that samples passes the verdict on, quick path or not", () => {
    const read = readerOf(() => {
      throw new Error("no mismatch expected")
    })
    for (let n = 0; n < 1_100; n++) read(dispatch(String(n + 1)))
    expect(read(dispatch("1e300"))!.undecodable).toMatch(/got 1e\+300/)
    expect(read(dispatch("1101"))).toMatchObject({ s: 1101, undecodable: undefined })
  })
})

describe("event names", () => {
  it("are read from the bytes, the same string each time, non-ASCII names included", () => {
    const payload = (t: string, s: number) => `{"t":"${t}","s":${s},"op":0,"d":{}}`
    const first = scanEnvelope(payload("MESSAGE_CREATE", 1))!.t
    const again = scanEnvelope(payload("MESSAGE_CREATE", 2))!.t
    expect(first).toBe("MESSAGE_CREATE")
    expect(again).toBe(first)
    // Names of the same length and different letters are told apart.
    expect(scanEnvelope(payload("MESSAGE_DELETE", 3))!.t).toBe("MESSAGE_DELETE")
    expect(scanEnvelope(payload("ÉVÉNEMENT", 4))!.t).toBe("ÉVÉNEMENT")
    for (let i = 0; i < 2_000; i++) expect(scanEnvelope(payload(`MADE_UP_${i}`, i + 5))!.t).toBe(`MADE_UP_${i}`)
  })
})
