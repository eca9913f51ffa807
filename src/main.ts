#!/usr/bin/env node
// Entry point: load the configuration, compose the layers for it, run, and map the outcome to an
// exit code (0 stopped cleanly, 1 fatal Discord or broker error, 2 invalid configuration).
import "./preflight.ts"
import { Cause, Deferred, Effect, Exit, Layer } from "effect"
import { AppConfig } from "./Config/AppConfig.ts"
import type { GatewayConfig } from "./Config/GatewayConfig.ts"
import { loadConfig } from "./Config/load.ts"
import { DiscordRest } from "./Discord/Rest.ts"
import { runGateway } from "./Gateway.ts"
import { brokerLayer } from "./Broker/layers.ts"
import { commandsLayer } from "./Commands/layers.ts"
import { OutboxLive } from "./Broker/Outbox.ts"
import { loggingLayer } from "./Observability/Logging.ts"
import { GatewayStatsLive } from "./Observability/GatewayStats.ts"
import { HttpServerLive } from "./Observability/HttpServer.ts"
import { ReadinessLive } from "./Observability/Readiness.ts"
import { Supervision } from "./Resilience/Supervisor.ts"
import { IdentifyLimiterLive, MemoryRateLimiterLive, RedisRateLimiterLive } from "./RateLimiter/IdentifyLimiter.ts"
import { RedisClient, type RedisClientError } from "./Redis/RedisClient.ts"
import { SessionBudgetLive } from "./Shard/SessionBudget.ts"
import { NoShardLeases, RedisShardLeasesLive } from "./Cluster/ShardLeases.ts"
import { CheckpointerLive } from "./ShardStore/Checkpointer.ts"
import { shardStoreLayer } from "./ShardStore/layers.ts"
import { ShardPlan } from "./Shard/ShardPlan.ts"
import { ShardCommandsLive } from "./Shard/ShardCommands.ts"
import { ShardSessionLive } from "./Shard/ShardSession.ts"
import { TransportLive } from "./Transport/Transport.ts"
import { ShardStatusLive } from "./Shard/ShardStatus.ts"
import { SharderLive } from "./Shard/Sharder.ts"

/** A layer over the shared Redis client (one connection per process, however many layers use it). */
const redisRequired = <A, E, R>(layer: Layer.Layer<A, E, R>): Layer.Layer<A, E | RedisClientError, Exclude<R, RedisClient> | AppConfig> =>
  layer.pipe(Layer.provide(RedisClient.layer))

const appLayer = (config: GatewayConfig) => {
  const base = AppConfig.layer(config)
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
  const leases = redis ? redisRequired(RedisShardLeasesLive) : NoShardLeases
  const core = Layer.mergeAll(limiter, store, leases, OutboxLive, ShardStatusLive, brokerLayer(config))
  const session = ShardSessionLive.pipe(Layer.provideMerge(core), Layer.provideMerge(Layer.mergeAll(TransportLive, ShardCommandsLive)))
  const shards = SharderLive.pipe(Layer.provideMerge(session), Layer.provideMerge(plan))
  const app = commandsLayer(config).pipe(Layer.provideMerge(shards))
  // Built last, so a taken port fails the start before any shard connects; one stats instance for all.
  const http = config.prometheus.address === undefined ? Layer.empty : HttpServerLive
  return http.pipe(Layer.provideMerge(app), Layer.provideMerge(GatewayStatsLive), Layer.provideMerge(ReadinessLive), Layer.provideMerge(Supervision.layer))
}

const fail = (line: string, code: number): never => {
  process.stderr.write(`spectacles-gateway: ${line}\n`)
  process.exit(code)
}

const main = async () => {
  const loaded = await Effect.runPromiseExit(
    loadConfig({ argv: process.argv.slice(2), env: process.env, cwd: process.cwd() }).pipe(
      Effect.provide(loggingLayer("warn"))
    )
  )
  if (Exit.isFailure(loaded)) {
    const error = Cause.findErrorOption(loaded.cause)
    if (error._tag === "Some" && error.value._tag === "HelpRequested") {
      process.stdout.write(error.value.usage)
      process.exit(0)
    }
    return fail(error._tag === "Some" ? error.value.message : Cause.pretty(loaded.cause), 2)
  }
  const config = loaded.value
  const stop = Deferred.makeUnsafe<string>()
  const started = Deferred.makeUnsafe<void>()
  let signals = 0
  const onSignal = (name: string) => {
    // Still starting (e.g. retrying /gateway/bot): nothing was read, so nothing to deliver.
    if (!Deferred.isDoneUnsafe(started)) {
      process.stderr.write(`spectacles-gateway: ${name} before the shards started; exiting\n`)
      process.exit(0)
    }
    signals++
    if (signals > 1) fail(`second ${name}: exiting without a graceful shutdown`, 1)
    Deferred.doneUnsafe(stop, Effect.succeed(name))
    // The backstop: whatever happens, the process is gone shortly after the configured budget.
    setTimeout(() => fail(`shutdown took longer than ${config.shutdownTimeoutMs} ms; exiting`, 1), config.shutdownTimeoutMs + 2_000).unref()
  }
  process.on("SIGTERM", () => onSignal("SIGTERM"))
  process.on("SIGINT", () => onSignal("SIGINT"))

  const exit = await Effect.runPromiseExit(
    runGateway(stop, started).pipe(
      Effect.scoped,
      Effect.provide(appLayer(config)),
      Effect.provide(loggingLayer(config.logLevel))
    )
  )
  if (Exit.isSuccess(exit)) process.exit(0)
  const error = Cause.findErrorOption(exit.cause)
  fail(error._tag === "Some" ? `fatal: ${error.value.message}` : `crashed: ${Cause.pretty(exit.cause)}`, 1)
}

void main()
