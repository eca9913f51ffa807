// One generation of shards (a shard count with a key prefix of its own, Cluster/Resharding.ts): its
// layers built at run time in a scope of their own, its workers (shards, event path, checkpoints,
// command intake) started, and its graceful stop: stop reading, deliver what was read, checkpoint,
// and only then close the sockets (with a resumable code) and release the leases. A process runs
// one generation, two while the cluster reshards.
//
// The layers of the process (HTTP server, stats, readiness, Redis connection, identify limiter,
// session budget, transport) are built once in daemon.ts. Layer.buildWithScope forks the process's
// memo map, so a generation reuses those (RedisClient.layer is one connection per process) and
// builds everything else afresh.
import { Cause, Deferred, Duration, Effect, Exit, Fiber, Layer, Option, Scope } from "effect"
import { AppConfig } from "./Config/AppConfig.ts"
import type { GatewayConfig } from "./Config/GatewayConfig.ts"
import { Broker } from "./Broker/Broker.ts"
import { brokerLayer } from "./Broker/layers.ts"
import { RecyclingEventBytesLive } from "./Broker/EventBytes.ts"
import { Outbox, OutboxLive } from "./Broker/Outbox.ts"
import { CommandSources } from "./Commands/CommandSources.ts"
import { commandsLayer } from "./Commands/layers.ts"
import { runEventPath } from "./EventPath.ts"
import { Membership, RedisMembershipLive } from "./Cluster/Membership.ts"
import { NoShardLeases, RedisShardLeasesLive, ShardLeases } from "./Cluster/ShardLeases.ts"
import { isAutomatic, ShardOwnershipLive } from "./Cluster/ShardOwnership.ts"
import { ShardPlan, type ShardPlanShape } from "./Cluster/ShardPlan.ts"
import type { GenerationParts } from "./Observability/LiveGeneration.ts"
import { RedisClient, type RedisClientError } from "./Redis/RedisClient.ts"
import { supervised } from "./Resilience/Supervisor.ts"
import { Checkpointer, CheckpointerLive } from "./ShardStore/Checkpointer.ts"
import { shardStoreLayer } from "./ShardStore/layers.ts"
import { makePublishGate, PublishGate, type PublishGateShape } from "./Shard/PublishGate.ts"
import { ShardCommandsLive } from "./Shard/ShardCommands.ts"
import { ShardSession, ShardSessionLive } from "./Shard/ShardSession.ts"
import { ShardStatus, ShardStatusLive } from "./Shard/ShardStatus.ts"
import { Sharder, SharderLive } from "./Shard/Sharder.ts"

/** A layer over the shared Redis client (one connection per process, however many layers use it). */
export const redisRequired = <A, E, R>(layer: Layer.Layer<A, E, R>): Layer.Layer<A, E | RedisClientError, Exclude<R, RedisClient> | AppConfig> =>
  layer.pipe(Layer.provide(RedisClient.layer))

/** Everything one generation runs on, for its config (count, key prefix) and plan. */
export const generationLayer = (config: GatewayConfig, plan: ShardPlanShape, gate: PublishGateShape) => {
  // Fresh layers (not the process's constants), so the generation's config and plan reach every part.
  const base = Layer.mergeAll(AppConfig.layer(config), Layer.succeed(ShardPlan, plan), Layer.succeed(PublishGate, gate))
  const store = CheckpointerLive.pipe(Layer.provideMerge(shardStoreLayer(config)))
  const redis = config.redis.urls.length > 0
  // The broker also provides the publish fence the leases raise on every claim (a no-op but for Redis).
  const broker = brokerLayer(config)
  const leases = redis ? redisRequired(RedisShardLeasesLive).pipe(Layer.provide(broker)) : NoShardLeases
  // Processes sharing Redis and no fixed shard ids form a cluster: they split the shards by themselves.
  const cluster = isAutomatic(config)
    ? Layer.mergeAll(ShardOwnershipLive, redisRequired(RedisMembershipLive)).pipe(Layer.provideMerge(leases))
    : Layer.merge(ShardOwnershipLive, leases)
  // The gateway's brokers are done with an event's bytes once they accepted it: reuse its memory.
  const core = Layer.mergeAll(store, cluster, OutboxLive, broker, RecyclingEventBytesLive)
  // The shard queues and status follow the shards' comings and goings (ShardOwnership, in `cluster`).
  const session = ShardSessionLive.pipe(Layer.provideMerge(Layer.mergeAll(ShardCommandsLive, ShardStatusLive)), Layer.provideMerge(core))
  const shards = SharderLive.pipe(Layer.provideMerge(session))
  return commandsLayer(config).pipe(Layer.provideMerge(shards), Layer.provideMerge(base))
}

export interface GenerationSpec {
  readonly generation: number
  readonly config: GatewayConfig
  readonly plan: ShardPlanShape
  /** Publishes from the start (false: the next generation of a resharding, until the switch). */
  readonly publishing: boolean
}

export interface RunningGeneration {
  readonly generation: number
  readonly shardCount: number
  /** Its keys' prefix. */
  readonly prefix: string
  readonly gate: PublishGateShape
  /**
   * Opens the gate and starts reading commands: a generation that does not publish yet must not
   * send commands either (Discord's answers would come on its shards and be skipped).
   */
  readonly openPublishing: Effect.Effect<void>
  readonly parts: GenerationParts
  /** This process's name in the generation's leases and member list. */
  readonly owner: string
  /** The generation's alive members, by name (empty without a member list or an answer). */
  readonly members: Effect.Effect<ReadonlyArray<string>>
  /** Shards READY here now. */
  readonly readyShards: () => ReadonlyArray<number>
  /** Fails when the generation cannot go on (fatal close, a worker that gave up); never succeeds. */
  readonly failed: Effect.Effect<never, unknown>
  /** The graceful stop; closes the generation's scope. */
  readonly stop: (options: { readonly shutdownTimeoutMs: number; readonly final: boolean }) => Effect.Effect<void>
}

/** Builds and starts a generation; its workers run in a scope of their own until `stop`. */
export const startGeneration = (spec: GenerationSpec) =>
  Effect.gen(function*() {
    const scope = yield* Scope.make()
    const gate = yield* makePublishGate(spec.publishing)
    const context = yield* Layer.buildWithScope(generationLayer(spec.config, spec.plan, gate), scope).pipe(
      Effect.onError(() => Scope.close(scope, Exit.void))
    )
    return yield* Effect.provideContext(runGeneration(spec, gate, scope), context)
  })

const runGeneration = (spec: GenerationSpec, gate: PublishGateShape, scope: Scope.Closeable) =>
  Effect.gen(function*() {
    const sharder = yield* Sharder
    const session = yield* ShardSession
    const checkpointer = yield* Checkpointer
    const outbox = yield* Outbox
    const status = yield* ShardStatus
    const broker = yield* Broker
    const commands = yield* CommandSources
    const leases = yield* ShardLeases
    const membership = yield* Effect.serviceOption(Membership)

    const failure = yield* Deferred.make<never, unknown>()
    const publisher = yield* Effect.forkIn(supervised(runEventPath, { name: "publisher" }), scope)
    const checkpoints = yield* Effect.forkIn(supervised(checkpointer.run, { name: "checkpointer" }), scope)
    const shards = yield* Effect.forkIn(
      sharder.run.pipe(Effect.onExit((exit) => Exit.isFailure(exit) && !Cause.hasInterruptsOnly(exit.cause) ? Deferred.failCause(failure, exit.cause) : Effect.void)),
      scope
    )
    // Commands wait in their shard's queue until it is READY, so reading them can start now, if
    // this generation publishes.
    if (gate.isOpen()) yield* commands.start

    const stop = (options: { readonly shutdownTimeoutMs: number; readonly final: boolean }) =>
      Effect.gen(function*() {
        if (options.final) status.markStopping()
        // A cluster member leaves first: the others take its shards as soon as their leases are released.
        yield* sharder.leave
        // No new commands; those already taken are still sent while the sockets stay open below.
        yield* commands.stop
        session.stopReading()
        // End the event path: it delivers what the outbox holds, then completes. Leave a little of
        // the budget for the checkpoint write and the socket closes.
        yield* outbox.end
        const drainBudget = Duration.millis(Math.max(0, options.shutdownTimeoutMs - 1_500))
        const drained = yield* Fiber.join(publisher).pipe(Effect.timeoutOption(drainBudget))
        if (drained._tag === "None") {
          yield* Effect.logWarning(
            `${outbox.size()} event(s) not delivered before the shutdown timeout; they will be replayed on the next start`
          )
        }
        yield* Fiber.interrupt(checkpoints)
        yield* checkpointer.flush
        yield* Fiber.interrupt(shards)
        yield* Fiber.interrupt(publisher)
        yield* Scope.close(scope, Exit.void)
      })

    const running: RunningGeneration = {
      generation: spec.generation,
      shardCount: spec.plan.shardCount,
      prefix: spec.config.shardStore.prefix,
      gate,
      openPublishing: Effect.suspend(() => {
        gate.open()
        return commands.start
      }),
      parts: { generation: spec.generation, status, outbox, broker },
      owner: leases.owner,
      members: Option.match(membership, {
        onNone: () => Effect.succeed<ReadonlyArray<string>>([]),
        onSome: (m) => Effect.map(m.members, (alive) => alive.map((member) => member.id))
      }),
      readyShards: () => [...status.snapshot()].flatMap(([shard, state]) => (state === "ready" ? [shard] : [])),
      failed: Deferred.await(failure),
      stop
    }
    return running
  })
