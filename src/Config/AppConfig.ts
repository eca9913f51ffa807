// The loaded configuration as a service, so every layer reads it the same way and tests swap it.
import { Context, Layer } from "effect"
import type { GatewayConfig } from "./GatewayConfig.ts"

export class AppConfig extends Context.Service<AppConfig, GatewayConfig>()("gateway/AppConfig") {
  static readonly layer = (config: GatewayConfig) => Layer.succeed(AppConfig, config)
}
