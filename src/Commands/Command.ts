// A command a bot asks the gateway to send to Discord, decoded and validated:
//
//   { "op": 4, "d": { ... }, "shard_id": 3 }        // to shard 3
//   { "op": 4, "d": { ... }, "guild_id": "81384788765712384" }   // to the guild's shard
//   { "op": 3, "d": { ... } }                        // no target: see `defaultTarget`
//
// The original Go gateway's shapes are read too (see `unwrapGoShapes`):
//
//   { "guild_id": "81384788765712384", "packet": { "op": 4, "d": { ... } } }
//   the same as JSON text inside a MessagePack string or binary (what its Go clients wrote)
//   { "event": "SEND", "data": <either of the above> }   (its stdin framing)
//
// Only `op` and `d` go to Discord, re-serialised as `{"op":N,"d":...}`. Everything that would make
// Discord close the connection (an op a bot may not send, more than 4096 bytes) is refused here,
// so a bad command costs a log line instead of a reconnect.
import { COMMAND_OPCODES, MAX_SEND_BYTES, Op } from "../Discord/Opcodes.ts"
import { type Parsed, parseRaw } from "./RawValue.ts"
import { type Refusal, refusal } from "./Refusal.ts"
import { parseSnowflake } from "./Snowflake.ts"

/** Where a command goes. `guilds` splits op 31 by shard; `all` means every shard of the bot. */
export type Target =
  | { readonly shard: number }
  | { readonly guild: bigint }
  | { readonly guilds: ReadonlyArray<bigint> }
  | "all"

export interface Command {
  readonly op: number
  readonly d: Record<string, unknown>
  readonly target: Target
  /** `{"op":N,"d":...}`, exactly what a shard writes to Discord (at most MAX_SEND_BYTES). */
  readonly payload: string
}

export type Decoded<A> = { readonly ok: true; readonly value: A } | { readonly ok: false; readonly refusal: Refusal }

const refuse = <A>(r: Refusal): Decoded<A> => ({ ok: false, refusal: r })
const ok = <A>(value: A): Decoded<A> => ({ ok: true, value })

const isRefusal = (value: Target | Refusal): value is Refusal => typeof value === "object" && "reason" in value

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value)

/** Snowflakes too large for a double stay bigint in memory; Discord gets them as strings. */
const bigintAsString = (_key: string, value: unknown) => (typeof value === "bigint" ? value.toString() : value)

/** The text a shard sends: `{"op":N,"d":...}`. Undefined if `d` cannot be serialised. */
export const serialisePayload = (op: number, d: unknown): string | undefined => {
  try {
    return `{"op":${op},"d":${JSON.stringify(d, bigintAsString)}}`
  } catch {
    return undefined
  }
}

const allowedOps = Array.from(COMMAND_OPCODES).sort((a, b) => a - b).join(", ")

export interface Envelope {
  readonly op: number
  readonly d: Record<string, unknown>
  readonly payload: string
  /** The whole decoded object, for the routing fields next to op and d. */
  readonly fields: Record<string, unknown>
}

/**
 * The part every command shares, also used for payloads that arrive already routed (a shard's
 * inbox): decodes, checks op and d, serialises and checks the size.
 */
export const decodeEnvelope = (raw: Uint8Array | string): Decoded<Envelope> => {
  const parsed = unwrapGoShapes(parseRaw(raw))
  if (!parsed.ok) return parsed
  const fields = parsed.value
  if (!isRecord(fields)) {
    const kind = Array.isArray(fields) ? "an array" : fields === null ? "null" : `a ${typeof fields}`
    return refuse(refusal("not_object", `expected an object with "op" and "d", got ${kind}`))
  }
  const op = fields.op
  if (op === undefined || op === null) return refuse(refusal("bad_op", `"op" is missing; allowed ops are ${allowedOps}`))
  if (typeof op !== "number" || !Number.isInteger(op)) {
    return refuse(refusal("bad_op", `"op" must be an integer (one of ${allowedOps}), got ${describe(op)}`))
  }
  if (!COMMAND_OPCODES.has(op)) {
    return refuse(refusal("op_not_allowed", `op ${op} is not a command a bot may send through the gateway; allowed ops are ${allowedOps}`))
  }
  const d = fields.d
  if (d === undefined) return refuse(refusal("bad_d", `"d" is missing; op ${op} needs its payload object in "d"`))
  if (!isRecord(d)) return refuse(refusal("bad_d", `"d" must be an object for op ${op}, got ${describe(d)}`))
  const payload = serialisePayload(op, d)
  if (payload === undefined) return refuse(refusal("malformed", `"d" cannot be serialised as JSON`))
  const bytes = Buffer.byteLength(payload, "utf8")
  if (bytes > MAX_SEND_BYTES) {
    return refuse(refusal("too_large", `{"op":${op},"d":...} is ${bytes} bytes; Discord closes the connection above ${MAX_SEND_BYTES}`))
  }
  return ok({ op, d, payload, fields })
}

/** JSON text carried as a string value (a MessagePack string or binary, or a JSON string). */
const innerJson = (value: unknown, where: string): Parsed | undefined => {
  if (typeof value !== "string") return undefined
  const text = value.trimStart()
  // Only an object inside is unwrapped: any other string stays a string, and is refused as one.
  if (!text.startsWith("{")) return undefined
  const inner = parseRaw(text)
  return inner.ok ? inner : { ok: false, refusal: refusal("malformed", `${where} holds text that is not a JSON object (${inner.refusal.detail})`) }
}

/**
 * The original Go gateway's command shapes, made ours (one level each, in this order):
 * - a string holding JSON text: its Go clients published `json.Marshal(packet)` through a
 *   MessagePack encoder, so the body is a MessagePack string (or binary) of JSON text;
 * - `{event, data}`: its stdin framing; `event` "SEND" carries a command, a shard id carries a
 *   payload for that shard;
 * - `{guild_id, packet: {op, d}}`: its SEND packet; `guild_id` (or `shard_id`) beside `packet`
 *   routes it exactly as beside `op`.
 * Anything else passes through unchanged.
 */
const unwrapGoShapes = (parsed: Parsed): Parsed => {
  if (!parsed.ok) return parsed
  let value = parsed.value
  const text = innerJson(value, "the command")
  if (text !== undefined) {
    if (!text.ok) return text
    value = text.value
  }
  if (isRecord(value) && value.op === undefined && value.packet === undefined && typeof value.event === "string" && value.data !== undefined) {
    const { event, data } = value
    const inner = innerJson(data, `"data"`)
    if (inner !== undefined && !inner.ok) return inner
    const body = inner === undefined ? data : inner.value
    if (event === "SEND") value = body
    else if (/^\d{1,9}$/.test(event) && isRecord(body)) value = { ...body, shard_id: Number(event) }
    else return { ok: false, refusal: refusal("malformed", `"event" must be "SEND" (or a shard id) to carry a command, got ${describe(event)}`) }
  }
  if (isRecord(value) && value.op === undefined && value.packet !== undefined) {
    const packet = innerJson(value.packet, `"packet"`) ?? { ok: true, value: value.packet, format: parsed.format }
    if (!packet.ok) return packet
    if (!isRecord(packet.value)) {
      return { ok: false, refusal: refusal("not_object", `"packet" must be an object with "op" and "d", got ${describe(packet.value)}`) }
    }
    const { packet: _, ...routing } = value
    value = { ...routing, op: packet.value.op, d: packet.value.d }
  }
  return value === parsed.value ? parsed : { ok: true, value, format: parsed.format }
}

/**
 * Decodes a command and works out where it goes. Targets, first match wins:
 * 1. `shard_id`: that shard (an integer in [0, shardCount)).
 * 2. `guild_id` next to op and d: the guild's shard.
 * 3. What `d` says (`defaultTarget`).
 * `null` counts as absent for both fields.
 */
export const decodeCommand = (raw: Uint8Array | string, shardCount: number): Decoded<Command> => {
  const envelope = decodeEnvelope(raw)
  if (!envelope.ok) return envelope
  const { op, d, payload, fields } = envelope.value
  const target = explicitTarget(fields, shardCount) ?? defaultTarget(op, d)
  if (isRefusal(target)) return refuse(target)
  return ok({ op, d, payload, target })
}

const explicitTarget = (fields: Record<string, unknown>, shardCount: number): Target | Refusal | undefined => {
  const shardId = fields.shard_id
  if (shardId !== undefined && shardId !== null) {
    if (typeof shardId !== "number" || !Number.isInteger(shardId) || shardId < 0 || shardId >= shardCount) {
      return refusal("bad_shard_id", `"shard_id" must be an integer from 0 to ${shardCount - 1} (the bot has ${shardCount} shard(s)), got ${describe(shardId)}`)
    }
    return { shard: shardId }
  }
  const guildId = fields.guild_id
  if (guildId !== undefined && guildId !== null) {
    const guild = parseSnowflake(guildId)
    if (guild === undefined) return refusal("bad_guild_id", `"guild_id" must be a snowflake (a string of digits), got ${describe(guildId)}`)
    return { guild }
  }
  return undefined
}

/** Ops that act on one guild and must go to its shard (Voice State, Request Guild Members, Channel Info). */
const GUILD_OPS: ReadonlySet<number> = new Set([Op.VoiceStateUpdate, Op.RequestGuildMembers, Op.RequestChannelInfo])

/**
 * Without an explicit target the payload decides: guild ops go to `d.guild_id`'s shard (they
 * carry it anyway, and Discord only answers on that shard); Request Soundboard Sounds is split
 * by the shards of `d.guild_ids`; anything else with a `d.guild_id` follows it; the rest
 * (Presence Update) goes to every shard, since presence is per session.
 */
export const defaultTarget = (op: number, d: Record<string, unknown>): Target | Refusal => {
  if (op === Op.RequestSoundboardSounds) {
    const ids = d.guild_ids
    if (!Array.isArray(ids) || ids.length === 0) {
      return refusal("bad_guild_id", `op 31 needs "d.guild_ids" (a non-empty array of snowflakes), or an explicit "shard_id"`)
    }
    const guilds: Array<bigint> = []
    for (const id of ids) {
      const guild = parseSnowflake(id)
      if (guild === undefined) return refusal("bad_guild_id", `"d.guild_ids" must hold snowflakes, got ${describe(id)}`)
      guilds.push(guild)
    }
    return { guilds }
  }
  const guildId = d.guild_id
  if (guildId === undefined || guildId === null) {
    if (GUILD_OPS.has(op)) return refusal("bad_guild_id", `op ${op} needs "d.guild_id" to find its shard, or an explicit "shard_id"`)
    return "all"
  }
  const guild = parseSnowflake(guildId)
  if (guild === undefined) return refusal("bad_guild_id", `"d.guild_id" must be a snowflake (a string of digits), got ${describe(guildId)}`)
  return { guild }
}

/** A short, safe description of a wrong value for an error message (never the whole value). */
const describe = (value: unknown): string => {
  if (typeof value === "string") return value.length > 24 ? `a ${value.length}-character string` : JSON.stringify(value)
  if (typeof value === "number" || typeof value === "boolean" || typeof value === "bigint") return String(value)
  if (value === null) return "null"
  if (Array.isArray(value)) return "an array"
  return `a ${typeof value}`
}
