// Which shards this process runs right now. With static shard ids (`shards.ids`) that is the
// configured set for the whole run; in an automatic cluster shards come and go as processes join,
// leave and rebalance. Whoever keeps per-shard resources (command inboxes, queues, status) watches
// the changes instead of reading the plan.
import { Context, Effect, Layer } from "effect"
import { AppConfig } from "../Config/AppConfig.ts"
import { ShardPlan } from "./ShardPlan.ts"

export interface OwnershipListener {
  /** The shard is now run here (its lease is held; its connection is about to start). */
  readonly acquired: (shard: number) => Effect.Effect<void>
  /** The shard is about to leave this process (handoff, lost lease): stop taking work for it. */
  readonly releasing: (shard: number) => Effect.Effect<void>
}

export class ShardOwnership extends Context.Service<ShardOwnership, {
  /** True when processes share the shards by themselves (Redis configured, no `shards.ids`). */
  readonly automatic: boolean
  readonly owned: () => ReadonlySet<number>
  readonly owns: (shard: number) => boolean
  /** Hears every change from now on; read `owned()` for the shards already here. */
  readonly watch: (listener: OwnershipListener) => Effect.Effect<void>
  /** Called by the Sharder only. */
  readonly acquire: (shard: number) => Effect.Effect<void>
  /** Called by the Sharder only. */
  readonly release: (shard: number) => Effect.Effect<void>
}>()("gateway/ShardOwnership") {}

/** Automatic assignment needs somebody to coordinate with (Redis) and no fixed list of shards. */
export const isAutomatic = (config: { readonly redis: { readonly urls: ReadonlyArray<unknown> }; readonly shards: { readonly ids?: ReadonlyArray<number> | undefined } }) =>
  config.redis.urls.length > 0 && config.shards.ids === undefined

export const makeShardOwnership = (automatic: boolean, initial: ReadonlyArray<number>) =>
  Effect.sync(() => {
    const owned = new Set<number>(initial)
    const listeners: Array<OwnershipListener> = []
    return ShardOwnership.of({
      automatic,
      owned: () => owned,
      owns: (shard) => owned.has(shard),
      watch: (listener) => Effect.sync(() => void listeners.push(listener)),
      acquire: (shard) =>
        Effect.suspend(() => {
          if (owned.has(shard)) return Effect.void
          owned.add(shard)
          return Effect.forEach(listeners, (l) => l.acquired(shard), { discard: true })
        }),
      release: (shard) =>
        Effect.suspend(() => {
          if (!owned.has(shard)) return Effect.void
          return Effect.forEach(listeners, (l) => l.releasing(shard), { discard: true }).pipe(
            Effect.ensuring(Effect.sync(() => owned.delete(shard)))
          )
        })
    })
  })

export const ShardOwnershipLive = Layer.effect(
  ShardOwnership,
  Effect.gen(function*() {
    const config = yield* AppConfig
    const plan = yield* ShardPlan
    const automatic = isAutomatic(config)
    // Static: every configured shard is ours from the start (commands may queue before READY).
    return yield* makeShardOwnership(automatic, automatic ? [] : plan.shardIds)
  })
)
