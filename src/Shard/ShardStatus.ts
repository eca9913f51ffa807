// Which shards are live now, for the startup progress line, /readyz and metrics. Only the shards
// this process runs now have a state (ShardOwnership): one that arrives starts as "connecting", one
// that leaves is forgotten. A process running none (a standby in a cluster) is ready.
import { Clock, Context, Effect, Layer } from "effect"
import { ShardOwnership } from "../Cluster/ShardOwnership.ts"
import { ShardPlan } from "../Cluster/ShardPlan.ts"

export type ShardState = "connecting" | "identifying" | "resuming" | "ready" | "reconnecting"

/**
 * Time left until every shard is READY, from what the shards not yet ready are doing. Identifies
 * are paced by Discord: one per 5 s in each bucket (shard id % max_concurrency), so the wait is
 * the fullest bucket's count of rounds. Resumes are not paced: they take a round trip (counted as
 * none). A shard still connecting is counted as an identify: it may yet resume, which only
 * makes it sooner.
 */
export const startupEstimate = (
  pending: Iterable<readonly [shard: number, state: ShardState]>,
  maxConcurrency: number
): { readonly seconds: number; readonly identifying: number; readonly resuming: number } => {
  const buckets = new Map<number, number>()
  let identifying = 0
  let resuming = 0
  for (const [shard, state] of pending) {
    if (state === "ready") continue
    if (state === "resuming") {
      resuming++
      continue
    }
    identifying++
    const bucket = shard % Math.max(1, maxConcurrency)
    buckets.set(bucket, (buckets.get(bucket) ?? 0) + 1)
  }
  const rounds = Math.max(0, ...buckets.values())
  return { seconds: rounds * IDENTIFY_WINDOW_SECONDS, identifying, resuming }
}

const IDENTIFY_WINDOW_SECONDS = 5

/** The progress line's tail after "shards ready n/total". */
export const progressTail = (estimate: ReturnType<typeof startupEstimate>): string => {
  const parts: Array<string> = []
  if (estimate.identifying > 0) parts.push(`${estimate.identifying} to identify`)
  if (estimate.resuming > 0) parts.push(`${estimate.resuming} resuming`)
  return estimate.identifying > 0
    ? `, about ${estimate.seconds}s left (${parts.join(", ")})`
    : `, ${parts.join(", ")} (not paced by identify)`
}

export class ShardStatus extends Context.Service<ShardStatus, {
  readonly set: (shard: number, state: ShardState) => Effect.Effect<void>
  readonly snapshot: () => ReadonlyMap<number, ShardState>
  readonly readyCount: () => number
  /** Every shard run here is READY (true with none). */
  readonly allReady: () => boolean
  /**
   * Whether this process knows its shards: always with static ids; in an automatic cluster once
   * the Sharder had its first look (before that it owns none, and being "all ready" would mislead
   * /readyz into sending traffic decisions, e.g. a rolling update, on to the next pod).
   */
  readonly settled: () => boolean
  readonly markSettled: () => void
  /** A graceful shutdown began (for /readyz). */
  readonly markStopping: () => void
  readonly stopping: () => boolean
}>()("gateway/ShardStatus") {}

export const ShardStatusLive: Layer.Layer<ShardStatus, never, ShardPlan | ShardOwnership> = Layer.effect(
  ShardStatus,
  Effect.gen(function*() {
    const plan = yield* ShardPlan
    const ownership = yield* ShardOwnership
    const states = new Map<number, ShardState>()
    for (const id of ownership.owned()) states.set(id, "connecting")
    const everReady = new Set<number>()
    const startedAt = yield* Clock.currentTimeMillis
    let ready = 0
    let settled = !ownership.automatic
    let stopping = false
    yield* ownership.watch({
      acquired: (shard) => Effect.sync(() => void (states.has(shard) || states.set(shard, "connecting"))),
      releasing: (shard) =>
        Effect.sync(() => {
          if (states.get(shard) === "ready") ready--
          states.delete(shard)
          everReady.delete(shard)
        })
    })
    return ShardStatus.of({
      set: (shard, state) =>
        Effect.gen(function*() {
          // A shard that left may still report while its connection closes: it is not ours.
          if (!states.has(shard)) return
          const before = states.get(shard)
          if (before === state) return
          states.set(shard, state)
          if (before === "ready") ready--
          if (state !== "ready") return
          ready++
          if (everReady.has(shard)) return
          everReady.add(shard)
          // Startup progress: what the shards never ready yet still have to do.
          const total = states.size
          const elapsed = ((yield* Clock.currentTimeMillis) - startedAt) / 1000
          const pending = [...states].filter(([id]) => !everReady.has(id))
          const tail = pending.length === 0
            ? ` in ${elapsed.toFixed(1)}s`
            : progressTail(startupEstimate(pending, plan.maxConcurrency))
          yield* Effect.logInfo(`shards ready ${everReady.size}/${total}${tail}`)
        }),
      snapshot: () => states,
      readyCount: () => ready,
      allReady: () => settled && ready === states.size,
      settled: () => settled,
      markSettled: () => {
        settled = true
      },
      markStopping: () => {
        stopping = true
      },
      stopping: () => stopping
    })
  })
)
