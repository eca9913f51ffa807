// The broker chosen by [broker] type, with its publish fence (a no-op where the broker cannot
// check lease epochs itself).
import { Effect, Layer } from "effect"
import type { GatewayConfig } from "../Config/GatewayConfig.ts"
import type { AppConfig } from "../Config/AppConfig.ts"
import { RedisClient } from "../Redis/RedisClient.ts"
import { AmqpBrokerLive } from "./AmqpBroker.ts"
import { Broker, BrokerError } from "./Broker.ts"
import { NoPublishFence, type PublishFence } from "./Fence.ts"
import { RedisBrokerLive } from "./RedisBroker.ts"
import { StdoutBrokerLive } from "./StdoutBroker.ts"

// RedisClient.layer is one constant, so a Redis shard store or limiter built in the same
// program shares this connection instead of opening another.
const RedisBrokerFromConfig: Layer.Layer<Broker | PublishFence, BrokerError, AppConfig> = RedisBrokerLive.pipe(
  Layer.provide(RedisClient.layer),
  Layer.catchTag("RedisClientError", (error) =>
    Layer.effectContext<Broker | PublishFence, BrokerError, never>(
      Effect.fail(new BrokerError({ broker: "redis", reason: error.message, cause: error }))
    ))
)

/**
 * Broker and PublishFence from one layer: the Redis fence must cover the streams its broker has
 * published to. Build it once per process (hold one reference when several layers need it).
 */
export const brokerLayer = (config: GatewayConfig): Layer.Layer<Broker | PublishFence, BrokerError, AppConfig> => {
  switch (config.broker.type) {
    case "stdout":
      return Layer.merge(StdoutBrokerLive, NoPublishFence)
    case "redis":
      return RedisBrokerFromConfig
    case "amqp":
      return Layer.merge(AmqpBrokerLive, NoPublishFence)
  }
}
