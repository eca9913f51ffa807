// Service URLs may carry a password (redis://:pw@host, amqp://user:pw@host). Everything we log or
// put in an error goes through these helpers, so neither the password nor the raw URL leaks.
import { errorText as messageOf } from "../Resilience/OutageLog.ts"
import { Redacted } from "effect"

/** `scheme://host:port/path` with the credentials and query dropped; "<invalid url>" if unparsable. */
export const describeUrl = (url: Redacted.Redacted<string> | string): string => {
  const text = typeof url === "string" ? url : Redacted.value(url)
  try {
    const parsed = new URL(text)
    const path = parsed.pathname === "/" ? "" : parsed.pathname
    return `${parsed.protocol}//${parsed.host}${path}`
  } catch {
    return "<invalid url>"
  }
}

/**
 * A library's error text with any copy of the URL's password (raw or percent-encoded) masked.
 * Clients rarely echo credentials, but an error message is the one place we do not control.
 */
export const scrub = (text: string, url: Redacted.Redacted<string> | string): string => {
  const raw = typeof url === "string" ? url : Redacted.value(url)
  let secrets: Array<string> = []
  try {
    const parsed = new URL(raw)
    if (parsed.password !== "") secrets = [parsed.password, safeDecode(parsed.password)]
  } catch {
    // Not a URL: nothing recognisable to mask.
  }
  let out = text
  for (const secret of secrets) if (secret.length > 0) out = out.split(secret).join("***")
  return out
}

/** The message of anything thrown, scrubbed of the URL's password. */
export const errorText = (cause: unknown, url: Redacted.Redacted<string> | string): string => scrub(messageOf(cause), url)

const safeDecode = (text: string): string => {
  try {
    return decodeURIComponent(text)
  } catch {
    return text
  }
}
