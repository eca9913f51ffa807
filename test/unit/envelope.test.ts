import { describe, expect, it } from "vitest"
import { scanEnvelope } from "../../src/Discord/PayloadScanner.ts"

const dOf = (text: string) => {
  const env = scanEnvelope(text)
  if (!env || env.dStart < 0) throw new Error("no d")
  return text.slice(env.dStart, env.dEnd)
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
