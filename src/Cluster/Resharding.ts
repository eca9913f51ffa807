// Resharding without downtime, as a pure state machine over the cluster-wide sharding state (one
// JSON value in Redis, changed only by compare-and-set; ReshardingStore.ts). A *generation* is a
// shard count with a key prefix of its own, so two generations run side by side without sharing
// leases, epochs, members, stored sessions or publish fences.
//
//   { generation g, count c }                         one generation runs and publishes
//   + next { g+1, n, phase "starting" }               every process also runs g+1, not publishing it
//   + next { g+1, n, phase "switching" }              every g+1 shard was READY: each process opens
//                                                     g+1's publishing and acknowledges
//   { generation g+1, count n }                       every member acknowledged: g closes
//
// Old events keep flowing from g until every process publishes g+1, so nothing is lost; what both
// publish meanwhile are the duplicates (counted). After close code 4011 generation g delivers
// nothing any more, so g+1 publishes from its first READY on (`open`): there is nothing to wait for.

export type ReshardPhase = "starting" | "switching"

/** Why a resharding began; decides whether the next generation publishes at once. */
export type ReshardReason = "recommended" | "required" | "operator"

export interface NextGeneration {
  readonly generation: number
  readonly shardCount: number
  readonly phase: ReshardPhase
  /** Publishes from its first READY on: the current generation cannot deliver (4011). */
  readonly open: boolean
  readonly reason: ReshardReason
}

export interface ShardingState {
  readonly generation: number
  readonly shardCount: number
  readonly next?: NextGeneration | undefined
}

/** Key prefix of a generation's keys: generation 0 keeps the configured prefix (data of earlier versions). */
export const generationPrefix = (prefix: string, generation: number): string =>
  generation === 0 ? prefix : `${prefix}g${generation}:`

export const initialSharding = (shardCount: number): ShardingState => ({ generation: 0, shardCount })

const isCount = (n: unknown): n is number => typeof n === "number" && Number.isSafeInteger(n) && n >= 1
const isGeneration = (n: unknown): n is number => typeof n === "number" && Number.isSafeInteger(n) && n >= 0

/** The stored value, or undefined when it is not one we wrote (the caller says so and stays put). */
export const decodeSharding = (text: string | null | undefined): ShardingState | undefined => {
  if (text === null || text === undefined) return undefined
  let raw: unknown
  try {
    raw = JSON.parse(text)
  } catch {
    return undefined
  }
  if (typeof raw !== "object" || raw === null) return undefined
  const { generation, shardCount, next } = raw as Record<string, unknown>
  if (!isGeneration(generation) || !isCount(shardCount)) return undefined
  if (next === undefined || next === null) return { generation, shardCount }
  if (typeof next !== "object") return undefined
  const n = next as Record<string, unknown>
  if (n.generation !== generation + 1 || !isCount(n.shardCount)) return undefined
  if (n.phase !== "starting" && n.phase !== "switching") return undefined
  const reason = n.reason === "required" || n.reason === "operator" ? n.reason : "recommended"
  return { generation, shardCount, next: { generation: n.generation, shardCount: n.shardCount, phase: n.phase, open: n.open === true, reason } }
}

export const encodeSharding = (state: ShardingState): string => JSON.stringify(state)

export type BeginResult =
  | { readonly _tag: "Begin"; readonly state: ShardingState }
  | { readonly _tag: "Refused"; readonly why: string }

/**
 * Starts a resharding to `shardCount`, unless one is under way or the count is not higher. A 4011
 * during a resharding that waits for its READYs opens the next generation's publishing instead.
 */
export const begin = (state: ShardingState, shardCount: number, reason: ReshardReason): BeginResult => {
  if (state.next !== undefined) {
    if (reason === "required" && !state.next.open) {
      return { _tag: "Begin", state: { ...state, next: { ...state.next, open: true } } }
    }
    return { _tag: "Refused", why: `a resharding to ${state.next.shardCount} shards (generation ${state.next.generation}) is under way` }
  }
  if (!isCount(shardCount) || shardCount <= state.shardCount) {
    return { _tag: "Refused", why: `the cluster already runs ${state.shardCount} shards, not fewer than ${shardCount}` }
  }
  return {
    _tag: "Begin",
    state: { ...state, next: { generation: state.generation + 1, shardCount, phase: "starting", open: reason === "required", reason } }
  }
}

/** The count to reshard to after 4011: Discord's recommendation when higher, else twice the current. */
export const requiredCount = (current: number, recommended: number | undefined): number =>
  recommended !== undefined && recommended > current ? recommended : current * 2

export interface ClusterView {
  /** Shards of the next generation that were READY at least once (anywhere in the cluster). */
  readonly readyShards: number
  /** Alive members, of either generation. */
  readonly members: ReadonlyArray<string>
  /** Members that publish the next generation now (acknowledged the switch). */
  readonly acked: ReadonlySet<string>
}

/** The next state the cluster should move to from what Redis says, or undefined: nothing to do yet. */
export const advance = (state: ShardingState, view: ClusterView): ShardingState | undefined => {
  const next = state.next
  if (next === undefined) return undefined
  if (next.phase === "starting") {
    return view.readyShards >= next.shardCount ? { ...state, next: { ...next, phase: "switching" } } : undefined
  }
  // Nobody known alive (Redis did not answer): nobody can be said to have acknowledged.
  if (view.members.length === 0 || !view.members.every((m) => view.acked.has(m))) return undefined
  return { generation: next.generation, shardCount: next.shardCount }
}

/** Whether this process should publish the events of `generation` now. */
export const publishes = (state: ShardingState, generation: number): boolean => {
  if (generation === state.generation) return true
  const next = state.next
  return next !== undefined && generation === next.generation && (next.phase === "switching" || next.open)
}

/** The generations a process runs for this state: the current one, and the next while resharding. */
export const generationsToRun = (state: ShardingState): ReadonlyArray<{ readonly generation: number; readonly shardCount: number }> =>
  state.next === undefined
    ? [{ generation: state.generation, shardCount: state.shardCount }]
    : [{ generation: state.generation, shardCount: state.shardCount }, { generation: state.next.generation, shardCount: state.next.shardCount }]

/** Words for logs and the state metric (0 idle, 1 starting, 2 switching). */
export const stateCode = (state: ShardingState): number =>
  state.next === undefined ? 0 : state.next.phase === "starting" ? 1 : 2
