// Which shards are live now, for the startup progress line, /readyz and metrics.
import { Clock, Context, Effect, Layer } from "effect"
import { ShardPlan } from "./ShardPlan.ts"

export type ShardState = "connecting" | "identifying" | "resuming" | "ready" | "reconnecting"

export class ShardStatus extends Context.Service<ShardStatus, {
  readonly set: (shard: number, state: ShardState) => Effect.Effect<void>
  readonly snapshot: () => ReadonlyMap<number, ShardState>
  readonly readyCount: () => number
  readonly allReady: () => boolean
  /** A graceful shutdown began (for /readyz). */
  readonly markStopping: () => void
  readonly stopping: () => boolean
}>()("gateway/ShardStatus") {}

export const ShardStatusLive = Layer.effect(
  ShardStatus,
  Effect.gen(function*() {
    const plan = yield* ShardPlan
    const states = new Map<number, ShardState>()
    for (const id of plan.shardIds) states.set(id, "connecting")
    const everReady = new Set<number>()
    const startedAt = yield* Clock.currentTimeMillis
    let ready = 0
    let stopping = false
    return ShardStatus.of({
      set: (shard, state) =>
        Effect.gen(function*() {
          const before = states.get(shard)
          if (before === state) return
          states.set(shard, state)
          if (before === "ready") ready--
          if (state !== "ready") return
          ready++
          if (everReady.has(shard)) return
          everReady.add(shard)
          // Startup progress: the rest identify max_concurrency at a time, one round per 5 s.
          const total = plan.shardIds.length
          const elapsed = ((yield* Clock.currentTimeMillis) - startedAt) / 1000
          const left = total - everReady.size
          const eta = left === 0
            ? ` in ${elapsed.toFixed(1)}s`
            : `, about ${Math.ceil(left / plan.maxConcurrency) * 5}s left`
          yield* Effect.logInfo(`shards ready ${everReady.size}/${total}${eta}`)
        }),
      snapshot: () => states,
      readyCount: () => ready,
      allReady: () => ready === plan.shardIds.length,
      markStopping: () => {
        stopping = true
      },
      stopping: () => stopping
    })
  })
)
