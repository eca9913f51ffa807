// The automatic cluster's resharding loop (Cluster/Resharding.ts is the state machine it drives):
// every second it reads the cluster-wide sharding state, runs the generations it names, reports the
// next generation's READY shards and this process's switch, and moves the state on when the cluster
// is ready for it. Triggers: a higher recommendation from /gateway/bot (read every
// shards.check_interval, when shards.count is unset), close code 4011 on a shard (ReshardRequests),
// and SIGUSR2 (the operator: "read the recommendation now and reshard if it is higher").
import { Duration, Effect, Metric, Queue, Schedule } from "effect"
import type { GatewayConfig } from "./Config/GatewayConfig.ts"
import { readRecommendation, watchShardCountWith } from "./Cluster/ShardCountWatch.ts"
import type { ShardPlanShape } from "./Cluster/ShardPlan.ts"
import { ReshardRequests } from "./Cluster/ReshardRequests.ts"
import {
  advance,
  begin,
  generationPrefix,
  generationsToRun,
  initialSharding,
  publishes,
  requiredCount,
  type ReshardReason,
  type ShardingState,
  stateCode
} from "./Cluster/Resharding.ts"
import { makeReshardingStore, type StoredSharding } from "./Cluster/ReshardingStore.ts"
import type { LiveGeneration } from "./Observability/LiveGeneration.ts"
import { SessionBudget } from "./RateLimiter/SessionBudget.ts"
import type { RedisConnection } from "./Redis/RedisClient.ts"
import type { GenerationSpec, RunningGeneration } from "./Generation.ts"

/** How often a process reads the cluster's sharding state while it runs. */
export const RESHARD_LOOK_EVERY_MS = 1_000

const reshardGeneration = Metric.gauge("gateway_reshard_generation", {
  description: "The generation of shards the cluster publishes (it increases with every resharding)"
})
const reshardState = Metric.gauge("gateway_reshard_state", {
  description: "Resharding: 0 none under way, 1 the next generation is starting (not publishing), 2 switching to it"
})

interface Request {
  readonly reason: ReshardReason
  readonly detail: string
  /** The recommendation already read, if any. */
  readonly recommended?: number | undefined
  /** 4011: the shard count Discord refused. A request from an older generation is stale once the cluster runs more. */
  readonly refusedCount?: number | undefined
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i)

/** The config and plan of generation `generation` with `shardCount` shards. */
export const generationSpec = (config: GatewayConfig, plan: ShardPlanShape, generation: number, shardCount: number, publishing: boolean): GenerationSpec => ({
  generation,
  publishing,
  config: {
    ...config,
    shards: { ...config.shards, count: shardCount },
    shardStore: { ...config.shardStore, prefix: generationPrefix(config.shardStore.prefix, generation) }
  },
  plan: { ...plan, shardCount, shardIds: range(shardCount), generation }
})

export interface ResharderContext<E, R> {
  readonly config: GatewayConfig
  readonly plan: ShardPlanShape
  readonly redis: RedisConnection
  /** The generations this process runs now, by number (the resharder adds and removes). */
  readonly running: Map<number, RunningGeneration>
  readonly launch: (spec: GenerationSpec) => Effect.Effect<RunningGeneration, E, R>
  readonly live: typeof LiveGeneration.Service
}

/** Starts the generation(s) the cluster runs and the resharding loops, in the caller's scope. */
export const startResharder = <E extends { readonly message: string }, R>({ config, plan, redis, running, launch, live }: ResharderContext<E, R>) =>
  Effect.gen(function*() {
    const every = Duration.millis(config.shards.checkIntervalMs)
    const store = makeReshardingStore(redis, config.shardStore.prefix)
    const budget = yield* SessionBudget
    let known: StoredSharding = yield* store.readOrInit(initialSharding(plan.shardCount))
    if (known.state.shardCount !== plan.shardCount) {
      yield* Effect.logInfo(
        `the cluster runs ${known.state.shardCount} shards (generation ${known.state.generation}); running that rather than ${plan.shardCount}`
      )
    }
    const requests = yield* Queue.unbounded<Request>()
    const requestsService = ReshardRequests.of({
      request: (reason, detail, refusedCount) => Effect.asVoid(Queue.offer(requests, { reason, detail, refusedCount }))
    })
    const markedReady = new Map<number, Set<number>>()
    let beganAt: number | undefined

    const reconcile = (state: ShardingState) =>
      Effect.gen(function*() {
        for (const { generation, shardCount } of generationsToRun(state)) {
          if (running.has(generation)) continue
          const publishing = publishes(state, generation)
          if (generation !== state.generation) {
            beganAt ??= Date.now()
            yield* Effect.logInfo(
              `resharding: starting generation ${generation} with ${shardCount} shards` + (publishing ? "" : " (not publishing until every shard is READY)")
            )
          }
          yield* launch(generationSpec(config, plan, generation, shardCount, publishing)).pipe(Effect.provideService(ReshardRequests, requestsService))
        }
        for (const [generation, g] of running) {
          if (publishes(state, generation) && !g.gate.isOpen()) {
            yield* g.openPublishing
            yield* Effect.logInfo(`resharding: generation ${generation} publishes from now on`)
          }
        }
        const next = state.next === undefined ? undefined : running.get(state.next.generation)
        // The current generation goes on until the switch is complete: what it publishes meanwhile is
        // published by the next one too.
        if (next !== undefined && next.gate.isOpen()) {
          running.get(state.generation)?.gate.overlapping()
          // Another process may still publish the old generation before it sees the switch: until the
          // switch completes, what the new one publishes here may be a duplicate too. (Not after a
          // 4011: the old generation delivers nothing then.)
          if (state.next?.open !== true) next.gate.overlapping()
        }
        if (state.next === undefined) running.get(state.generation)?.gate.alone()
        const current = running.get(state.generation)
        if (current !== undefined) live.set(current.parts)
        for (const [generation, g] of running) {
          if (generation >= state.generation) continue
          running.delete(generation)
          const tookMs = beganAt === undefined ? undefined : Date.now() - beganAt
          beganAt = undefined
          yield* Effect.logInfo(
            `resharding: switched to generation ${state.generation} (${state.shardCount} shards)` +
              (tookMs === undefined ? "" : ` ${(tookMs / 1000).toFixed(1)}s after it began here`) + `; closing generation ${generation}`
          )
          yield* g.stop({ shutdownTimeoutMs: config.shutdownTimeoutMs, final: false }).pipe(
            Effect.andThen(Effect.logInfo(`resharding: generation ${generation} closed`)),
            Effect.forkScoped
          )
        }
        yield* Metric.update(reshardGeneration, state.generation)
        yield* Metric.update(reshardState, stateCode(state))
      })

    /** Moves the stored state from `known` to `next`; false when another process moved it first. */
    const move = (next: ShardingState) =>
      Effect.gen(function*() {
        const moved = yield* store.compareAndSet(known.text, next)
        if (moved) known = { state: next, text: JSON.stringify(next) }
        return moved
      })

    const handle = (request: Request) =>
      Effect.gen(function*() {
        const state = known.state
        // A late 4011 from a generation the cluster has already left (or is leaving) asks for nothing.
        if (request.refusedCount !== undefined && Math.max(state.shardCount, state.next?.open === true ? state.next.shardCount : 0) > request.refusedCount) {
          return yield* Effect.logDebug(`resharding (${request.detail}): the cluster runs more than ${request.refusedCount} shards already`)
        }
        const recommended = request.recommended ?? (yield* readRecommendation)
        if (request.reason !== "required") {
          if (recommended === undefined) return yield* Effect.logWarning(`resharding (${request.detail}): could not read Discord's recommended shard count; not resharding`)
          if (recommended <= state.shardCount) {
            return yield* Effect.logInfo(`resharding (${request.detail}): Discord recommends ${recommended} shards and the cluster runs ${state.shardCount}; nothing to do`)
          }
        }
        const count = request.reason === "required" ? requiredCount(state.shardCount, recommended) : recommended!
        const result = begin(state, count, request.reason)
        if (result._tag === "Refused") return yield* Effect.logDebug(`resharding (${request.detail}) not started: ${result.why}`)
        // Every shard of the new generation identifies: the day's session starts must cover them all.
        if (state.next === undefined && budget.remaining() < count) {
          return yield* Effect.logError(
            `resharding to ${count} shards refused (${request.detail}): Discord's daily session start budget has ${budget.remaining()} ` +
              `left, fewer than the ${count} identifies of the new generation; it is tried again at the next trigger after the budget resets`
          )
        }
        if (!(yield* move(result.state))) return yield* Effect.logDebug("resharding: the cluster state changed meanwhile; looking again")
        yield* Effect.logWarning(
          result.state.next!.generation === state.next?.generation
            ? `resharding: generation ${state.generation} cannot deliver any more (${request.detail}); generation ${result.state.next!.generation} publishes at once`
            : `resharding from ${state.shardCount} to ${count} shards (${request.detail}): generation ${result.state.next!.generation} starts`
        )
        yield* reconcile(result.state)
      })

    const look = Effect.gen(function*() {
      const stored = yield* store.read
      if (stored !== undefined) known = stored
      yield* reconcile(known.state)
      for (let request = yield* Queue.poll(requests); request._tag === "Some"; request = yield* Queue.poll(requests)) {
        yield* handle(request.value)
      }
      const state = known.state
      if (state.next === undefined) return
      const next = running.get(state.next.generation)
      if (next === undefined) return
      const marked = markedReady.get(state.next.generation) ?? new Set<number>()
      markedReady.set(state.next.generation, marked)
      const fresh = next.readyShards().filter((shard) => !marked.has(shard))
      if (fresh.length > 0) {
        yield* store.markReady(next.prefix, fresh)
        for (const shard of fresh) marked.add(shard)
      }
      // Acknowledged under every name this process has in the member lists, once it publishes the next generation.
      if (next.gate.isOpen()) yield* store.ack(next.prefix, [...running.values()].map((g) => g.owner))
      const members = new Set<string>()
      for (const g of running.values()) for (const id of yield* g.members) members.add(id)
      const moved = advance(state, {
        readyShards: yield* store.readyCount(next.prefix),
        members: [...members],
        acked: yield* store.acked(next.prefix)
      })
      if (moved === undefined || !(yield* move(moved))) return
      yield* Effect.logInfo(
        moved.next !== undefined
          ? `resharding: every shard of generation ${moved.next.generation} was READY; switching`
          : `resharding: every process publishes generation ${moved.generation}; the old generation closes`
      )
      yield* reconcile(moved)
    }).pipe(Effect.catch((error) => Effect.logWarning(`resharding: ${error.message}; looking again in a second`)))

    yield* reconcile(known.state)
    yield* Effect.forkScoped(Effect.repeat(look, Schedule.spaced(Duration.millis(RESHARD_LOOK_EVERY_MS))))
    // A higher recommendation reshards only when the operator left the count to Discord.
    const automaticCount = config.shards.count === undefined
    yield* Effect.forkScoped(watchShardCountWith({
      current: () => known.state.shardCount,
      every,
      onHigher: automaticCount
        ? (recommended) => Effect.asVoid(Queue.offer(requests, { reason: "recommended", detail: `Discord recommends ${recommended} shards`, recommended }))
        : undefined
    }))
    // SIGUSR2: the operator asks for the check now (a signal is authenticated by the OS).
    const context = yield* Effect.context<never>()
    yield* Effect.acquireRelease(
      Effect.sync(() => {
        const onSignal = () =>
          void Effect.runForkWith(context)(Queue.offer(requests, { reason: "operator", detail: "SIGUSR2" }))
        process.on("SIGUSR2", onSignal)
        return onSignal
      }),
      (onSignal) => Effect.sync(() => void process.off("SIGUSR2", onSignal))
    )
  })
