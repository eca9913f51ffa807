// A Redis Cluster seed node from one of the configured URLs. (A single server's URL is handed to
// ioredis as it is; a Cluster takes host/port pairs plus shared connection options instead.)
import { Redacted } from "effect"

/**
 * `host:port` (or a bare host) as `redis://host:port`: the original Go gateway took Redis
 * addresses without a scheme, and its documentation writes them so. Text that already has a
 * scheme (`something://`) is returned as it is.
 */
export const withRedisScheme = (text: string): string => {
  const trimmed = text.trim()
  return trimmed === "" || /^[a-z][a-z0-9+.-]*:\/\//i.test(trimmed) ? trimmed : `redis://${trimmed}`
}

export interface RedisNode {
  readonly host: string
  readonly port: number
  readonly username: string | undefined
  readonly password: string | undefined
  readonly tls: boolean
}

/** The node, or a sentence saying what is wrong (never quoting the URL: it may hold a password). */
export const redisNode = (url: Redacted.Redacted<string>): RedisNode | string => {
  let parsed: URL
  try {
    parsed = new URL(Redacted.value(url))
  } catch {
    return "not a valid URL"
  }
  if (parsed.protocol !== "redis:" && parsed.protocol !== "rediss:") return "expected a redis:// or rediss:// URL"
  if (parsed.hostname === "") return "has no host"
  const db = parsed.pathname.replace(/^\//, "")
  if (db !== "" && db !== "0") return "selects a database; Redis Cluster only has database 0, remove the /<db> part"
  const port = parsed.port === "" ? 6379 : Number(parsed.port)
  return {
    // new URL keeps IPv6 literals bracketed; sockets want them bare.
    host: parsed.hostname.replace(/^\[(.*)\]$/, "$1"),
    port,
    username: parsed.username === "" ? undefined : decodeURIComponent(parsed.username),
    password: parsed.password === "" ? undefined : decodeURIComponent(parsed.password),
    tls: parsed.protocol === "rediss:"
  }
}
