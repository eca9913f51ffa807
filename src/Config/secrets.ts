// The bot token and service URLs. These are wrapped in Redacted as soon as they are read, and
// no error here ever repeats the value (a URL may carry a password).
import { Redacted, Result } from "effect"
import { configError } from "./ConfigError.ts"
import { fail, type Raw, type Read } from "./values.ts"

export const MISSING_TOKEN = "no bot token; set DISCORD_TOKEN or token in gateway.toml"

/** The token without a pasted "Bot " prefix. */
export const token = (raw: Raw | undefined): Read<Redacted.Redacted<string>> => {
  if (raw === undefined) return Result.fail(configError("token", MISSING_TOKEN))
  if (typeof raw.value !== "string") return fail(raw, "expected the bot token as a quoted string")
  const bare = raw.value.trim().replace(/^bot\s+/i, "")
  // Blank values are already unset, so a lone "Bot" is what remains of "Bot " with nothing after it.
  if (bare === "" || /^bot$/i.test(bare)) return fail(raw, "holds no token after the \"Bot \" prefix; paste the token from the Developer Portal")
  if (/\s/.test(bare)) return fail(raw, "contains whitespace; paste only the token from the Developer Portal")
  return Result.succeed(Redacted.make(bare, { label: "token" }))
}

/**
 * A URL with one of `protocols` (e.g. ["redis:", "rediss:"]) and a host. `entry` numbers the
 * URL within a list so the user can find it without the message quoting it.
 */
export const serviceUrl = (
  raw: Raw,
  text: unknown,
  protocols: ReadonlyArray<string>,
  example: string,
  entry?: number
): Read<Redacted.Redacted<string>> => {
  const which = entry === undefined ? "" : `entry ${entry}: `
  const expected = `expected a ${protocols.map((p) => `${p}//`).join(" or ")} URL such as ${example}`
  if (typeof text !== "string") return fail(raw, `${which}${expected} (as a quoted string)`)
  let url: URL
  try {
    url = new URL(text.trim())
  } catch {
    return fail(raw, `${which}not a valid URL; ${expected}`)
  }
  if (!protocols.includes(url.protocol)) return fail(raw, `${which}wrong scheme; ${expected}`)
  if (url.hostname === "") return fail(raw, `${which}has no host; ${expected}`)
  return Result.succeed(Redacted.make(text.trim(), { label: raw.name }))
}
