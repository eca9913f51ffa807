// What each gateway close code means for us (DISCORD_GATEWAY.md §4). The protocol is data: the
// session loop and the tests both read this one table.

export type CloseAction =
  /** Reconnect to resume_gateway_url and RESUME the session. */
  | { readonly kind: "resume"; readonly reason: string; readonly meaning: string }
  /** The session is gone: forget it, reconnect to the main url and IDENTIFY. */
  | { readonly kind: "identify"; readonly reason: string; readonly meaning: string }
  /** Retrying cannot help: stop the gateway with what the operator must do. */
  | { readonly kind: "fatal"; readonly reason: string; readonly meaning: string; readonly fix: string }

// `meaning` is what the code means; `reason` adds our reading of it, shown only when the server
// gave no reason of its own (a server that says why knows better than our guess).
const resume = (meaning: string, hint?: string): CloseAction => ({ kind: "resume", meaning, reason: hint ? `${meaning} (${hint})` : meaning })
const identify = (meaning: string): CloseAction => ({ kind: "identify", meaning, reason: meaning })
const fatal = (meaning: string, fix: string): CloseAction => ({ kind: "fatal", meaning, reason: meaning, fix })

const BUG = "a gateway bug: please report it"

export const CLOSE_CODES: ReadonlyMap<number, CloseAction> = new Map([
  [4000, resume("unknown error")],
  [4001, resume("unknown opcode", BUG)],
  [4002, resume("decode error", BUG)],
  [4003, resume("not authenticated")],
  [4004, fatal("authentication failed", "the bot token is invalid: copy a fresh token from the Discord Developer Portal (Bot tab) into DISCORD_TOKEN")],
  [4005, resume("already authenticated")],
  [4007, identify("invalid sequence on resume")],
  [4008, resume("rate limited", BUG)],
  [4009, identify("session timed out")],
  [4010, fatal("invalid shard", "check [shards] count and ids (DISCORD_SHARD_COUNT, DISCORD_SHARD_IDS): every id must be below the count, and large bots must use a multiple of the count Discord recommends")],
  [4011, fatal("sharding required", "the bot is in too many guilds for this shard count: raise [shards] count (DISCORD_SHARD_COUNT) or unset it to use Discord's recommendation")],
  [4012, fatal("invalid API version", "set gateway_version (DISCORD_GATEWAY_VERSION) to a supported version such as 10")],
  [4013, fatal("invalid intents", "intents / raw_intents (DISCORD_INTENTS, DISCORD_RAW_INTENTS) contain a bit Discord does not know: remove it")],
  [4014, fatal("disallowed intents", "enable the privileged intent(s) in the Discord Developer Portal (Bot tab, Privileged Gateway Intents), or remove them from intents")]
])

/**
 * Server closes with 1000/1001/1006 or codes we do not know are treated as resumable; if the
 * session is really gone the RESUME is answered with op 9 and we identify afresh.
 */
export const closeAction = (code: number): CloseAction =>
  CLOSE_CODES.get(code) ?? resume(code === 1006 ? "connection lost" : `closed with code ${code}`)
