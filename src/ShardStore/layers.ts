// The shard store chosen by [shard_store] type.
import { Effect, Layer } from "effect"
import type { AppConfig } from "../Config/AppConfig.ts"
import type { GatewayConfig } from "../Config/GatewayConfig.ts"
import type { Readiness } from "../Resilience/Readiness.ts"
import { RedisClient } from "../Redis/RedisClient.ts"
import { FileStoreLive } from "./FileStore.ts"
import { MemoryStoreLive } from "./MemoryStore.ts"
import { RedisStoreLive } from "./RedisStore.ts"
import { ShardStore, ShardStoreError } from "./ShardStore.ts"

export const shardStoreLayer = (config: GatewayConfig): Layer.Layer<ShardStore, ShardStoreError, AppConfig | Readiness> => {
  switch (config.shardStore.type) {
    case "memory":
      return MemoryStoreLive
    case "file":
      return FileStoreLive
    case "redis":
      return RedisStoreLive.pipe(
        Layer.provide(RedisClient.layer),
        Layer.catchTag("RedisClientError", (error) =>
          Layer.effect(ShardStore, Effect.fail(new ShardStoreError({ operation: "connect", cause: error.message })))
        )
      )
  }
}
