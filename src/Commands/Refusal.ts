// Why a command was not sent. The reason is a short stable code (a counter key and, later, a
// metric label); the detail is the sentence a bot developer needs to fix the command.

export type RefusalReason =
  /** Neither JSON text nor MessagePack that decodes. */
  | "malformed"
  /** Decodes, but is not a JSON object / MessagePack map. */
  | "not_object"
  /** `op` missing or not an integer. */
  | "bad_op"
  /** `op` is an integer a bot may not send through the gateway (identify, heartbeat, unknown...). */
  | "op_not_allowed"
  /** `d` missing or not an object. */
  | "bad_d"
  /** `shard_id` not an integer in [0, shard count). */
  | "bad_shard_id"
  /** A guild id to route by is missing where the op needs one, or is not a snowflake. */
  | "bad_guild_id"
  /** `{"op":N,"d":...}` would exceed Discord's 4096-byte limit (or the input is absurdly long). */
  | "too_large"
  /** The target shard runs elsewhere and there is no broker to forward it through. */
  | "not_local"
  /** The target shard's Redis inbox is full and has not shrunk for a long time (nobody sends from it). */
  | "inbox_full"

export const REFUSAL_REASONS: ReadonlyArray<RefusalReason> = [
  "malformed",
  "not_object",
  "bad_op",
  "op_not_allowed",
  "bad_d",
  "bad_shard_id",
  "bad_guild_id",
  "too_large",
  "not_local",
  "inbox_full"
]

export interface Refusal {
  readonly reason: RefusalReason
  readonly detail: string
}

export const refusal = (reason: RefusalReason, detail: string): Refusal => ({ reason, detail })
