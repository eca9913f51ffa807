// The daemon's run: its generation(s) of shards until a fatal close, a worker that cannot be kept
// running, or a stop signal; then the graceful shutdown of each (Generation.ts). One generation,
// unless the process is part of an automatic cluster with a Redis shard store: then the resharder
// (Resharder.ts) decides which generation(s) run, and changes the shard count without downtime.
import { Deferred, Duration, Effect } from "effect"
import { AppConfig } from "./Config/AppConfig.ts"
import { watchShardCountWith } from "./Cluster/ShardCountWatch.ts"
import { isAutomatic } from "./Cluster/ShardOwnership.ts"
import { ShardPlan } from "./Cluster/ShardPlan.ts"
import { LiveGeneration } from "./Observability/LiveGeneration.ts"
import { RedisClient } from "./Redis/RedisClient.ts"
import { Supervision } from "./Resilience/Supervisor.ts"
import { type GenerationSpec, type RunningGeneration, startGeneration } from "./Generation.ts"
import { startResharder } from "./Resharder.ts"

export const runGateway = (stop: Deferred.Deferred<string>, started: Deferred.Deferred<void>) =>
  Effect.gen(function*() {
    const config = yield* AppConfig
    const plan = yield* ShardPlan
    const supervision = yield* Supervision
    const live = yield* LiveGeneration
    const redis = yield* Effect.serviceOption(RedisClient)
    const fatal = yield* Deferred.make<never, unknown>()
    const running = new Map<number, RunningGeneration>()
    const every = Duration.millis(config.shards.checkIntervalMs)

    const launch = (spec: GenerationSpec) =>
      Effect.gen(function*() {
        const generation = yield* startGeneration(spec)
        running.set(spec.generation, generation)
        yield* Effect.forkScoped(Effect.catchCause(generation.failed, (cause) => Deferred.failCause(fatal, cause)))
        return generation
      })

    // Whatever runs when the stop comes (read then, not now).
    const stopAll = Effect.suspend(() =>
      Effect.forEach([...running.values()].reverse(), (g) => g.stop({ shutdownTimeoutMs: config.shutdownTimeoutMs, final: true }), {
        concurrency: "unbounded",
        discard: true
      }))

    /** Until a stop signal, a fatal error or a broken worker; then the graceful shutdown. */
    const runUntilStopped = Effect.gen(function*() {
      yield* Deferred.succeed(started, undefined)
      // A fatal error or a supervised worker that gave up fails the run here (after /healthz turned
      // 503): there is no graceful shutdown without it, so the scope closes and the process exits non-zero.
      const signal = yield* Effect.raceAllFirst([Deferred.await(fatal), Deferred.await(stop), Deferred.await(supervision.broken)])
      yield* Effect.logInfo(`${signal}: shutting down`)
      yield* stopAll
      yield* Effect.logInfo("stopped")
    })

    const reshardable = isAutomatic(config) && config.shardStore.type === "redis" && redis._tag === "Some"
    if (redis._tag === "None" || !reshardable) {
      const generation = yield* launch({ generation: 0, config, plan, publishing: true })
      live.set(generation.parts)
      yield* Effect.forkScoped(watchShardCountWith({ current: () => plan.shardCount, every }))
      return yield* runUntilStopped
    }

    yield* startResharder({ config, plan, redis: redis.value, running, launch, live })
    return yield* runUntilStopped
  })

