// Readers for the Discord-specific settings: events, intents and shard ids.
import { Result } from "effect"
import { isKnownDispatchEvent, KNOWN_DISPATCH_EVENTS } from "../Discord/Events.ts"
import { ALL_DOCUMENTED_INTENTS, currentIntentName, INTENT_ALIASES, INTENTS, intentBit } from "../Discord/Intents.ts"
import { closest } from "./suggest.ts"
import { configError } from "./ConfigError.ts"
import { describe, fail, list, nonNegativeInt, type Raw, type Read, stringList } from "./values.ts"

// ---- events ----------------------------------------------------------------------------------

export interface Events {
  readonly all: boolean
  readonly names: ReadonlySet<string>
}

export const MISSING_EVENTS =
  `no events selected; set DISCORD_EVENTS (e.g. "MESSAGE_CREATE,GUILD_CREATE", or "*" for every dispatch) or events in gateway.toml`

/** Events to forward. Required: forwarding nothing is useless and forwarding everything floods a broker. */
export const events = (raw: Raw | undefined, warn: (message: string) => void): Read<Events> => {
  if (raw === undefined) return Result.fail(configError("events", MISSING_EVENTS))
  return Result.flatMap(stringList(raw, `["MESSAGE_CREATE", "GUILD_CREATE"]`), (items) => {
    if (items.length === 0) return fail(raw, MISSING_EVENTS)
    let all = false
    const names = new Set<string>()
    for (const item of items) {
      if (item === "*") {
        all = true
        continue
      }
      const name = item.toUpperCase()
      if (!/^[A-Z][A-Z0-9_]*$/.test(name)) {
        return fail(raw, `"${item}" is not an event name; use names such as MESSAGE_CREATE, or "*" for every dispatch`)
      }
      if (!isKnownDispatchEvent(name)) {
        const guess = closestDispatchEvent(name)
        // Discord adds events, so an unknown name is kept; it may just be newer than this list.
        warn(`${raw.name}: "${name}" is not a known dispatch event${guess === undefined ? "" : ` (did you mean "${guess}"?)`}; it will be forwarded if Discord sends it`)
      }
      names.add(name)
    }
    return Result.succeed({ all, names })
  })
}

// ---- intents ---------------------------------------------------------------------------------

/** OR of the named intents (current names or old aliases, any case); one warning per old name used. */
export const namedIntents = (raw: Raw, warn: (message: string) => void): Read<number> =>
  Result.flatMap(stringList(raw, `["GUILDS", "GUILD_MESSAGES"]`), (names) => {
    let bits = 0
    const warned = new Set<string>()
    for (const name of names) {
      if (/^\d+$/.test(name)) {
        const rawKey = raw.source === "env" ? "DISCORD_RAW_INTENTS" : "raw_intents"
        return fail(raw, `"${name}" is a number; intents takes names such as GUILDS, put a bitfield in ${rawKey}`)
      }
      const bit = intentBit(name)
      if (bit === undefined) {
        const guess = closestIntentName(name)
        return fail(
          raw,
          `unknown intent "${name}"${guess === undefined ? "; see the intent names in README.md" : ` (did you mean "${guess}"?)`}`
        )
      }
      const current = currentIntentName(name)
      if (current !== undefined && !warned.has(name.toUpperCase())) {
        warned.add(name.toUpperCase())
        warn(`${raw.name}: "${name}" is an old name for the intent ${current}; it is read as ${current} (write ${current} to silence this warning)`)
      }
      bits |= bit
    }
    return Result.succeed(bits)
  })

/** A raw intents bitfield, passed as given (bit 31 and above cannot be intents). */
export const rawIntents = (raw: Raw, warn: (message: string) => void): Read<number> =>
  Result.flatMap(
    nonNegativeInt(raw, "expected an intents bitfield as a non-negative whole number such as 513"),
    (bits) => {
      if (bits > 0x7fffffff) return fail(raw, `${bits} is larger than any intents bitfield; the documented bits fit in ${ALL_DOCUMENTED_INTENTS}`)
      const unknown = bits & ~ALL_DOCUMENTED_INTENTS
      if (unknown !== 0) warn(`${raw.name}: bits ${unknown} are not documented intents; Discord may close with 4013 (invalid intents)`)
      return Result.succeed(bits)
    }
  )

// ---- shard ids -------------------------------------------------------------------------------

const IDS_EXAMPLE = `["0-15", 32]`

/**
 * Shard ids below `count`, sorted and unique. Elements are ids (TOML integers or digit strings)
 * or inclusive ranges "a-b". Bounds are checked before ranges are expanded.
 */
export const shardIds = (raw: Raw, count: number, countKey: string): Read<ReadonlyArray<number>> =>
  Result.flatMap(list(raw, IDS_EXAMPLE), (items) => {
    if (items.length === 0) return fail(raw, `is empty; list the shards to run, e.g. ${IDS_EXAMPLE}, or remove it to run all ${count}`)
    const ids = new Set<number>()
    for (const item of items) {
      let from: number
      let to: number
      if (typeof item === "number") {
        if (!Number.isInteger(item) || item < 0) return fail(raw, `${item} is not a shard id; ids are whole numbers from 0`)
        from = to = item
      } else if (typeof item === "string") {
        const m = /^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$/.exec(item)
        if (m === null) return fail(raw, `"${item}" is not a shard id or range; use ids and ranges such as ${IDS_EXAMPLE}`)
        from = Number(m[1])
        to = m[2] === undefined ? from : Number(m[2])
        if (to < from) return fail(raw, `"${item}" is an empty range; write the lower id first, e.g. "${to}-${from}"`)
      } else {
        return fail(raw, `expected shard ids and ranges such as ${IDS_EXAMPLE}, got ${describe(item)}`)
      }
      if (to >= count) {
        const where = from === to ? "" : ` (in range "${String(item).trim()}")`
        return fail(raw, `shard id ${to}${where} is not below the shard count ${count} (${countKey}); ids run from 0 to ${count - 1}`)
      }
      for (let id = from; id <= to; id++) ids.add(id)
    }
    return Result.succeed([...ids].sort((a, b) => a - b))
  })

/** The known dispatch name nearest to `name`, for a "did you mean" warning. */
export const closestDispatchEvent = (name: string): string | undefined => closest(name, KNOWN_DISPATCH_EVENTS)

/**
 * The current name nearest to a misspelt one, e.g. "GUILD_MESAGES" → "GUILD_MESSAGES", else the
 * current name of the nearest old one ("GUILD_EMOJI" → "GUILD_EXPRESSIONS"). `GUILD` is left out
 * of the old names here: it is the start of most names and would be everyone's nearest.
 */
export const closestIntentName = (input: string): string | undefined => {
  const current = closest(input, Object.keys(INTENTS))
  if (current !== undefined) return current
  const old = closest(input, Object.keys(INTENT_ALIASES).filter((alias) => alias !== "GUILD"))
  return old === undefined ? undefined : currentIntentName(old)
}
