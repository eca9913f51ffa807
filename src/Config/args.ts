// Command-line flags. `argv` is the user's arguments only (process.argv.slice(2)).
import { Result } from "effect"
import type { LogLevel } from "./GatewayConfig.ts"
import { ConfigError, configError, HelpRequested } from "./ConfigError.ts"
import { didYouMean } from "./suggest.ts"
import { usage } from "./usage.ts"

export interface Args {
  readonly configPath: string | undefined
  readonly logLevel: LogLevel | undefined
}

export const LOG_LEVELS: ReadonlyArray<LogLevel> = ["trace", "debug", "info", "warn", "error"]

const FLAGS = ["--config", "--log-level", "--help", "-h"]

/**
 * The original Go gateway's flags (Go's flag package takes one or two dashes), read as ours so
 * its command lines keep working: `-config FILE`, `-loglevel LEVEL`, `-help`.
 */
const GO_FLAGS: Readonly<Record<string, string>> = {
  "-config": "--config",
  "-loglevel": "--log-level",
  "--loglevel": "--log-level",
  "-log-level": "--log-level",
  "-help": "--help",
  "-h": "--help"
}

const canonicalFlag = (flag: string): string => (Object.hasOwn(GO_FLAGS, flag) ? GO_FLAGS[flag]! : flag)

/** The Go gateway's extra level: it silenced every log line; the nearest here logs errors only. */
const GO_SUPPRESS = "suppress"

export const parseLogLevel = (key: string, raw: string): Result.Result<LogLevel, ConfigError> => {
  const level = raw.trim().toLowerCase()
  return (LOG_LEVELS as ReadonlyArray<string>).includes(level)
    ? Result.succeed(level as LogLevel)
    : Result.fail(configError(key, `expected one of ${LOG_LEVELS.join(", ")}, got "${raw}"${didYouMean(level, LOG_LEVELS)}`))
}

export const parseArgs = (argv: ReadonlyArray<string>): Result.Result<Args, ConfigError | HelpRequested> => {
  let configPath: string | undefined
  let logLevel: LogLevel | undefined
  // --help wins over any other mistake on the line: the user is asking how to fix it.
  if (argv.some((arg) => canonicalFlag(arg) === "--help")) return Result.fail(new HelpRequested({ usage }))

  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    const eq = arg.startsWith("-") ? arg.indexOf("=") : -1
    const flag = eq === -1 ? arg : arg.slice(0, eq)
    const known = canonicalFlag(flag)
    const takeValue = (example: string): Result.Result<string, ConfigError> => {
      if (eq !== -1) {
        const inline = arg.slice(eq + 1)
        return inline === "" ? Result.fail(configError(flag, `expected a value, e.g. ${flag} ${example}`)) : Result.succeed(inline)
      }
      const next = argv[i + 1]
      if (next === undefined || next === "" || next.startsWith("-")) {
        return Result.fail(configError(flag, `expected a value, e.g. ${flag} ${example}`))
      }
      i++
      return Result.succeed(next)
    }
    switch (known) {
      case "--config": {
        const value = takeValue("./gateway.toml")
        if (Result.isFailure(value)) return Result.fail(value.failure)
        configPath = value.success
        break
      }
      case "--log-level": {
        const value = takeValue("debug")
        if (Result.isFailure(value)) return Result.fail(value.failure)
        const level = value.success.trim().toLowerCase() === GO_SUPPRESS && flag !== "--log-level"
          ? Result.succeed<LogLevel>("error")
          : parseLogLevel(flag, value.success)
        if (Result.isFailure(level)) return Result.fail(level.failure)
        logLevel = level.success
        break
      }
      default:
        // Neither message echoes more than the flag name: a pasted token must not reach the logs.
        return Result.fail(
          arg.startsWith("--")
            ? configError(flag, `unknown flag${didYouMean(flag, FLAGS)}; run with --help for the options`)
            : arg.startsWith("-")
            ? configError(arg.slice(0, 2), `unknown flag${didYouMean(arg.slice(0, 2), FLAGS)}; run with --help for the options`)
            : configError(
              "arguments",
              `unexpected argument #${i + 1}; settings go in gateway.toml or environment variables (see --help)`
            )
        )
    }
  }
  return Result.succeed({ configPath, logLevel })
}
