import * as zlib from "node:zlib"
import { describe, expect, it } from "vitest"
import { type CompressionKind, makeInflater } from "../../src/Transport/Inflater.ts"

const compressAll = async (kind: "zlib-stream" | "zstd-stream", messages: Array<string>) => {
  const stream = kind === "zlib-stream" ? zlib.createDeflate() : zlib.createZstdCompress()
  const flush = kind === "zlib-stream" ? zlib.constants.Z_SYNC_FLUSH : zlib.constants.ZSTD_e_flush
  const frames: Array<Buffer> = []
  for (const m of messages) {
    stream.write(m)
    await new Promise<void>((r) => stream.flush(flush, () => r()))
    const parts: Array<Buffer> = []
    let chunk: Buffer | null
    while ((chunk = stream.read() as Buffer | null)) parts.push(chunk)
    frames.push(Buffer.concat(parts))
  }
  return frames
}

const messages = [
  `{"op":10,"d":{"heartbeat_interval":41250}}`,
  JSON.stringify({ op: 0, t: "GUILD_CREATE", s: 1, d: { big: "x".repeat(300_000), text: "é😀" } }),
  `{"op":11}`
]

describe.each([
  ["zlib-stream", false],
  ["zlib-stream", true],
  ["zstd-stream", false],
  ["zstd-stream", true]
] as Array<[Exclude<CompressionKind, "none">, boolean]>)("%s (async fallback: %s)", (kind, forceAsync) => {
  it("decodes every payload in order, including one split over several frames", async () => {
    const frames = await compressAll(kind, messages)
    const out: Array<string> = []
    const inflater = makeInflater(kind, { onPayload: (t) => out.push(t), onError: (e) => { throw e } }, forceAsync)
    expect(inflater.synchronous).toBe(!forceAsync)
    for (const frame of frames) {
      if (kind === "zlib-stream" && frame.length > 1000) {
        // Discord may split one zlib message over several websocket frames.
        const third = Math.floor(frame.length / 3)
        inflater.push(frame.subarray(0, third))
        inflater.push(frame.subarray(third, 2 * third))
        inflater.push(frame.subarray(2 * third))
      } else inflater.push(frame)
    }
    await new Promise((r) => setTimeout(r, 50))
    expect(out).toEqual(messages)
    inflater.close()
  })

  it("reports corrupt data instead of crashing", async () => {
    const errors: Array<string> = []
    const inflater = makeInflater(kind, { onPayload: () => {}, onError: (e) => errors.push(e.message) }, forceAsync)
    const garbage = kind === "zlib-stream"
      ? Buffer.from([0x78, 0x9c, 0xff, 0xff, 0xff, 0x00, 0x00, 0xff, 0xff])
      : Buffer.from([0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07])
    try {
      inflater.push(garbage)
    } catch (e) {
      errors.push((e as Error).message)
    }
    await new Promise((r) => setTimeout(r, 50))
    expect(errors.length).toBeGreaterThan(0)
    expect(errors[0]).toMatch(/corrupt compressed data/)
  })
})

describe("none", () => {
  it("passes text frames through", () => {
    const out: Array<string> = []
    makeInflater("none", { onPayload: (t) => out.push(t), onError: () => {} }).push(Buffer.from(`{"op":11}`))
    expect(out).toEqual([`{"op":11}`])
  })
})

describe("after close", () => {
  it.each(["zlib-stream", "zstd-stream"] as const)("%s ignores frames that arrive while the socket closes", async (kind) => {
    const [frame] = await compressAll(kind, [`{"op":11}`])
    const out: Array<string> = []
    const inflater = makeInflater(kind, { onPayload: (t) => out.push(t), onError: () => {} })
    inflater.close()
    expect(() => inflater.push(frame!)).not.toThrow()
    expect(out).toEqual([])
  })
})
