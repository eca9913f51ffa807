// Cutting standard input into commands: JSON lines, a MessagePack stream, or both interleaved.
import { encode } from "@msgpack/msgpack"
import { describe, expect, it } from "vitest"
import { INCOMPLETE, INVALID, msgpackValueEnd } from "../../src/Commands/MsgpackFrame.ts"
import { CommandFramer, type Frame } from "../../src/Commands/StdinFramer.ts"

const summary = (frames: ReadonlyArray<Frame>) =>
  frames.map((f) => (f.kind === "command" ? Buffer.from(f.bytes).toString("hex") : `refused:${f.refusal.reason}`))

describe("msgpackValueEnd", () => {
  it("finds the end of every kind of value, and says when more bytes are needed", () => {
    const values: Array<unknown> = [
      0, -1, 127, 200, 70_000, 2 ** 40, -(2 ** 40), 1.5, null, true, false, "", "short", "x".repeat(40), "y".repeat(300), "z".repeat(70_000),
      [], [1, [2, [3]]], Array.from({ length: 20 }, (_, i) => i), {}, { a: 1, b: { c: [true, null] } },
      Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`k${i}`, i])), new Uint8Array(300), 2n ** 63n
    ]
    for (const value of values) {
      const bytes = encode(value, { useBigInt64: true })
      const padded = Buffer.concat([Buffer.from([0xc0]), bytes, Buffer.from([0xc3])])
      expect(msgpackValueEnd(padded, 1, 1 << 20)).toBe(1 + bytes.byteLength)
      for (const cut of [1, Math.floor(bytes.byteLength / 2), bytes.byteLength - 1]) {
        if (cut <= 0 || cut >= bytes.byteLength) continue
        expect(msgpackValueEnd(bytes.subarray(0, cut), 0, 1 << 20)).toBe(INCOMPLETE)
      }
    }
    expect(msgpackValueEnd(Buffer.from([0xc1]), 0, 100)).toBe(INVALID)
    // Longer than the limit: reported as soon as it is known, without waiting for the bytes.
    expect(msgpackValueEnd(Buffer.from([0xdb, 0x00, 0x10, 0x00, 0x00]), 0, 100)).toBe(101)
    expect(msgpackValueEnd(Buffer.from([0xdd, 0x00, 0x10, 0x00, 0x00]), 0, 100)).toBe(101)
  })
})

describe("CommandFramer", () => {
  const jsonLine = (n: number) => `{"op":3,"shard_id":${n},"d":{}}`
  const packed = (n: number) => Buffer.from(encode({ op: 3, shard_id: n, d: {} }))

  it("cuts JSON lines and MessagePack values, interleaved, whatever the chunk boundaries", () => {
    const input = Buffer.concat([
      Buffer.from(`${jsonLine(0)}\n\n  ${jsonLine(1)}\r\n`),
      packed(2),
      packed(3),
      Buffer.from(`\n${jsonLine(4)}\n`),
      packed(5)
    ])
    const expected = [
      Buffer.from(jsonLine(0)).toString("hex"),
      Buffer.from(jsonLine(1) + "\r").toString("hex"),
      packed(2).toString("hex"),
      packed(3).toString("hex"),
      Buffer.from(jsonLine(4)).toString("hex"),
      packed(5).toString("hex")
    ]
    for (let size = 1; size <= input.byteLength; size += size < 8 ? 1 : 13) {
      const framer = new CommandFramer()
      const frames: Array<Frame> = []
      for (let i = 0; i < input.byteLength; i += size) frames.push(...framer.push(input.subarray(i, i + size)))
      frames.push(...framer.end())
      expect(summary(frames)).toEqual(expected)
    }
  })

  it("keeps a last line without a newline, and reports a MessagePack value cut by the end", () => {
    const framer = new CommandFramer()
    expect(framer.push(Buffer.from(jsonLine(7)))).toEqual([])
    expect(summary(framer.end())).toEqual([Buffer.from(jsonLine(7)).toString("hex")])
    const cut = new CommandFramer()
    expect(cut.push(packed(1).subarray(0, 4))).toEqual([])
    expect(summary(cut.end())).toEqual(["refused:malformed"])
  })

  it("skips an unusable byte to the next line, and an over-long line entirely", () => {
    const framer = new CommandFramer(64)
    const frames = [
      ...framer.push(Buffer.from([0xc1, 0x41, 0x42])),
      ...framer.push(Buffer.from(`junk\n${jsonLine(1)}\n`)),
      ...framer.push(Buffer.from("a".repeat(100))),
      ...framer.push(Buffer.from(`${"b".repeat(100)}\n${jsonLine(2)}\n`))
    ]
    expect(summary(frames)).toEqual([
      "refused:malformed",
      Buffer.from(jsonLine(1)).toString("hex"),
      "refused:too_large",
      Buffer.from(jsonLine(2)).toString("hex")
    ])
  })
})
