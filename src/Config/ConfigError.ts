// Failures of configuration loading. `message` is one line that names the key, variable or flag
// and says how to fix it; it never contains the token or a URL password.
import { Data } from "effect"

export class ConfigError extends Data.TaggedError("ConfigError")<{
  /** The TOML key path ("shards.count"), environment variable ("DISCORD_SHARD_COUNT") or flag ("--config"). */
  readonly key: string
  readonly message: string
}> {}

/** Builds a ConfigError whose message starts with the key: `key: problem`. */
export const configError = (key: string, problem: string): ConfigError =>
  new ConfigError({ key, message: `${key}: ${problem}` })

/**
 * `--help` / `-h` was given. Not a failure: main should print `usage` to stdout and exit 0.
 * It travels on the error channel so that loading stops before reading any file or variable.
 */
export class HelpRequested extends Data.TaggedError("HelpRequested")<{
  readonly usage: string
}> {}
