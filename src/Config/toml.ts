// Finding, reading and parsing the TOML configuration file.
import { Effect, Result } from "effect"
import { Toml } from "effect/encoding"
import { readFile } from "node:fs/promises"
import * as Path from "node:path"
import { ConfigError, configError } from "./ConfigError.ts"

export const DEFAULT_CONFIG_FILE = "gateway.toml"

export interface ConfigFile {
  /** Absolute path of the file read; undefined when the default file is absent. */
  readonly path: string | undefined
  readonly data: Record<string, unknown>
}

// These parser messages quote the offending text, which may be an unquoted token or URL.
const QUOTES_VALUE = /^(Invalid value|Integer out of range|Invalid date-time) '.*' (at line \d+, column \d+)$/s

/** The parser's message on one line, with any quoted value removed. */
export const sanitizeTomlMessage = (message: string): string => {
  const quoted = QUOTES_VALUE.exec(message)
  const safe = quoted === null
    ? message
    : quoted[1] === "Invalid value"
    ? `Invalid value ${quoted[2]} (text must be in quotes, e.g. token = "...")`
    : `${quoted[1]} ${quoted[2]}`
  return safe.replace(/\s+/g, " ").trim()
}

/** Parses TOML text; `name` (the file name) prefixes the error. */
export const parseToml = (name: string, text: string): Result.Result<Record<string, unknown>, ConfigError> =>
  Result.mapError(Toml.parse(text), (error) => configError(name, `invalid TOML: ${sanitizeTomlMessage(error.message)}`))

const isNotFound = (error: unknown): boolean =>
  typeof error === "object" && error !== null && (error as { code?: unknown }).code === "ENOENT"

const describeReadError = (error: unknown): string => {
  const code = typeof error === "object" && error !== null ? (error as { code?: unknown }).code : undefined
  return code === "EISDIR"
    ? "is a directory; point it at a .toml file"
    : code === "EACCES"
    ? "permission denied; make the file readable by this user"
    : `cannot be read (${typeof code === "string" ? code : "unknown error"})`
}

/**
 * Reads `explicitPath` (from --config, relative to cwd) or else ./gateway.toml.
 * A missing default file is fine (empty config); a missing explicit one is an error.
 */
export const readConfigFile = (explicitPath: string | undefined, cwd: string): Effect.Effect<ConfigFile, ConfigError> => {
  const path = Path.resolve(cwd, explicitPath ?? DEFAULT_CONFIG_FILE)
  const key = explicitPath === undefined ? DEFAULT_CONFIG_FILE : "--config"
  return Effect.tryPromise({
    try: () => readFile(path, "utf8"),
    catch: (error) => error
  }).pipe(
    Effect.map((text): string | undefined => text),
    Effect.catch((error) =>
      isNotFound(error)
        ? explicitPath === undefined
          ? Effect.succeed(undefined)
          : Effect.fail(configError(key, `file "${explicitPath}" not found (looked in ${path})`))
        : Effect.fail(configError(key, `file "${explicitPath ?? path}" ${describeReadError(error)}`))
    ),
    Effect.flatMap((text) =>
      text === undefined
        ? Effect.succeed<ConfigFile>({ path: undefined, data: {} })
        : Effect.fromResult(parseToml(explicitPath ?? DEFAULT_CONFIG_FILE, text)).pipe(
          Effect.map((data): ConfigFile => ({ path, data }))
        )
    )
  )
}
