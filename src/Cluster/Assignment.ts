// Who should run how many shards, and what this process does about it: a pure decision from what
// Redis says (alive members with their capacity and load, who holds which lease). Every process
// computes the same targets from the same view, so identical processes split the shards evenly
// with no per-process configuration. Weights are a later refinement; today a shard counts as 1.

export interface Member {
  readonly id: string
  /** The most shards it runs (Infinity: no limit). */
  readonly capacity: number
  /** Shards it holds now, as it last reported. */
  readonly held: number
}

/**
 * Even shares of `total` shards over members sorted by id, none above its capacity: equal splits
 * of what is left over the members with room, the remainder going to the first ones.
 */
export const fairShares = (total: number, members: ReadonlyArray<Pick<Member, "id" | "capacity">>): Map<string, number> => {
  const sorted = [...members].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
  const shares = new Map<string, number>(sorted.map((m) => [m.id, 0]))
  let left = total
  while (left > 0) {
    const open = sorted.filter((m) => shares.get(m.id)! < m.capacity)
    if (open.length === 0) break
    const each = Math.max(1, Math.floor(left / open.length))
    for (const m of open) {
      const add = Math.min(each, m.capacity - shares.get(m.id)!, left)
      shares.set(m.id, shares.get(m.id)! + add)
      left -= add
      if (left === 0) break
    }
  }
  return shares
}

export interface AssignmentView {
  readonly self: string
  readonly capacity: number
  readonly shardCount: number
  readonly members: ReadonlyArray<Member>
  /** Shards this process runs now. */
  readonly held: ReadonlySet<number>
  /** Holder of each shard's lease, by shard id (undefined: free). */
  readonly holders: ReadonlyArray<string | undefined>
  /** Shards that were already free at the previous look: orphans nobody below target picked up. */
  readonly freeBefore: ReadonlySet<number>
}

export interface AssignmentDecision {
  /** Free shards to claim now, in order of preference. */
  readonly claim: ReadonlyArray<number>
  /** A shard to hand to another process (one at a time, so the cluster moves gradually). */
  readonly handOff: number | undefined
  readonly target: number
}

export const decide = (view: AssignmentView): AssignmentDecision => {
  const members = view.members.some((m) => m.id === view.self)
    ? view.members
    : [...view.members, { id: view.self, capacity: view.capacity, held: view.held.size }]
  const shares = fairShares(view.shardCount, members)
  const target = shares.get(view.self) ?? 0
  const free: Array<number> = []
  for (let shard = 0; shard < view.shardCount; shard++) if (view.holders[shard] === undefined && !view.held.has(shard)) free.push(shard)

  // Start the search at a different place in each process so that claimers rarely collide.
  const index = [...members].sort((a, b) => (a.id < b.id ? -1 : 1)).findIndex((m) => m.id === view.self)
  const offset = free.length === 0 ? 0 : Math.floor((index * view.shardCount) / Math.max(1, members.length))
  const ordered = [...free.filter((s) => s >= offset), ...free.filter((s) => s < offset)]

  const room = Math.max(0, view.capacity - view.held.size)
  const claim: Array<number> = []
  const below = Math.max(0, Math.min(room, target - view.held.size))
  for (const shard of ordered) if (claim.length < below) claim.push(shard)
  // Orphans come before balance: a shard free for two looks in a row (its owner died, or the
  // processes below target are full) is taken by anyone with room; rebalancing evens it out later.
  for (const shard of ordered) {
    if (claim.length >= room) break
    if (view.freeBefore.has(shard) && !claim.includes(shard)) claim.push(shard)
  }

  // Hand a shard over only when somebody is waiting for one: a member below its share with room.
  let handOff: number | undefined
  if (claim.length === 0 && view.held.size > target && free.length === 0) {
    const waiting = members.some((m) => m.id !== view.self && m.held < (shares.get(m.id) ?? 0) && m.held < m.capacity)
    if (waiting) handOff = Math.max(...view.held)
  }
  return { claim, handOff, target }
}
