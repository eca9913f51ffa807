// The IDENTIFY presence (DISCORD_GATEWAY.md §16), from a [presence] table or DISCORD_PRESENCE JSON.
// The shape is checked lightly with Schema; Discord judges the details.
import { Result, Schema, SchemaIssue } from "effect"
import { configError } from "./ConfigError.ts"
import { findUnknownKey, isTable, PRESENCE_KEYS } from "./keys.ts"
import { describe, type Raw, type Read } from "./values.ts"

export const STATUSES = ["online", "dnd", "idle", "invisible", "offline"] as const

const Activity = Schema.Struct({
  name: Schema.String,
  type: Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 5 })),
  state: Schema.optionalKey(Schema.String),
  url: Schema.optionalKey(Schema.String)
})

const PresenceInput = Schema.Struct({
  since: Schema.optionalKey(Schema.NullOr(Schema.Int.check(Schema.isGreaterThanOrEqualTo(0)))),
  activities: Schema.optionalKey(Schema.Array(Activity)),
  status: Schema.optionalKey(Schema.Literals(STATUSES)),
  afk: Schema.optionalKey(Schema.Boolean)
})

/** What IDENTIFY sends: all four keys, always. */
export interface Presence {
  readonly since: number | null
  readonly activities: ReadonlyArray<typeof Activity.Type>
  readonly status: (typeof STATUSES)[number]
  readonly afk: boolean
}

const EXAMPLE_JSON = `{"status":"online","activities":[{"name":"with Discord","type":0}]}`

const decode = Schema.decodeUnknownResult(PresenceInput)
const formatIssue = SchemaIssue.makeFormatterStandardSchemaV1()

// Schema's own wording says what was wrong; these say what to write instead.
const HINTS: Readonly<Record<string, string>> = {
  since: "expected a unix time in milliseconds (or leave it out)",
  activities: `expected an array of activities, e.g. activities = [{ name = "with Discord", type = 0 }]`,
  status: `expected one of ${STATUSES.join(", ")}`,
  afk: "expected true or false",
  name: "expected the activity name as text",
  type: "expected an activity type from 0 to 5 (0 Playing, 1 Streaming, 2 Listening, 3 Watching, 4 Custom, 5 Competing)",
  state: "expected text",
  url: "expected a URL as text"
}

const renderPath = (path: ReadonlyArray<PropertyKey>): string =>
  path.reduce<string>(
    (acc, segment) => typeof segment === "number" ? `${acc}[${segment}]` : acc === "" ? String(segment) : `${acc}.${String(segment)}`,
    ""
  )

const valueAt = (root: unknown, path: ReadonlyArray<PropertyKey>): unknown =>
  path.reduce<unknown>((node, key) => (typeof node === "object" && node !== null ? (node as Record<PropertyKey, unknown>)[key] : undefined), root)

const hintFor = (path: ReadonlyArray<PropertyKey>): string => {
  const last = path[path.length - 1]
  return typeof last === "number"
    ? `expected an activity table with name and type, e.g. { name = "with Discord", type = 0 }`
    : HINTS[String(last)] ?? "invalid value"
}

/** The payload fields, or undefined when the source gives none (an empty table counts as none). */
export const presence = (raw: Raw | undefined, warn: (message: string) => void = () => undefined): Read<Presence | undefined> => {
  if (raw === undefined) return Result.succeed(undefined)
  // Errors from the file name the full key; errors from the variable name the variable and the inner key.
  const failAt = (inner: string, problem: string) =>
    Result.fail(
      raw.source === "file"
        ? configError(inner === "" ? raw.name : `${raw.name}.${inner}`, problem)
        : configError(raw.name, inner === "" ? problem : `at ${inner}, ${problem}`)
    )

  let input: unknown = raw.value
  if (raw.source === "env") {
    try {
      input = JSON.parse(raw.value)
    } catch (error) {
      const reason = error instanceof Error ? error.message.replace(/\s+/g, " ") : "unparseable"
      return failAt("", `invalid JSON (${reason}); expected an object such as ${EXAMPLE_JSON}`)
    }
  }
  if (!isTable(input)) {
    return failAt("", raw.source === "env" ? `expected a JSON object such as ${EXAMPLE_JSON}` : "expected a [presence] table")
  }
  if (Object.keys(input).length === 0) return Result.succeed(undefined)

  const unknown = findUnknownKey(input, PRESENCE_KEYS)
  if (unknown !== undefined) return failAt(unknown.path, unknown.problem)
  let fromGame = false
  if (input.game !== undefined) {
    fromGame = true
    const { game, ...rest } = input
    if (rest.activities !== undefined) return failAt("game", "set either game or activities, not both; game is the old spelling of one activity")
    warn(`${raw.name}: "game" is the old spelling of one activity; it is sent as activities = [game] (write activities to silence this warning)`)
    input = { ...rest, activities: [game] }
  }

  const decoded = decode(input)
  if (Result.isFailure(decoded)) {
    const first = formatIssue(decoded.failure.issue).issues[0]
    const path = (first?.path ?? []).map((p) => (typeof p === "object" && p !== null ? p.key : p))
    const got = valueAt(input, path)
    // Name the key the user wrote: a problem inside the converted `game` is reported there.
    const shown = fromGame && path[0] === "activities" && path[1] === 0 ? ["game", ...path.slice(2)] : path
    return failAt(renderPath(shown), got === undefined ? `missing; ${hintFor(path)}` : `${hintFor(path)}, got ${describe(got)}`)
  }
  const value = decoded.success
  return Result.succeed({
    since: value.since ?? null,
    activities: value.activities ?? [],
    status: value.status ?? "online",
    afk: value.afk ?? false
  })
}
