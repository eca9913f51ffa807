// Migration from the original Go gateway, command side: its command shapes, in every encoding
// its clients used, decode to the same command as ours and route the same way.
import { encode } from "@msgpack/msgpack"
import { describe, expect, it } from "vitest"
import { type Command, decodeCommand, type Decoded } from "../../src/Commands/Command.ts"
import { CommandFramer } from "../../src/Commands/StdinFramer.ts"
import { commandParts } from "../../src/Commands/Targets.ts"
import { goRaw } from "./goWire.ts"

const accepted = (decoded: Decoded<Command>): Command => {
  if (!decoded.ok) throw new Error(`refused: ${decoded.refusal.reason}: ${decoded.refusal.detail}`)
  return decoded.value
}
const refused = (decoded: Decoded<Command>) => {
  if (decoded.ok) throw new Error("expected a refusal")
  return decoded.refusal
}

const SHARDS = 4
/** (id >> 22) % 4 === 3 */
const GUILD = String((3n + 4n * 1000n) << 22n)
const voice = { guild_id: GUILD, channel_id: null, self_mute: false, self_deaf: false }
const presence = { since: null, activities: [{ name: "go", type: 0 }], status: "online", afk: false }
/** The Go gateway's SEND packet: json.Marshal of {guild_id (as a string), packet {op, d}}. */
const goSend = (op: number, d: unknown, guildId = GUILD) => JSON.stringify({ guild_id: guildId, packet: { op, d } })

const ours = accepted(decodeCommand(JSON.stringify({ op: 4, guild_id: GUILD, d: voice }), SHARDS))

describe("the Go gateway's command shape {guild_id, packet: {op, d}}", () => {
  const forms: ReadonlyArray<readonly [string, Uint8Array | string]> = [
    ["JSON text", goSend(4, voice)],
    ["JSON bytes", Buffer.from(goSend(4, voice))],
    ["a MessagePack map", encode({ guild_id: GUILD, packet: { op: 4, d: voice } })],
    ["JSON text in a Go-written MessagePack raw (str16)", goRaw(goSend(4, voice))],
    ["JSON text in a MessagePack str8", encode(goSend(4, voice))],
    ["JSON text in a MessagePack bin", encode(Buffer.from(goSend(4, voice)))],
    ["JSON text in a JSON string", JSON.stringify(goSend(4, voice))],
    ["a MessagePack map whose packet is JSON text", encode({ guild_id: GUILD, packet: JSON.stringify({ op: 4, d: voice }) })]
  ]
  for (const [name, raw] of forms) {
    it(`decodes ${name} to the same command as ours, routed to the guild's shard`, () => {
      const command = accepted(decodeCommand(raw, SHARDS))
      expect(command).toEqual(ours)
      expect(commandParts(command, SHARDS)).toEqual([{ shard: 3, payload: JSON.stringify({ op: 4, d: voice }) }])
    })
  }

  it("routes by shard_id beside packet, and by what d says without a guild_id", () => {
    const toShard = accepted(decodeCommand(JSON.stringify({ shard_id: 1, packet: { op: 3, d: presence } }), SHARDS))
    expect(commandParts(toShard, SHARDS)).toEqual([{ shard: 1, payload: JSON.stringify({ op: 3, d: presence }) }])
    const everywhere = accepted(decodeCommand(goRaw(JSON.stringify({ packet: { op: 3, d: presence } })), SHARDS))
    expect(commandParts(everywhere, SHARDS).map((p) => p.shard)).toEqual([0, 1, 2, 3])
    // A guild id as a JSON number keeps its digits.
    const big = accepted(decodeCommand(`{"guild_id":1234567890123456789,"packet":{"op":3,"d":${JSON.stringify(presence)}}}`, SHARDS))
    expect(big.target).toEqual({ guild: 1234567890123456789n })
  })

  it("refuses what cannot be a command, with the usual reasons", () => {
    expect(refused(decodeCommand(JSON.stringify({ guild_id: GUILD, packet: 7 }), SHARDS)).reason).toBe("not_object")
    expect(refused(decodeCommand(JSON.stringify({ guild_id: GUILD, packet: { d: voice } }), SHARDS)).reason).toBe("bad_op")
    expect(refused(decodeCommand(goSend(2, { token: "x" }), SHARDS)).reason).toBe("op_not_allowed")
    expect(refused(decodeCommand(goSend(4, voice, "abc"), SHARDS)).reason).toBe("bad_guild_id")
    expect(refused(decodeCommand(goRaw(`{"guild_id": "1", "packet": `), SHARDS))).toMatchObject({ reason: "malformed" })
    expect(refused(decodeCommand(goRaw("hello"), SHARDS)).reason).toBe("not_object")
    expect(refused(decodeCommand(goSend(4, { ...voice, pad: "x".repeat(5000) }), SHARDS)).reason).toBe("too_large")
  })
})

describe("the Go gateway's stdin framing {event, data}", () => {
  it("reads event SEND as a command and a shard id as a payload for that shard, from a MessagePack stream", () => {
    // Its RWBroker wrote and read a MessagePack stream of {event, data} maps.
    const stream = Buffer.concat([
      Buffer.concat([Buffer.from([0x82]), goRaw("event"), goRaw("SEND"), goRaw("data"), goRaw(goSend(4, voice))]),
      encode({ event: "2", data: { op: 3, d: presence } }),
      encode({ event: "SEND", data: { guild_id: GUILD, packet: { op: 4, d: voice } } })
    ])
    const framer = new CommandFramer()
    const frames = framer.push(stream)
    expect(frames.map((f) => f.kind)).toEqual(["command", "command", "command"])
    const commands = frames.map((f) => (f.kind === "command" ? accepted(decodeCommand(f.bytes, SHARDS)) : undefined))
    expect(commands[0]).toEqual(ours)
    expect(commandParts(commands[1]!, SHARDS)).toEqual([{ shard: 2, payload: JSON.stringify({ op: 3, d: presence }) }])
    expect(commands[2]).toEqual(ours)
  })

  it("refuses other events", () => {
    expect(refused(decodeCommand(encode({ event: "MESSAGE_CREATE", data: {} }), SHARDS))).toMatchObject({ reason: "malformed" })
  })
})

describe("our own shapes are unchanged", () => {
  it("still reads {op, d, guild_id} and refuses a bare string", () => {
    expect(ours.target).toEqual({ guild: BigInt(GUILD) })
    expect(refused(decodeCommand(JSON.stringify("text"), SHARDS)).reason).toBe("not_object")
    // A command with both op and packet is ours: packet is an extra field, ignored.
    expect(accepted(decodeCommand(JSON.stringify({ op: 3, d: presence, packet: { op: 4, d: voice } }), SHARDS)).op).toBe(3)
  })
})
