// Typed readers for one setting. A setting comes either from an environment variable (always a
// string) or from gateway.toml (any TOML value); errors name whichever one supplied it.
import { Result, Schema } from "effect"
import { ConfigError, configError } from "./ConfigError.ts"
import { durationFromMillis, parseDuration } from "./duration.ts"
import { splitList } from "./env.ts"
import { isTable } from "./keys.ts"
import { didYouMean } from "./suggest.ts"

export type Raw =
  | { readonly source: "env"; readonly name: string; readonly value: string }
  | { readonly source: "file"; readonly name: string; readonly value: unknown }

export type Read<A> = Result.Result<A, ConfigError>

export const fail = (raw: Raw, problem: string): Read<never> => Result.fail(configError(raw.name, problem))

/** A short description of a TOML value for "got ..." (only for settings that are not secret). */
export const describe = (value: unknown): string =>
  typeof value === "string"
    ? JSON.stringify(value)
    : Array.isArray(value)
    ? "an array"
    : value instanceof Date
    ? "a date"
    : isTable(value)
    ? "a table"
    : String(value)

const isPositiveInt = Schema.is(Schema.Int.check(Schema.isGreaterThan(0)))
const isNonNegativeInt = Schema.is(Schema.Int.check(Schema.isGreaterThanOrEqualTo(0)))
const isSafeNumber = Schema.is(Schema.Finite.check(Schema.isBetween({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER })))

/** A whole number from env text ("42") or a TOML integer; `noun` completes "expected a whole number of ...". */
const wholeNumber = (raw: Raw, check: (n: number) => boolean, expected: string): Read<number> => {
  if (raw.source === "env") {
    const n = /^\+?\d+$/.test(raw.value) ? Number(raw.value) : Number.NaN
    return isSafeNumber(n) && check(n) ? Result.succeed(n) : fail(raw, `${expected}, got "${raw.value}"`)
  }
  return typeof raw.value === "number" && check(raw.value)
    ? Result.succeed(raw.value)
    : fail(raw, `${expected}, got ${describe(raw.value)}`)
}

/** `what` is plural: "shards" gives "expected a whole number of shards (1 or more)". */
export const positiveInt = (raw: Raw, what: string): Read<number> =>
  wholeNumber(raw, isPositiveInt, `expected a whole number of ${what} (1 or more)`)

export const nonNegativeInt = (raw: Raw, expected: string): Read<number> => wholeNumber(raw, isNonNegativeInt, expected)

export const string = (raw: Raw, expected = "expected text"): Read<string> =>
  raw.source === "env"
    ? Result.succeed(raw.value)
    : typeof raw.value === "string"
    ? Result.succeed(raw.value)
    : fail(raw, `${expected}, got ${describe(raw.value)}`)

export const nonEmptyString = (raw: Raw, example: string): Read<string> =>
  Result.flatMap(string(raw, `expected text such as "${example}"`), (s) =>
    s.trim() === "" ? fail(raw, `must not be empty; e.g. "${example}"`) : Result.succeed(s))

/** One of a fixed set of lowercase words, case-insensitive. */
export const oneOf = <const A extends string>(raw: Raw, allowed: ReadonlyArray<A>, noun: string): Read<A> =>
  Result.flatMap(string(raw, `expected one of ${allowed.join(", ")}`), (s) => {
    const word = s.trim().toLowerCase()
    return (allowed as ReadonlyArray<string>).includes(word)
      ? Result.succeed(word as A)
      : fail(raw, `unknown ${noun} "${s}"; expected one of ${allowed.join(", ")}${didYouMean(word, allowed)}`)
  })

/** Milliseconds, from "30s"-style text or (in TOML only) an integer count of milliseconds. */
export const duration = (raw: Raw): Read<number> => {
  const parsed = raw.source === "file" && typeof raw.value === "number"
    ? durationFromMillis(raw.value)
    : raw.source === "file" && typeof raw.value !== "string"
    ? Result.fail(`expected a duration such as "30s", got ${describe(raw.value)}`)
    : parseDuration(raw.value as string)
  return Result.mapError(parsed, (problem) => configError(raw.name, problem))
}

/**
 * A list: comma-separated in env, an array in TOML (a single string is accepted as a
 * comma-separated list too). Elements are returned as given (strings, or TOML numbers).
 */
export const list = (raw: Raw, example: string): Read<ReadonlyArray<unknown>> =>
  raw.source === "env"
    ? Result.succeed(splitList(raw.value))
    : Array.isArray(raw.value)
    ? Result.succeed(raw.value)
    : typeof raw.value === "string"
    ? Result.succeed(splitList(raw.value))
    : fail(raw, `expected an array such as ${example}, got ${describe(raw.value)}`)

/** A list whose elements must all be strings. */
export const stringList = (raw: Raw, example: string): Read<ReadonlyArray<string>> =>
  Result.flatMap(list(raw, example), (items) => {
    const bad = items.findIndex((item) => typeof item !== "string")
    return bad === -1
      ? Result.succeed((items as ReadonlyArray<string>).map((s) => s.trim()).filter((s) => s !== ""))
      : fail(raw, `element ${bad + 1} should be a quoted string, got ${describe(items[bad])}; e.g. ${example}`)
  })
