// The command side of the daemon for the configured broker: router, forwarder and sources.
import { Effect, Layer } from "effect"
import type { AppConfig } from "../Config/AppConfig.ts"
import type { GatewayConfig } from "../Config/GatewayConfig.ts"
import { BrokerError } from "../Broker/Broker.ts"
import { RedisClient } from "../Redis/RedisClient.ts"
import type { ShardOwnership } from "../Cluster/ShardOwnership.ts"
import type { ShardPlan } from "../Cluster/ShardPlan.ts"
import type { ShardCommands } from "../Shard/ShardCommands.ts"
import { AmqpCommandLinkLive } from "./AmqpCommandLink.ts"
import { AmqpCommandSourceLive } from "./AmqpCommandSource.ts"
import { AmqpForwarderLive } from "./AmqpForwarder.ts"
import { BrokerCommandSource } from "./CommandSource.ts"
import type { Readiness } from "../Resilience/Readiness.ts"
import type { Supervision } from "../Resilience/Supervisor.ts"
import { CommandSources, CommandSourcesLive } from "./CommandSources.ts"
import { CommandStats } from "./CommandStats.ts"
import { CommandForwarder } from "./Forwarder.ts"
import { RedisCommandSourceLive } from "./RedisCommandSource.ts"
import { RedisForwarderLive } from "./RedisForwarder.ts"
import { CommandRouter, CommandRouterLive } from "./Router.ts"

// RedisClient.layer is the same constant the event broker uses, so both share one connection.
const redisClient = RedisClient.layer.pipe(
  Layer.catchTag("RedisClientError", (error) =>
    Layer.effect(RedisClient, Effect.fail(new BrokerError({ broker: "redis", reason: error.message, cause: error }))))
)

const brokerParts = (config: GatewayConfig): {
  readonly forwarder: Layer.Layer<CommandForwarder, BrokerError, AppConfig | ShardPlan | ShardOwnership | CommandStats>
  readonly source: Layer.Layer<BrokerCommandSource, BrokerError, AppConfig | ShardPlan | ShardOwnership | CommandRouter | Readiness | Supervision>
} => {
  switch (config.broker.type) {
    case "redis":
      return { forwarder: RedisForwarderLive.pipe(Layer.provide(redisClient)), source: RedisCommandSourceLive().pipe(Layer.provide(redisClient)) }
    case "amqp":
      return { forwarder: AmqpForwarderLive.pipe(Layer.provide(AmqpCommandLinkLive)), source: AmqpCommandSourceLive.pipe(Layer.provide(AmqpCommandLinkLive)) }
    case "stdout":
      return { forwarder: CommandForwarder.none, source: BrokerCommandSource.none }
  }
}

export const commandsLayer = (
  config: GatewayConfig
): Layer.Layer<CommandSources | CommandRouter | CommandStats, BrokerError, AppConfig | ShardPlan | ShardOwnership | ShardCommands | Readiness | Supervision> => {
  const { forwarder, source } = brokerParts(config)
  // The forwarder counts its refusals in the router's CommandStats (provided to both below).
  const router = CommandRouterLive.pipe(Layer.provide(forwarder), Layer.provideMerge(CommandStats.layer))
  return CommandSourcesLive.pipe(Layer.provide(source), Layer.provideMerge(router))
}
