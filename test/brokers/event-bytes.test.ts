import { describe, expect, it } from "vitest"
import type { DispatchEvent } from "../../src/Broker/DispatchEvent.ts"
import { freshEventBytes, makeRecyclingEventBytes } from "../../src/Broker/EventBytes.ts"

const options = { blockBytes: 64, largestCopy: 32, spareBlocks: 2, trackedBlocks: 4 }
const payload = (text: string) => Buffer.from(`{"d":${text}}`)
/** Copies `text` as a d would be (from the middle of a payload), into an event. */
const copyInto = (bytes: ReturnType<typeof makeRecyclingEventBytes>, text: string): DispatchEvent => {
  const p = payload(text)
  return { shard: 0, t: "X", seq: 1, epoch: 0, data: bytes.copy(p, 5, p.length - 1), receipt: { accepted: () => {}, current: () => true } }
}
const texts = (events: ReadonlyArray<DispatchEvent>) => events.map((e) => e.data.toString())

describe("event bytes", () => {
  it("copy what they are given, whatever later happens to the source", () => {
    for (const bytes of [freshEventBytes, makeRecyclingEventBytes(options)]) {
      const source = payload(`"abc"`)
      const data = bytes.copy(source, 5, source.length - 1)
      source.fill(0)
      expect(data.toString()).toBe(`"abc"`)
    }
  })

  it("reuse a block only once every event copied into it was released after a clean publish", () => {
    const bytes = makeRecyclingEventBytes(options)
    // 4 events of 16 bytes fill the first block; the fifth starts the second.
    const first = Array.from({ length: 4 }, (_, i) => copyInto(bytes, `"${String(i).repeat(14)}"`))
    const fifth = copyInto(bytes, `"eeeeeeeeeeeeee"`)
    expect(first[0]!.data.buffer).not.toBe(fifth.data.buffer)
    bytes.release(first.slice(0, 3), true)
    // One event of the block is still out: later copies must not land on it.
    const later = Array.from({ length: 8 }, () => copyInto(bytes, `"zzzzzzzzzzzzzz"`))
    expect(texts([first[3]!])).toEqual([`"33333333333333"`])
    expect(later.some((e) => e.data.buffer === first[0]!.data.buffer)).toBe(false)
    // Released too: the block comes back for a later copy.
    bytes.release([first[3]!, fifth, ...later], true)
    const again = Array.from({ length: 12 }, () => copyInto(bytes, `"yyyyyyyyyyyyyy"`))
    expect(again.some((e) => e.data.buffer === first[0]!.data.buffer)).toBe(true)
  })

  it("never reuse the block of an event released after a failed attempt", () => {
    const bytes = makeRecyclingEventBytes(options)
    const held = Array.from({ length: 4 }, () => copyInto(bytes, `"hhhhhhhhhhhhhh"`))
    bytes.release(held, false)
    const later = Array.from({ length: 40 }, () => copyInto(bytes, `"nnnnnnnnnnnnnn"`))
    bytes.release(later, true)
    const more = Array.from({ length: 40 }, () => copyInto(bytes, `"mmmmmmmmmmmmmm"`))
    expect([...later, ...more].some((e) => e.data.buffer === held[0]!.data.buffer)).toBe(false)
    expect(new Set(texts(held))).toEqual(new Set([`"hhhhhhhhhhhhhh"`]))
  })

  it("give large copies memory of their own, and forget blocks whose events never come back", () => {
    const bytes = makeRecyclingEventBytes(options)
    const big = copyInto(bytes, `"${"b".repeat(60)}"`)
    expect(big.data.toString()).toBe(`"${"b".repeat(60)}"`)
    // Events never released (a dropped backlog) pin their blocks; the tracking stays bounded and
    // what was forgotten is never reused.
    const lost = Array.from({ length: 40 }, () => copyInto(bytes, `"llllllllllllll"`))
    const fresh = Array.from({ length: 40 }, () => copyInto(bytes, `"ffffffffffffff"`))
    expect(new Set(texts(lost))).toEqual(new Set([`"llllllllllllll"`]))
    bytes.release(fresh, true)
    expect(new Set(texts(lost))).toEqual(new Set([`"llllllllllllll"`]))
  })
})

describe("spare blocks", () => {
  it("are kept while blocks are in demand and let go after a quiet spell", () => {
    const bytes = makeRecyclingEventBytes({ ...options, spareBlocks: 8, trackedBlocks: 16 })
    // 16-byte copies, four to a block.
    const copies = () => Array.from({ length: 16 }, () => copyInto(bytes, `"cccccccccccccc"`))
    const blocksOf = (events: ReadonlyArray<DispatchEvent>) => new Set(events.map((e) => e.data.buffer))
    const burst = copies()
    const burstBlocks = blocksOf(burst)
    expect(burstBlocks.size).toBe(4)
    bytes.release(burst, true)
    bytes.trim() // blocks were taken since the start: the spares stay
    const busy = copies()
    expect([...blocksOf(busy)].every((b) => burstBlocks.has(b))).toBe(true)
    bytes.release(busy, true)
    bytes.trim()
    bytes.trim() // nothing taken in between: the spares go
    const quiet = copies()
    // Only the block being filled is still one of the first.
    expect([...blocksOf(quiet)].filter((b) => burstBlocks.has(b))).toHaveLength(1)
  })
})
