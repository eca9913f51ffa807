// Durations as people write them: Go-style "1h30m", "1500ms", "2m", or "10 seconds".
import { Result } from "effect"

const UNIT_MS: Readonly<Record<string, number>> = {
  ns: 1e-6,
  us: 1e-3,
  "µs": 1e-3,
  ms: 1,
  millisecond: 1,
  milliseconds: 1,
  s: 1000,
  sec: 1000,
  secs: 1000,
  second: 1000,
  seconds: 1000,
  m: 60_000,
  min: 60_000,
  mins: 60_000,
  minute: 60_000,
  minutes: 60_000,
  h: 3_600_000,
  hr: 3_600_000,
  hrs: 3_600_000,
  hour: 3_600_000,
  hours: 3_600_000,
  d: 86_400_000,
  day: 86_400_000,
  days: 86_400_000
}

/** Node timers overflow above this (about 24.8 days) and fire at once, so larger values are refused. */
export const MAX_DURATION_MS = 2 ** 31 - 1

export const DURATION_HINT = `use a number with a unit, e.g. "30s", "1500ms", "2m" or "1h30m"`

const PART = /(\d+(?:\.\d*)?|\.\d+)\s*([a-zµ]+)\s*/gy

/**
 * Milliseconds (rounded) for a duration string. A bare "0" means zero; other unit-less numbers are
 * refused because "10" could mean seconds or milliseconds. The failure is the problem, without the key.
 */
export const parseDuration = (text: string): Result.Result<number, string> => {
  const input = text.trim().toLowerCase()
  if (/^0+$/.test(input)) return Result.succeed(0)
  if (/^\d+(\.\d+)?$/.test(input)) return Result.fail(`"${text}" has no unit; ${DURATION_HINT}`)
  if (input.startsWith("-")) return Result.fail(`"${text}" is negative; ${DURATION_HINT}`)
  let total = 0
  let matched = 0
  PART.lastIndex = 0
  for (let m = PART.exec(input); m !== null; m = PART.exec(input)) {
    const unit = UNIT_MS[m[2]!]
    if (unit === undefined) return Result.fail(`unknown unit "${m[2]}" in "${text}"; ${DURATION_HINT}`)
    total += Number(m[1]) * unit
    matched = PART.lastIndex
  }
  if (matched === 0 || matched !== input.length) return Result.fail(`"${text}" is not a duration; ${DURATION_HINT}`)
  return checkRange(Math.round(total), text)
}

/** Milliseconds given as a number (TOML integers): whole and non-negative. */
export const durationFromMillis = (ms: number): Result.Result<number, string> =>
  Number.isInteger(ms) && ms >= 0
    ? checkRange(ms, String(ms))
    : Result.fail(`expected a whole, non-negative number of milliseconds or a string; ${DURATION_HINT}`)

const checkRange = (ms: number, text: string): Result.Result<number, string> =>
  ms <= MAX_DURATION_MS ? Result.succeed(ms) : Result.fail(`"${text}" is too long; the maximum is 24 days ("24d")`)
