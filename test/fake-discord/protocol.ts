// Gateway protocol constants and the one serializer every outgoing payload goes through, so the
// key order is always {"t","s","op","d"} like real Discord (clients must not depend on it, but
// byte-identical frames make benchmarks and snapshot assertions stable).

export const Op = {
  Dispatch: 0,
  Heartbeat: 1,
  Identify: 2,
  PresenceUpdate: 3,
  VoiceStateUpdate: 4,
  Resume: 6,
  Reconnect: 7,
  RequestGuildMembers: 8,
  InvalidSession: 9,
  Hello: 10,
  HeartbeatAck: 11,
  RequestSoundboardSounds: 31,
  RequestChannelInfo: 43
} as const

/** Opcodes a client may send. Anything else closes the connection with 4001. */
export const CLIENT_OPS: ReadonlySet<number> = new Set([1, 2, 3, 4, 6, 8, 31, 43])

export const CloseCode = {
  UnknownError: 4000,
  UnknownOpcode: 4001,
  DecodeError: 4002,
  NotAuthenticated: 4003,
  AuthenticationFailed: 4004,
  AlreadyAuthenticated: 4005,
  InvalidSeq: 4007,
  RateLimited: 4008,
  SessionTimedOut: 4009,
  InvalidShard: 4010,
  ShardingRequired: 4011,
  InvalidApiVersion: 4012,
  InvalidIntents: 4013,
  DisallowedIntents: 4014
} as const

/** Every documented intent bit (DISCORD_GATEWAY.md §11). */
export const ALL_INTENTS = 53608447
/** GUILD_MEMBERS | GUILD_PRESENCES | MESSAGE_CONTENT. */
export const PRIVILEGED_INTENTS = 2 | 256 | 32768

/** Largest client payload Discord accepts; bigger ones close with 4002. */
export const MAX_CLIENT_PAYLOAD_BYTES = 4096

/** API versions the fake accepts in the `v` query parameter; anything else closes with 4012. */
export const SUPPORTED_VERSIONS: ReadonlySet<number> = new Set([9, 10])

/** Serializes a payload from an already-JSON-encoded `d`, so callers can cache `d` encodings. */
export function frameText(t: string | null, s: number | null, op: number, dJson: string): string {
  return `{"t":${t === null ? "null" : JSON.stringify(t)},"s":${s === null ? "null" : s},"op":${op},"d":${dJson}}`
}

/** Everything of a dispatch before its `d` JSON; the payload is `prefix + dJson + "}"`. */
export function dispatchPrefix(t: string, s: number): string {
  return `{"t":${JSON.stringify(t)},"s":${s},"op":0,"d":`
}

/** Serializes a non-dispatch payload (t and s are null). */
export function opText(op: number, d: unknown): string {
  return frameText(null, null, op, d === undefined ? "null" : JSON.stringify(d))
}

/** Discord attaches an undocumented `_trace` to HELLO/READY/RESUMED; clients must ignore it. */
export function trace(kind: string): Array<string> {
  return [`["gateway-fake-${kind}",{"micros":0,"calls":[]}]`]
}
