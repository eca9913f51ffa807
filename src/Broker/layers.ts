// The broker chosen by [broker] type.
import { Effect, Layer } from "effect"
import type { GatewayConfig } from "../Config/GatewayConfig.ts"
import type { AppConfig } from "../Config/AppConfig.ts"
import { RedisClient } from "../Redis/RedisClient.ts"
import { AmqpBrokerLive } from "./AmqpBroker.ts"
import { Broker, BrokerError } from "./Broker.ts"
import { RedisBrokerLive } from "./RedisBroker.ts"
import { StdoutBrokerLive } from "./StdoutBroker.ts"

// RedisClient.layer is one constant, so a Redis shard store or limiter built in the same
// program shares this connection instead of opening another.
const RedisBrokerFromConfig: Layer.Layer<Broker, BrokerError, AppConfig> = RedisBrokerLive.pipe(
  Layer.provide(RedisClient.layer),
  Layer.catchTag("RedisClientError", (error) =>
    Layer.effect(Broker, Effect.fail(new BrokerError({ broker: "redis", reason: error.message, cause: error }))))
)

export const brokerLayer = (config: GatewayConfig): Layer.Layer<Broker, BrokerError, AppConfig> => {
  switch (config.broker.type) {
    case "stdout":
      return StdoutBrokerLive
    case "redis":
      return RedisBrokerFromConfig
    case "amqp":
      return AmqpBrokerLive
  }
}
