// Loads the configuration: flags, then gateway.toml, then environment variables over it.
import { Effect, Result } from "effect"
import { parseArgs } from "./args.ts"
import type { ConfigError, HelpRequested } from "./ConfigError.ts"
import type { Env } from "./env.ts"
import type { GatewayConfig } from "./GatewayConfig.ts"
import { readConfigFile } from "./toml.ts"
import { validate } from "./validate.ts"

export interface LoadInput {
  /** User arguments only: process.argv.slice(2). */
  readonly argv: ReadonlyArray<string>
  readonly env: Env
  readonly cwd: string
}

/**
 * The validated configuration. Fails with ConfigError (one-line `message`) on any bad setting,
 * or with HelpRequested when --help/-h was given: print its `usage` and exit 0.
 * Suspicious but accepted settings (e.g. an unknown event name) are logged as warnings.
 */
export const loadConfig = (input: LoadInput): Effect.Effect<GatewayConfig, ConfigError | HelpRequested> =>
  Effect.gen(function*() {
    const args = yield* Effect.fromResult(parseArgs(input.argv))
    const file = yield* readConfigFile(args.configPath, input.cwd)
    const validated = validate({ file: file.data, env: input.env, args, cwd: input.cwd })
    if (Result.isFailure(validated)) return yield* Effect.fail(validated.failure)
    for (const warning of validated.success.warnings) yield* Effect.logWarning(warning)
    return { ...validated.success.config, configFile: file.path }
  })
