import { describe, expect, it } from "vitest"
import { decide, fairShares, type Member } from "../../src/Cluster/Assignment.ts"

const member = (id: string, held: number, capacity = Number.POSITIVE_INFINITY): Member => ({ id, capacity, held })
const holders = (count: number, owners: Record<number, string>) => Array.from({ length: count }, (_, s) => owners[s])

describe("fair shares", () => {
  it("splits evenly, the remainder to the first members by id, never above a capacity", () => {
    expect([...fairShares(12, [member("b", 0), member("a", 0), member("c", 0)])]).toEqual([["a", 4], ["b", 4], ["c", 4]])
    expect([...fairShares(13, [member("a", 0), member("b", 0), member("c", 0)]).values()]).toEqual([5, 4, 4])
    expect([...fairShares(12, [member("a", 0, 2), member("b", 0), member("c", 0)]).values()]).toEqual([2, 5, 5])
    // Not enough capacity in the cluster: the rest stays unassigned.
    expect([...fairShares(12, [member("a", 0, 2), member("b", 0, 3)]).values()]).toEqual([2, 3])
    expect([...fairShares(2, [member("a", 0), member("b", 0), member("c", 0)]).values()]).toEqual([1, 1, 0])
  })
})

describe("what a member does", () => {
  it("claims free shards up to its share, starting at its own offset", () => {
    const d = decide({ self: "b", capacity: Infinity, shardCount: 12, members: [member("a", 0), member("b", 0), member("c", 0)], held: new Set(), holders: holders(12, {}), freeBefore: new Set() })
    expect(d.target).toBe(4)
    expect(d.claim).toEqual([4, 5, 6, 7])
    expect(d.handOff).toBeUndefined()
  })

  it("takes orphans beyond its share, up to its capacity, once they stayed free for two looks", () => {
    const owners: Record<number, string> = {}
    for (let s = 0; s < 8; s++) owners[s] = s < 4 ? "a" : "b"
    const view = { self: "a", capacity: 6, shardCount: 12, members: [member("a", 4), member("b", 4), member("c", 4)], held: new Set([0, 1, 2, 3]), holders: holders(12, owners) }
    expect(decide({ ...view, freeBefore: new Set() }).claim).toEqual([])
    expect(decide({ ...view, freeBefore: new Set([8, 9, 10, 11]) }).claim).toEqual([8, 9])
  })

  it("hands one shard over when a member is below its share, and not otherwise", () => {
    const owners: Record<number, string> = {}
    for (let s = 0; s < 12; s++) owners[s] = ["a", "b", "c"][Math.floor(s / 4)]!
    const joined = [member("a", 4), member("b", 4), member("c", 4), member("d", 0)]
    const d = decide({ self: "a", capacity: Infinity, shardCount: 12, members: joined, held: new Set([0, 1, 2, 3]), holders: holders(12, owners), freeBefore: new Set() })
    expect(d.target).toBe(3)
    expect(d.handOff).toBe(3)
    const settled = [member("a", 4), member("b", 4), member("c", 4)]
    expect(decide({ self: "a", capacity: Infinity, shardCount: 12, members: settled, held: new Set([0, 1, 2, 3]), holders: holders(12, owners), freeBefore: new Set() }).handOff).toBeUndefined()
    // A newcomer already full (capacity 0) waits for nothing.
    const full = [...settled, member("d", 0, 0)]
    expect(decide({ self: "a", capacity: Infinity, shardCount: 12, members: full, held: new Set([0, 1, 2, 3]), holders: holders(12, owners), freeBefore: new Set() }).handOff).toBeUndefined()
  })
})
