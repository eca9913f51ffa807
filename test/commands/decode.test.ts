// Decoding, validation and routing of commands: pure functions, no I/O.
import { encode } from "@msgpack/msgpack"
import { describe, expect, it } from "vitest"
import { type Command, decodeCommand, type Decoded } from "../../src/Commands/Command.ts"
import { CommandCounters } from "../../src/Commands/CommandStats.ts"
import { excerpt } from "../../src/Commands/excerpt.ts"
import { quoteLargeIntegers } from "../../src/Commands/RawValue.ts"
import { parseSnowflake, shardOfGuild } from "../../src/Commands/Snowflake.ts"
import { commandParts } from "../../src/Commands/Targets.ts"

const json = (value: unknown) => JSON.stringify(value)
const accepted = (decoded: Decoded<Command>): Command => {
  if (!decoded.ok) throw new Error(`refused: ${decoded.refusal.reason}: ${decoded.refusal.detail}`)
  return decoded.value
}
const reasonOf = (decoded: Decoded<Command>) => (decoded.ok ? "accepted" : decoded.refusal.reason)
const voice = (guild_id: unknown) => ({ guild_id, channel_id: null, self_mute: false, self_deaf: false })
const presence = { since: null, activities: [{ name: "tests", type: 0 }], status: "online", afk: false }

describe("routing by guild uses 64-bit math", () => {
  it("routes a large snowflake with bigint, where 32-bit shifts of a double would be wrong", () => {
    const id = "1234567890123456789"
    expect(1234567890123456789n >> 22n).toBe(294343922167n)
    // The classic bug: Number(id) >> 22 works on 32 bits and gives 503.
    expect(Number(id) >> 22).toBe(503)
    expect(shardOfGuild(BigInt(id), 1000)).toBe(167)
    expect(shardOfGuild(BigInt(id), 3)).toBe(1)
    for (const count of [1, 2, 16, 100, 1000, 4096]) expect(shardOfGuild(BigInt(id), count)).toBe(Number(294343922167n % BigInt(count)))
    const command = accepted(decodeCommand(json({ op: 4, d: voice(id) }), 1000))
    expect(command.target).toEqual({ guild: 1234567890123456789n })
    expect(commandParts(command, 1000)).toEqual([{ shard: 167, payload: json({ op: 4, d: voice(id) }) }])
  })

  it("keeps every digit of a snowflake written as a JSON number, and sends it as a string", () => {
    const text = `{"op":4,"guild_id":1234567890123456789,"d":{"guild_id":1234567890123456789,"channel_id":null,"self_mute":false,"self_deaf":false}}`
    const command = accepted(decodeCommand(text, 1000))
    expect(command.target).toEqual({ guild: 1234567890123456789n })
    expect(commandParts(command, 1000)[0]!.shard).toBe(167)
    expect(command.payload).toBe(json({ op: 4, d: voice("1234567890123456789") }))
  })

  it("parses snowflakes as strings, safe integers and bigints only", () => {
    expect(parseSnowflake("81384788765712384")).toBe(81384788765712384n)
    expect(parseSnowflake(12345)).toBe(12345n)
    expect(parseSnowflake(2n ** 63n)).toBe(2n ** 63n)
    expect(parseSnowflake("18446744073709551615")).toBe(2n ** 64n - 1n)
    for (const bad of ["18446744073709551616", "-1", "12a", "", " 1", 1.5, -3, 2 ** 60, null, true, {}]) {
      expect(parseSnowflake(bad)).toBeUndefined()
    }
  })
})

describe("targets", () => {
  it("takes shard_id first, then guild_id, then what d says", () => {
    expect(accepted(decodeCommand(json({ op: 4, shard_id: 3, guild_id: "1", d: voice("4194304") }), 4)).target).toEqual({ shard: 3 })
    expect(accepted(decodeCommand(json({ op: 4, guild_id: "4194304", d: voice("1") }), 4)).target).toEqual({ guild: 4194304n })
    expect(accepted(decodeCommand(json({ op: 8, d: { guild_id: "8388608", query: "", limit: 0 } }), 4)).target).toEqual({ guild: 8388608n })
    expect(accepted(decodeCommand(json({ op: 43, d: { guild_id: "12582912", fields: ["status"] } }), 4)).target).toEqual({ guild: 12582912n })
    expect(accepted(decodeCommand(json({ op: 3, d: presence }), 4)).target).toBe("all")
    // null counts as absent
    expect(accepted(decodeCommand(json({ op: 3, shard_id: null, guild_id: null, d: presence }), 4)).target).toBe("all")
  })

  it("sends only op and d, and a broadcast to every shard of the bot", () => {
    const command = accepted(decodeCommand(json({ op: 3, d: presence, extra: "ignored", shard_id: null }), 3))
    expect(command.payload).toBe(`{"op":3,"d":${json(presence)}}`)
    expect(commandParts(command, 3).map((p) => p.shard)).toEqual([0, 1, 2])
  })

  it("splits Request Soundboard Sounds by the shards of its guilds, keeping the ids as written", () => {
    // (id >> 22) % 2: 4194304 -> 1, 8388608 -> 0, 12582912 -> 1
    const command = accepted(decodeCommand(json({ op: 31, d: { guild_ids: ["4194304", "8388608", 12582912] } }), 2))
    expect(commandParts(command, 2)).toEqual([
      { shard: 0, payload: json({ op: 31, d: { guild_ids: ["8388608"] } }) },
      { shard: 1, payload: json({ op: 31, d: { guild_ids: ["4194304", 12582912] } }) }
    ])
    // All on one shard: the original payload.
    const one = accepted(decodeCommand(json({ op: 31, d: { guild_ids: ["4194304", "12582912"] } }), 2))
    expect(commandParts(one, 2)).toEqual([{ shard: 1, payload: one.payload }])
  })
})

describe("MessagePack", () => {
  it("decodes a map, routes a uint64 guild id and turns 64-bit small integers into numbers", () => {
    const bytes = encode({ op: 8, d: { guild_id: 1234567890123456789n, query: "", limit: 0, nonce: "n1", since: 1712345678901n } }, { useBigInt64: true })
    const command = accepted(decodeCommand(bytes, 16))
    expect(command.target).toEqual({ guild: 1234567890123456789n })
    expect(JSON.parse(command.payload)).toEqual({ op: 8, d: { guild_id: "1234567890123456789", query: "", limit: 0, nonce: "n1", since: 1712345678901 } })
  })

  it("tells MessagePack from JSON by the first byte, whitespace allowed before JSON", () => {
    const fromPack = accepted(decodeCommand(Buffer.from(encode({ op: 3, shard_id: 1, d: presence })), 2))
    const fromText = accepted(decodeCommand(Buffer.from(`  \n\t${json({ op: 3, shard_id: 1, d: presence })}`), 2))
    expect(fromPack).toEqual(fromText)
    expect(reasonOf(decodeCommand(encode([1, 2]), 2))).toBe("not_object")
    expect(reasonOf(decodeCommand(encode({ op: 3, d: { blob: new Uint8Array([1, 2]) } }), 2))).toBe("malformed")
    expect(reasonOf(decodeCommand(Buffer.from([0x83, 0xa2, 0x6f]), 2))).toBe("malformed")
  })
})

describe("refusals", () => {
  const refusedAs = (raw: string | Uint8Array, shardCount = 4) => reasonOf(decodeCommand(raw, shardCount))

  it("refuses input that is not a JSON object or MessagePack map", () => {
    expect(refusedAs("{not json")).toBe("malformed")
    expect(refusedAs("")).toBe("malformed")
    expect(refusedAs(Buffer.from("   "))).toBe("malformed")
    expect(refusedAs("[1,2]")).toBe("not_object")
    expect(refusedAs("42")).toBe("not_object")
    expect(refusedAs("null")).toBe("not_object")
  })

  it("refuses ops a bot may not send: receive-only, gateway-internal and unknown ones", () => {
    for (const op of [0, 1, 2, 5, 6, 7, 9, 10, 11, 12, 99, -1]) expect(refusedAs(json({ op, d: {} }))).toBe("op_not_allowed")
    for (const op of [3, 4, 8, 31, 43]) expect(refusedAs(json({ op, shard_id: 0, d: { guild_ids: ["1"] } }))).toBe("accepted")
    expect(refusedAs(json({ d: {} }))).toBe("bad_op")
    expect(refusedAs(json({ op: "3", d: {} }))).toBe("bad_op")
    expect(refusedAs(json({ op: 3.5, d: {} }))).toBe("bad_op")
  })

  it("refuses a missing or non-object d", () => {
    expect(refusedAs(json({ op: 3 }))).toBe("bad_d")
    expect(refusedAs(json({ op: 3, d: null }))).toBe("bad_d")
    expect(refusedAs(json({ op: 3, d: [1] }))).toBe("bad_d")
    expect(refusedAs(json({ op: 3, d: "online" }))).toBe("bad_d")
  })

  it("refuses a shard_id that is not an integer below the shard count", () => {
    expect(refusedAs(json({ op: 3, shard_id: 4, d: presence }), 4)).toBe("bad_shard_id")
    expect(refusedAs(json({ op: 3, shard_id: -1, d: presence }), 4)).toBe("bad_shard_id")
    expect(refusedAs(json({ op: 3, shard_id: 1.5, d: presence }), 4)).toBe("bad_shard_id")
    expect(refusedAs(json({ op: 3, shard_id: "1", d: presence }), 4)).toBe("bad_shard_id")
    expect(refusedAs(json({ op: 3, shard_id: 3, d: presence }), 4)).toBe("accepted")
  })

  it("refuses guild ids that are not snowflakes, and guild ops without one", () => {
    expect(refusedAs(json({ op: 4, guild_id: "abc", d: voice("1") }))).toBe("bad_guild_id")
    expect(refusedAs(json({ op: 4, guild_id: -5, d: voice("1") }))).toBe("bad_guild_id")
    expect(refusedAs(json({ op: 4, d: voice("12.5") }))).toBe("bad_guild_id")
    expect(refusedAs(json({ op: 4, d: { channel_id: null } }))).toBe("bad_guild_id")
    expect(refusedAs(json({ op: 8, d: { query: "", limit: 0 } }))).toBe("bad_guild_id")
    expect(refusedAs(json({ op: 31, d: { guild_ids: [] } }))).toBe("bad_guild_id")
    expect(refusedAs(json({ op: 31, d: { guild_ids: ["1", "x"] } }))).toBe("bad_guild_id")
    // An explicit shard_id makes d's guild id the bot's business.
    expect(refusedAs(json({ op: 4, shard_id: 1, d: { channel_id: null } }))).toBe("accepted")
  })

  it("refuses a payload over 4096 bytes, counting what is sent (op and d), in UTF-8 bytes", () => {
    const prefix = `{"op":3,"d":{"status":"`
    const fits = "x".repeat(4096 - prefix.length - 3)
    const fitting = `${prefix}${fits}"}}`
    expect(Buffer.byteLength(fitting)).toBe(4096)
    const withRouting = (status: string) => json({ op: 3, shard_id: 0, d: { status }, padding: "p".repeat(200) })
    expect(refusedAs(withRouting(fits))).toBe("accepted")
    expect(refusedAs(withRouting(`${fits}x`))).toBe("too_large")
    // "é" is two bytes: the limit is bytes, not characters.
    expect(refusedAs(withRouting(`${fits.slice(2)}é`))).toBe("accepted")
    expect(refusedAs(withRouting(`${fits.slice(1)}é`))).toBe("too_large")
    expect(refusedAs("x".repeat(70_000))).toBe("too_large")
  })
})

describe("quoteLargeIntegers", () => {
  it("quotes only integer literals beyond 2^53, never inside strings", () => {
    expect(quoteLargeIntegers(`{"a":1234567890123456789,"b":"1234567890123456789","c":9007199254740991}`))
      .toBe(`{"a":"1234567890123456789","b":"1234567890123456789","c":9007199254740991}`)
    expect(quoteLargeIntegers(`[-12345678901234567890, 1.2345678901234567890, 12345678901234567890e2]`))
      .toBe(`["-12345678901234567890", 1.2345678901234567890, 12345678901234567890e2]`)
    expect(quoteLargeIntegers(`{"s":"a\\"1234567890123456789\\\\","n":1234567890123456789}`))
      .toBe(`{"s":"a\\"1234567890123456789\\\\","n":"1234567890123456789"}`)
  })
})

describe("log excerpts", () => {
  it("shows at most ~100 characters and never a token", () => {
    const token = "NzkyNzE1NDU0MTk2MDg4ODQy.X-hvzA.Ovy4MCQywSkoMRRclStW4xAYK7I"
    const shown = excerpt(json({ op: 2, d: { token, intents: 513, properties: { os: "linux" } } }))
    expect(shown).not.toContain(token.slice(0, 12))
    expect(shown).toContain("[redacted]")
    expect(excerpt("y".repeat(5000)).length).toBeLessThanOrEqual(101)
    expect(excerpt(`{"data":"${token}"}`)).not.toContain(token.slice(0, 12))
    expect(excerpt(encode({ op: 2, d: { token } }))).toMatch(/bytes of binary/)
    expect(excerpt("line\nbreak\u0000")).toBe("line break")
  })
})

describe("CommandCounters", () => {
  it("counts refusals by reason and summarises", () => {
    const counters = new CommandCounters()
    counters.received += 3
    counters.sent += 4
    counters.refuse("malformed")
    counters.refuse("op_not_allowed")
    counters.refuse("malformed")
    expect(counters.refused.get("malformed")).toBe(2)
    expect(counters.refusedTotal).toBe(3)
    expect(counters.summary()).toBe("3 received, 4 sent, 0 forwarded, 3 refused (malformed 2, op_not_allowed 1)")
  })
})
