import * as zlib from "node:zlib"
import { describe, expect, it } from "vitest"
import { type CompressionKind, type DroppedPayload, InflateError, makeInflater } from "../../src/Transport/Inflater.ts"
import { peekEnvelope } from "../../src/Discord/PayloadScanner.ts"

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
    const inflater = makeInflater(kind, { onPayload: (bytes) => out.push(bytes.toString()), onError: (e) => { throw e } }, forceAsync)
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
    makeInflater("none", { onPayload: (bytes) => out.push(bytes.toString()), onError: () => {} }).push(Buffer.from(`{"op":11}`))
    expect(out).toEqual([`{"op":11}`])
  })
})

describe("after close", () => {
  it.each(["zlib-stream", "zstd-stream"] as const)("%s ignores frames that arrive while the socket closes", async (kind) => {
    const [frame] = await compressAll(kind, [`{"op":11}`])
    const out: Array<string> = []
    const inflater = makeInflater(kind, { onPayload: (bytes) => out.push(bytes.toString()), onError: () => {} })
    inflater.close()
    expect(() => inflater.push(frame!)).not.toThrow()
    expect(out).toEqual([])
  })
})

// ---- hard caps: what a hostile peer sends does not decide how much memory the gateway uses ----

const MiB = 1024 * 1024

/**
 * One compressor context (one connection) producing: a small payload, a bomb whose body is
 * `bombMiB` of one repeated byte (a few hundred KB compressed), then another small payload. The
 * bomb is compressed from a reused 1 MiB chunk, so building it never holds it whole.
 */
const BOMB_START = `{"t":"GUILD_CREATE","s":2,"op":0,"d":{"bomb":"`
const BOMB_END = `"}}`
/** Bytes of the bomb payload around its body. */
const BOMB_OVERHEAD = BOMB_START.length + BOMB_END.length

const bombFrames = async (kind: "zlib-stream" | "zstd-stream", bombMiB: number) => {
  const stream = kind === "zlib-stream" ? zlib.createDeflate() : zlib.createZstdCompress()
  const flush = kind === "zlib-stream" ? zlib.constants.Z_SYNC_FLUSH : zlib.constants.ZSTD_e_flush
  const frames: Array<Buffer> = []
  const parts: Array<Buffer> = []
  stream.on("data", (chunk: Buffer) => parts.push(chunk))
  const write = (data: Buffer | string) => new Promise<void>((resolve) => (stream.write(data) ? resolve() : stream.once("drain", () => resolve())))
  const cut = async () => {
    await new Promise<void>((r) => stream.flush(flush, () => r()))
    frames.push(Buffer.concat(parts))
    parts.length = 0
  }
  await write(`{"t":"MESSAGE_CREATE","s":1,"op":0,"d":{"n":1}}`)
  await cut()
  await write(BOMB_START)
  const chunk = Buffer.alloc(MiB, "a")
  for (let i = 0; i < bombMiB; i++) await write(chunk)
  await write(BOMB_END)
  await cut()
  await write(`{"t":"MESSAGE_CREATE","s":3,"op":0,"d":{"n":3}}`)
  await cut()
  stream.close()
  return frames
}

/** Resident memory now, and the highest seen by `sample` calls since. */
const rssWatch = () => {
  const start = process.memoryUsage().rss
  let peak = start
  return {
    sample: () => void (peak = Math.max(peak, process.memoryUsage().rss)),
    growthMiB: () => (Math.max(peak, process.memoryUsage().rss) - start) / MiB
  }
}

const collect = () => {
  const payloads: Array<string> = []
  const oversized: Array<DroppedPayload> = []
  const errors: Array<InflateError> = []
  return {
    payloads,
    oversized,
    errors,
    callbacks: { onPayload: (bytes: Buffer) => payloads.push(bytes.toString()), onError: (e: InflateError) => errors.push(e), onOversized: (d: DroppedPayload) => oversized.push(d) }
  }
}

const settle = (forceAsync: boolean, done: () => boolean) =>
  forceAsync
    ? new Promise<void>((resolve, reject) => {
      const started = Date.now()
      const timer = setInterval(() => {
        if (done()) {
          clearInterval(timer)
          resolve()
        } else if (Date.now() - started > 60_000) {
          clearInterval(timer)
          reject(new Error("the inflater did not finish"))
        }
      }, 10)
    })
    : Promise.resolve()

describe.each([
  ["zlib-stream", false],
  ["zlib-stream", true],
  ["zstd-stream", false],
  ["zstd-stream", true]
] as Array<["zlib-stream" | "zstd-stream", boolean]>)("caps, %s (async fallback: %s)", (kind, forceAsync) => {
  it("drops a bomb inflating to 300 MiB while it is inflated, reports it, and decodes the payloads after it", async () => {
    const frames = await bombFrames(kind, 300)
    const got = collect()
    const inflater = makeInflater(kind, got.callbacks, forceAsync, { maxPayloadBytes: 32 * MiB, maxPendingBytes: 32 * MiB })
    const memory = rssWatch()
    for (const frame of frames) {
      inflater.push(frame)
      memory.sample()
    }
    await settle(forceAsync, () => {
      memory.sample()
      return got.payloads.length + got.oversized.length === 2 + 1
    })
    const growth = memory.growthMiB()
    console.log(`${kind}${forceAsync ? " (async)" : ""}: bomb of ${(frames[1]!.length / 1024).toFixed(0)} KiB compressed, 300 MiB inflated; RSS grew ${growth.toFixed(1)} MiB`)
    expect(got.errors).toEqual([])
    expect(got.payloads.map((p) => JSON.parse(p).s)).toEqual([1, 3])
    expect(got.oversized).toEqual([{ bytes: 300 * MiB + BOMB_OVERHEAD, limit: 32 * MiB, op: 0, t: "GUILD_CREATE", s: 2 }])
    expect(growth).toBeLessThan(100)
    inflater.close()
  }, 120_000)

  it("passes a payload right at the cap", async () => {
    const frames = await bombFrames(kind, 2)
    const got = collect()
    const inflater = makeInflater(kind, got.callbacks, forceAsync, { maxPayloadBytes: 2 * MiB + BOMB_OVERHEAD, maxPendingBytes: MiB })
    for (const frame of frames) inflater.push(frame)
    await settle(forceAsync, () => got.payloads.length + got.oversized.length === 3)
    expect(got.oversized).toEqual([])
    expect(got.payloads.map((p) => JSON.parse(p).s)).toEqual([1, 2, 3])
    inflater.close()
  })
})

describe("caps on uncompressed and unfinished data", () => {
  it("drops a 50 MB plain payload (compress none) without decoding it, and passes the next", () => {
    const got = collect()
    const inflater = makeInflater("none", got.callbacks, false, { maxPayloadBytes: 32 * MiB, maxPendingBytes: 32 * MiB })
    const huge = Buffer.alloc(50 * 1000 * 1000, "a")
    huge.write(`{"t":"GUILD_CREATE","s":7,"op":0,"d":{"x":"`)
    const memory = rssWatch()
    inflater.push(huge)
    inflater.push(Buffer.from(`{"t":"MESSAGE_CREATE","s":8,"op":0,"d":{}}`))
    memory.sample()
    console.log(`none: 50 MB plain payload; RSS grew ${memory.growthMiB().toFixed(1)} MiB`)
    expect(got.oversized).toEqual([{ bytes: 50_000_000, limit: 32 * MiB, op: 0, t: "GUILD_CREATE", s: 7 }])
    expect(got.payloads.map((p) => JSON.parse(p).s)).toEqual([8])
    expect(memory.growthMiB()).toBeLessThan(100)
  })

  it("drops a 50 MB zlib-stream payload of ordinary JSON, and the stream goes on", async () => {
    const records = Array.from({ length: 1_000 }, (_, i) => ({ id: String(10n ** 17n + BigInt(i)), name: `member ${i}`, roles: [String(i), String(i * 7)] }))
    const body = JSON.stringify(records)
    const copies = Math.ceil(50_000_000 / body.length)
    const deflate = zlib.createDeflate()
    const parts: Array<Buffer> = []
    deflate.on("data", (c: Buffer) => parts.push(c))
    const frames: Array<Buffer> = []
    const flush = async () => {
      await new Promise<void>((r) => deflate.flush(zlib.constants.Z_SYNC_FLUSH, () => r()))
      frames.push(Buffer.concat(parts))
      parts.length = 0
    }
    deflate.write(`{"t":"GUILD_MEMBERS_CHUNK","s":4,"op":0,"d":{"members":[`)
    for (let i = 0; i < copies; i++) deflate.write(i === 0 ? body.slice(1, -1) : `,${body.slice(1, -1)}`)
    deflate.write(`]}}`)
    await flush()
    deflate.write(`{"t":"MESSAGE_CREATE","s":5,"op":0,"d":{}}`)
    await flush()
    deflate.close()
    const got = collect()
    const inflater = makeInflater("zlib-stream", got.callbacks, false, { maxPayloadBytes: 32 * MiB, maxPendingBytes: 32 * MiB })
    const memory = rssWatch()
    for (const frame of frames) inflater.push(frame)
    memory.sample()
    console.log(`zlib-stream: ${((copies * (body.length - 2)) / 1e6).toFixed(0)} MB JSON payload (${(frames[0]!.length / MiB).toFixed(1)} MiB compressed); RSS grew ${memory.growthMiB().toFixed(1)} MiB`)
    expect(got.oversized).toHaveLength(1)
    expect(got.oversized[0]).toMatchObject({ t: "GUILD_MEMBERS_CHUNK", s: 4, op: 0 })
    expect(got.oversized[0]!.bytes).toBeGreaterThan(50_000_000)
    expect(got.payloads.map((p) => JSON.parse(p).s)).toEqual([5])
    expect(memory.growthMiB()).toBeLessThan(100)
  }, 60_000)

  it.each([false, true])("ends a zlib-stream whose unfinished message grows past its cap, without holding it (async fallback: %s)", async (forceAsync) => {
    const got = collect()
    const inflater = makeInflater("zlib-stream", got.callbacks, forceAsync, { maxPayloadBytes: 32 * MiB, maxPendingBytes: 4 * MiB })
    const memory = rssWatch()
    // 1 MiB pieces that never end with 00 00 ff ff: a message that never finishes.
    const piece = Buffer.alloc(MiB, 0x41)
    let thrown: unknown
    let pushed = 0
    for (; pushed < 200 && thrown === undefined && got.errors.length === 0; pushed++) {
      try {
        inflater.push(piece)
      } catch (e) {
        thrown = e
      }
      memory.sample()
    }
    const error = (thrown ?? got.errors[0]) as InflateError
    expect(error).toBeInstanceOf(InflateError)
    expect(error.resumable).toBe(false)
    expect(error.message).toMatch(/unfinished compressed message grew past 4194304 bytes/)
    // Failed on the piece that went past 4 MiB, not later.
    expect(pushed).toBe(5)
    expect(memory.growthMiB()).toBeLessThan(100)
    // Nothing more comes out of this stream: the session starts afresh with a new inflater.
    if (forceAsync) inflater.push(piece)
    else expect(() => inflater.push(piece)).toThrow(InflateError)
    inflater.close()
    const [frame] = await compressAll("zlib-stream", [`{"op":11}`])
    const fresh = collect()
    const next = makeInflater("zlib-stream", fresh.callbacks, forceAsync)
    next.push(frame!)
    await settle(forceAsync, () => fresh.payloads.length === 1)
    expect(fresh.payloads).toEqual([`{"op":11}`])
    next.close()
  })

  it("reads type, seq and op from the start of a payload, as far as they are there", () => {
    expect(peekEnvelope(`{"t":"GUILD_CREATE","s":12,"op":0,"d":{"t":"NOPE","s":1`)).toEqual({ op: 0, t: "GUILD_CREATE", s: 12 })
    expect(peekEnvelope(`{"d":{"t":"NOPE","s":1,"op":5}`)).toEqual({ op: undefined, t: undefined, s: undefined })
    expect(peekEnvelope(`{"t":"X","s":99999999999999999,"op":0,"d":`)).toEqual({ op: 0, t: "X", s: undefined })
    expect(peekEnvelope(`{"t":"GUILD_CR`)).toEqual({ op: undefined, t: undefined, s: undefined })
  })
})

// RSS measured in a fresh Node process per case: in this one, memory freed by an earlier test is
// reused by a later one, which would hide growth. The child builds the frames, then reports how
// far RSS rose while the inflater took them.
const INFLATER = new URL("../../src/Transport/Inflater.ts", import.meta.url).href

const childScript = (kind: "zlib-stream" | "zstd-stream", forceAsync: boolean, bombMiB: number) => `
import * as zlib from "node:zlib"
const { makeInflater } = await import(${JSON.stringify(INFLATER)})
const MiB = 1024 * 1024
const kind = ${JSON.stringify(kind)}
const stream = kind === "zlib-stream" ? zlib.createDeflate() : zlib.createZstdCompress()
const flush = kind === "zlib-stream" ? zlib.constants.Z_SYNC_FLUSH : zlib.constants.ZSTD_e_flush
const parts = []
stream.on("data", (c) => parts.push(c))
const frames = []
const write = (d) => new Promise((r) => (stream.write(d) ? r() : stream.once("drain", r)))
const cut = async () => { await new Promise((r) => stream.flush(flush, r)); frames.push(Buffer.concat(parts)); parts.length = 0 }
await write('{"t":"GUILD_CREATE","s":2,"op":0,"d":{"bomb":"')
const chunk = Buffer.alloc(MiB, "a")
for (let i = 0; i < ${bombMiB}; i++) await write(chunk)
await write('"}}')
await cut()
await write('{"t":"MESSAGE_CREATE","s":3,"op":0,"d":{}}')
await cut()
stream.close()
globalThis.gc?.()
await new Promise((r) => setTimeout(r, 100))
const start = process.memoryUsage().rss
let peak = start
const sample = () => { peak = Math.max(peak, process.memoryUsage().rss) }
const seqs = []
let dropped = 0
const inflater = makeInflater(kind, { onPayload: (t) => { sample(); seqs.push(t.length > 1000 ? "huge" : JSON.parse(t).s) }, onError: (e) => { throw e }, onOversized: () => dropped++ }, ${forceAsync})
for (const f of frames) { inflater.push(f); sample() }
const timer = setInterval(sample, 5)
while (seqs.length + dropped < 2) await new Promise((r) => setTimeout(r, 10))
clearInterval(timer)
sample()
console.log(JSON.stringify({ growthMiB: (peak - start) / MiB, seqs, dropped }))
`

const runChild = async (script: string): Promise<{ growthMiB: number; seqs: Array<number | string>; dropped: number }> => {
  const { execFile } = await import("node:child_process")
  const stdout = await new Promise<string>((resolve, reject) =>
    execFile(process.execPath, ["--expose-gc", "--input-type=module", "-e", script], { maxBuffer: 1024 * 1024, timeout: 120_000 }, (error, out, err) =>
      error ? reject(new Error(`${error.message}\n${err}`)) : resolve(out))
  )
  return JSON.parse(stdout.trim().split("\n").at(-1)!)
}

describe.each([
  ["zlib-stream", false],
  ["zlib-stream", true],
  ["zstd-stream", false],
  ["zstd-stream", true]
] as Array<["zlib-stream" | "zstd-stream", boolean]>)("memory in a fresh process, %s (async fallback: %s)", (kind, forceAsync) => {
  it("a 300 MiB bomb raises RSS by less than 100 MiB, with the default caps", async () => {
    const result = await runChild(childScript(kind, forceAsync, 300))
    console.log(`fresh process, ${kind}${forceAsync ? " (async)" : ""}: 300 MiB bomb; RSS grew ${result.growthMiB.toFixed(1)} MiB`)
    expect(result.seqs).toEqual([3])
    expect(result.dropped).toBe(1)
    expect(result.growthMiB).toBeLessThan(100)
  }, 150_000)
})
