// The daemon: load the configuration, compose the layers for it and run under NodeRuntime.runMain.
// SIGTERM/SIGINT interrupt the main fiber; the interruption's handler is the graceful shutdown
// (runGateway delivers, checkpoints and closes), and runMain's teardown maps the end to the exit
// code: 0 stopped, 1 fatal Discord or broker error, 2 invalid configuration (Process/ExitCode.ts).
// main.ts loads this module once the Node version is checked and V8 is tuned.
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as NodeStdio from "@effect/platform-node/NodeStdio"
import { Deferred, Effect, Exit, Fiber, Layer } from "effect"
import { AppConfig } from "./Config/AppConfig.ts"
import type { GatewayConfig } from "./Config/GatewayConfig.ts"
import { loadConfig } from "./Config/load.ts"
import { DiscordRest } from "./Rest/DiscordRest.ts"
import { loggingLayer } from "./Observability/Logging.ts"
import { GatewayStatsLive } from "./Metrics/GatewayStats.ts"
import { HttpServerLive } from "./Observability/HttpServer.ts"
import { ReadinessLive } from "./Resilience/Readiness.ts"
import { Supervision } from "./Resilience/Supervisor.ts"
import { logStartup } from "./Observability/StartupLog.ts"
import { guardSignals } from "./Process/Signals.ts"
import { teardown } from "./Process/ExitCode.ts"
import { IdentifyLimiterLive, MemoryRateLimiterLive, RedisRateLimiterLive } from "./RateLimiter/IdentifyLimiter.ts"
import { RedisClient } from "./Redis/RedisClient.ts"
import { runGateway } from "./Gateway.ts"
import { redisRequired } from "./Generation.ts"
import { LiveGeneration } from "./Observability/LiveGeneration.ts"
import { CommandStats } from "./Commands/CommandStats.ts"
import { SessionBudgetLive } from "./RateLimiter/SessionBudget.ts"
import { ShardPlan } from "./Cluster/ShardPlan.ts"
import { TransportLive } from "./Transport/Transport.ts"

/**
 * The layers of the process. The shards and everything per shard count (plan, store, leases, broker,
 * commands) are built at run time per generation (Generation.ts), as the cluster may reshard.
 */
const processLayer = (config: GatewayConfig) => {
  const base = Layer.merge(AppConfig.layer(config), NodeStdio.layer)
  const rest = DiscordRest.layer.pipe(Layer.provideMerge(base))
  const plan = ShardPlan.layer.pipe(Layer.provideMerge(rest))
  // With Redis, every process of the bot shares one identify budget (Discord's buckets are per
  // shard id, whatever the count, so both generations of a resharding share it too).
  const redis = config.redis.urls.length > 0
  const limiter = IdentifyLimiterLive.pipe(
    Layer.provide(redis ? redisRequired(RedisRateLimiterLive) : MemoryRateLimiterLive),
    Layer.provideMerge(SessionBudgetLive)
  )
  // The one Redis connection of the process, kept in the context for the resharding loop.
  const shared = Layer.mergeAll(limiter, TransportLive, LiveGeneration.layer, CommandStats.layer, redis ? RedisClient.layer : Layer.empty).pipe(
    Layer.provideMerge(plan)
  )
  // Built before any shard connects, so a taken port fails the start; one stats instance for all.
  const http = config.prometheus.address === undefined ? Layer.empty : HttpServerLive
  return http.pipe(Layer.provideMerge(shared), Layer.provideMerge(GatewayStatsLive), Layer.provideMerge(ReadinessLive), Layer.provideMerge(Supervision.layer))
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
    return yield* Effect.provide(run, processLayer(config))
  }).pipe(Effect.scoped, Effect.provide(loggingLayer(config.logLevel)))

const main = loadConfig({ argv: process.argv.slice(2), env: process.env, cwd: process.cwd() }).pipe(
  Effect.provide(loggingLayer("warn")),
  Effect.flatMap(daemon)
)

NodeRuntime.runMain(main, { disableErrorReporting: true, teardown })
