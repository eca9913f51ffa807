// What an operator checks first when a start surprises them: which file the settings came from,
// and which intents IDENTIFY will ask for (by name, not as a bitfield to decode by hand).
import { Effect } from "effect"
import type { GatewayConfig } from "../Config/GatewayConfig.ts"
import { INTENTS, intentNamesOf } from "../Discord/Intents.ts"

export const configSourceLine = (config: Pick<GatewayConfig, "configFile">): string =>
  config.configFile === undefined
    ? "configuration: environment only (no config file read)"
    : `configuration: ${config.configFile} (environment variables override it)`

export const intentsLine = (bits: number): string => {
  const names: Array<string> = intentNamesOf(bits)
  const known = names.reduce((sum, name) => sum | INTENTS[name as keyof typeof INTENTS], 0)
  const unknown = bits & ~known
  if (unknown !== 0) names.push(`undocumented bits ${unknown}`)
  return `intents: ${names.length === 0 ? "none" : names.join(", ")} (${bits})`
}

export const logStartup = (config: GatewayConfig) =>
  Effect.logInfo(configSourceLine(config)).pipe(Effect.andThen(Effect.logInfo(intentsLine(config.intents))))
