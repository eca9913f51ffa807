// Hard caps on the memory what Discord sends may take ([limits] in gateway.toml). Sizes are
// bytes, written as a whole number or with a unit: "32MiB", "64 MB", "512KiB".
import { Result } from "effect"
import { describe, fail, type Raw, type Read } from "./values.ts"

const KiB = 1024
const MiB = 1024 * KiB
const GiB = 1024 * MiB

export interface Limits {
  /** Largest websocket message read (ws maxPayload); past it the connection is closed (1009). */
  readonly frameBytes: number
  /** Largest payload after decompression; larger ones are dropped, counted and logged. */
  readonly payloadBytes: number
  /** Most compressed bytes of one unfinished zlib-stream message; past it the session starts afresh. */
  readonly partialBytes: number
}

/** Far above Discord's largest real payloads (a GUILD_CREATE of a huge guild: a few MB). */
export const DEFAULT_LIMITS: Limits = { frameBytes: 32 * MiB, payloadBytes: 32 * MiB, partialBytes: 32 * MiB }

const MIN_BYTES = 64 * KiB
const MAX_BYTES = GiB

const UNITS: Record<string, number> = { b: 1, kb: 1000, kib: KiB, mb: 1000 * 1000, mib: MiB, gb: 1000 * 1000 * 1000, gib: GiB }

const EXPECTED = `expected a size in bytes from 64KiB to 1GiB, e.g. "32MiB" or 33554432`

/** A size: a whole number of bytes, or a number with a unit (B, KB, KiB, MB, MiB, GB, GiB). */
export const byteSize = (raw: Raw): Read<number> => {
  let bytes: number
  if (typeof raw.value === "number") bytes = raw.value
  else if (typeof raw.value === "string") {
    const match = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(raw.value)
    const unit = match === null ? undefined : UNITS[(match[2] === "" ? "b" : match[2]!).toLowerCase()]
    if (match === null || unit === undefined) return fail(raw, `${EXPECTED}, got ${describe(raw.value)}`)
    bytes = Math.round(Number(match[1]) * unit)
  } else return fail(raw, `${EXPECTED}, got ${describe(raw.value)}`)
  if (!Number.isSafeInteger(bytes) || bytes < MIN_BYTES || bytes > MAX_BYTES) return fail(raw, `${EXPECTED}, got ${describe(raw.value)}`)
  return Result.succeed(bytes)
}
