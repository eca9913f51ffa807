#!/usr/bin/env node
// Entry point: load the configuration, compose the layers for it and run under NodeRuntime.runMain.
// SIGTERM/SIGINT interrupt the main fiber; the interruption's handler is the graceful shutdown
// (runGateway delivers, checkpoints and closes), and runMain's teardown maps the end to the exit
// code: 0 stopped, 1 fatal Discord or broker error, 2 invalid configuration (Process/ExitCode.ts).
// The Node version check comes first: ESM evaluates this import before every other module.
import "./preflight.ts"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as NodeStdio from "@effect/platform-node/NodeStdio"
import { Deferred, Effect, Exit, Fiber, Layer } from "effect"
import { AppConfig } from "./Config/AppConfig.ts"
import type { GatewayConfig } from "./Config/GatewayConfig.ts"
import { loadConfig } from "./Config/load.ts"
import { DiscordRest } from "./Rest/DiscordRest.ts"
import { runGateway } from "./Gateway.ts"
import { brokerLayer } from "./Broker/layers.ts"
import { commandsLayer } from "./Commands/layers.ts"
import { OutboxLive } from "./Broker/Outbox.ts"
import { loggingLayer } from "./Observability/Logging.ts"
import { GatewayStatsLive } from "./Metrics/GatewayStats.ts"
import { HttpServerLive } from "./Observability/HttpServer.ts"
import { ReadinessLive } from "./Resilience/Readiness.ts"
import { Supervision } from "./Resilience/Supervisor.ts"
import { logStartup } from "./Observability/StartupLog.ts"
import { guardSignals } from "./Process/Signals.ts"
import { teardown } from "./Process/ExitCode.ts"
import { IdentifyLimiterLive, MemoryRateLimiterLive, RedisRateLimiterLive } from "./RateLimiter/IdentifyLimiter.ts"
import { RedisClient, type RedisClientError } from "./Redis/RedisClient.ts"
import { SessionBudgetLive } from "./RateLimiter/SessionBudget.ts"
import { NoShardLeases, RedisShardLeasesLive } from "./Cluster/ShardLeases.ts"
import { RedisMembershipLive } from "./Cluster/Membership.ts"
import { isAutomatic, ShardOwnershipLive } from "./Cluster/ShardOwnership.ts"
import { CheckpointerLive } from "./ShardStore/Checkpointer.ts"
import { shardStoreLayer } from "./ShardStore/layers.ts"
import { ShardPlan } from "./Cluster/ShardPlan.ts"
import { ShardCommandsLive } from "./Shard/ShardCommands.ts"
import { ShardSessionLive } from "./Shard/ShardSession.ts"
import { TransportLive } from "./Transport/Transport.ts"
import { ShardStatusLive } from "./Shard/ShardStatus.ts"
import { SharderLive } from "./Shard/Sharder.ts"

/** A layer over the shared Redis client (one connection per process, however many layers use it). */
const redisRequired = <A, E, R>(layer: Layer.Layer<A, E, R>): Layer.Layer<A, E | RedisClientError, Exclude<R, RedisClient> | AppConfig> =>
  layer.pipe(Layer.provide(RedisClient.layer))

const appLayer = (config: GatewayConfig) => {
  const base = Layer.merge(AppConfig.layer(config), NodeStdio.layer)
  const rest = DiscordRest.layer.pipe(Layer.provideMerge(base))
  const plan = ShardPlan.layer.pipe(Layer.provideMerge(rest))
  const store = CheckpointerLive.pipe(Layer.provideMerge(shardStoreLayer(config)))
  // With Redis, every process of the bot shares one identify budget and one lease per shard.
  const redis = config.redis.urls.length > 0
  const budget = SessionBudgetLive
  const limiter = IdentifyLimiterLive.pipe(
    Layer.provide(redis ? redisRequired(RedisRateLimiterLive) : MemoryRateLimiterLive),
    Layer.provideMerge(budget)
  )
  // The broker also provides the publish fence the leases raise on every claim (a no-op but for Redis).
  const broker = brokerLayer(config)
  const leases = redis ? redisRequired(RedisShardLeasesLive).pipe(Layer.provide(broker)) : NoShardLeases
  // Processes sharing Redis and no fixed shard ids form a cluster: they split the shards by themselves.
  const cluster = isAutomatic(config)
    ? Layer.mergeAll(ShardOwnershipLive, redisRequired(RedisMembershipLive)).pipe(Layer.provideMerge(leases))
    : Layer.merge(ShardOwnershipLive, leases)
  const core = Layer.mergeAll(limiter, store, cluster, OutboxLive, broker)
  // The shard queues and status follow the shards' comings and goings (ShardOwnership, in `cluster`).
  const session = ShardSessionLive.pipe(Layer.provideMerge(Layer.mergeAll(TransportLive, ShardCommandsLive, ShardStatusLive)), Layer.provideMerge(core))
  const shards = SharderLive.pipe(Layer.provideMerge(session), Layer.provideMerge(plan))
  const app = commandsLayer(config).pipe(Layer.provideMerge(shards))
  // Built last, so a taken port fails the start before any shard connects; one stats instance for all.
  const http = config.prometheus.address === undefined ? Layer.empty : HttpServerLive
  return http.pipe(Layer.provideMerge(app), Layer.provideMerge(GatewayStatsLive), Layer.provideMerge(ReadinessLive), Layer.provideMerge(Supervision.layer))
}

/**
 * The gateway until a fatal error, or until interrupted: then the interruption's handler asks it
 * to stop (naming the signal) and waits for its graceful shutdown, which the layers outlive.
 */
const daemon = (config: GatewayConfig) =>
  Effect.gen(function*() {
    const started = yield* Deferred.make<void>()
    const stop = yield* Deferred.make<string>()
    // Installed before the layers are built: a signal while they start (REST retries) exits at once.
    const signals = yield* guardSignals({ started, shutdownTimeoutMs: config.shutdownTimeoutMs })
    yield* logStartup(config)
    const run = Effect.gen(function*() {
      const gateway = yield* Effect.forkChild(Effect.scoped(runGateway(stop, started)))
      return yield* Fiber.join(gateway).pipe(
        Effect.onInterrupt(() =>
          Deferred.succeed(stop, signals.first() ?? "interrupted").pipe(
            Effect.andThen(Fiber.await(gateway)),
            // A failure while shutting down still exits 1 with its message.
            Effect.flatMap((exit) => Exit.isFailure(exit) ? Effect.failCause(exit.cause) : Effect.void)
          )
        )
      )
    })
    return yield* Effect.provide(run, appLayer(config))
  }).pipe(Effect.scoped, Effect.provide(loggingLayer(config.logLevel)))

const main = loadConfig({ argv: process.argv.slice(2), env: process.env, cwd: process.cwd() }).pipe(
  Effect.provide(loggingLayer("warn")),
  Effect.flatMap(daemon)
)

NodeRuntime.runMain(main, { disableErrorReporting: true, teardown })
