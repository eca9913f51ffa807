// Every key gateway.toml may contain, so that a misspelt key fails loudly instead of being ignored.
import { didYouMean } from "./suggest.ts"

/** `true`: a value; an object: a table; a one-element array: an array of such tables. */
export type KeySpec = true | { readonly [key: string]: KeySpec } | readonly [{ readonly [key: string]: KeySpec }]

export const ACTIVITY_KEYS = { name: true, type: true, state: true, url: true } as const

// `game` is the one-activity spelling of Discord's older gateway versions, which the original Go
// gateway's documentation shows; it is read as `activities = [game]`.
export const PRESENCE_KEYS = { since: true, activities: [ACTIVITY_KEYS], game: ACTIVITY_KEYS, status: true, afk: true } as const

export const FILE_KEYS = {
  token: true,
  events: true,
  intents: true,
  raw_intents: true,
  gateway_version: true,
  compress: true,
  log_level: true,
  shutdown_timeout: true,
  checkpoint_interval: true,
  shards: { count: true, ids: true, max: true, check_interval: true },
  api: { scheme: true, host: true, version: true },
  broker: { type: true, group: true, message_timeout: true, encoding: true, buffer_size: true },
  presence: PRESENCE_KEYS,
  prometheus: { address: true, endpoint: true },
  shard_store: { type: true, prefix: true, path: true },
  // `url` is the original gateway's single-URL spelling, kept so old files still load.
  redis: { urls: true, url: true, pool_size: true },
  amqp: { url: true },
  // Hard caps on memory taken by what Discord sends (Config/limits.ts).
  limits: { frame_size: true, payload_size: true, partial_size: true }
} as const

export const isTable = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value) && !(value instanceof Date)

export interface KeyProblem {
  /** Dotted path of the offending key, e.g. "broker.tyep" or "presence.activities[0].nmae". */
  readonly path: string
  readonly problem: string
}

const join = (prefix: string, key: string): string => (prefix === "" ? key : `${prefix}.${key}`)

/** The first key in `value` that `spec` does not allow, or a value that should be a table and is not. */
export const findUnknownKey = (
  value: Record<string, unknown>,
  spec: { readonly [key: string]: KeySpec },
  prefix = ""
): KeyProblem | undefined => {
  const known = Object.keys(spec)
  for (const [key, child] of Object.entries(value)) {
    const path = join(prefix, key)
    if (!Object.hasOwn(spec, key)) {
      const hint = didYouMean(key, known)
      return { path, problem: `unknown key${hint === "" ? `; expected one of ${known.join(", ")}` : hint}` }
    }
    const childSpec = spec[key]!
    if (childSpec === true) continue
    if (Array.isArray(childSpec)) {
      // Element types are checked by the value's own validator; here only the keys inside tables.
      if (!Array.isArray(child)) continue
      for (const [index, element] of child.entries()) {
        if (!isTable(element)) continue
        const found = findUnknownKey(element, childSpec[0], `${path}[${index}]`)
        if (found !== undefined) return found
      }
      continue
    }
    if (!isTable(child)) return { path, problem: `expected a table; write it as a [${path}] section` }
    const found = findUnknownKey(child, childSpec as { readonly [key: string]: KeySpec }, path)
    if (found !== undefined) return found
  }
  return undefined
}
