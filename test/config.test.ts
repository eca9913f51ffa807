import { Effect, Exit, Redacted, Result } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { parseArgs } from "../src/Config/args.ts"
import { ConfigError, HelpRequested } from "../src/Config/ConfigError.ts"
import { parseDuration } from "../src/Config/duration.ts"
import type { GatewayConfig } from "../src/Config/GatewayConfig.ts"
import { loadConfig } from "../src/Config/load.ts"
import { closest, editDistance } from "../src/Config/suggest.ts"
import { sanitizeTomlMessage } from "../src/Config/toml.ts"
import { validate } from "../src/Config/validate.ts"
import { closestDispatchEvent, closestIntentName } from "../src/Config/discord.ts"
import { isKnownDispatchEvent } from "../src/Discord/Events.ts"
import {
  ALL_DOCUMENTED_INTENTS,
  intentBit,
  intentNamesOf,
  INTENTS,
  NON_PRIVILEGED_INTENTS,
  PRIVILEGED_INTENTS,
  privilegedIntentNames
} from "../src/Discord/Intents.ts"

const TOKEN = "MTIzNDU2Nzg5MDEyMzQ1Njc4.GaBcDe.s3cr3t-t0ken-VALUE_abcdefghijklmnop"
const PASSWORD = "hunter2-very-secret"
const BASE_ENV = { DISCORD_TOKEN: TOKEN, DISCORD_EVENTS: "MESSAGE_CREATE" }

const dirs: Array<string> = []
afterAll(() => dirs.forEach((dir) => fs.rmSync(dir, { recursive: true, force: true })))

const tempDir = (files: Record<string, string> = {}): string => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "gateway-config-"))
  dirs.push(dir)
  for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), text)
  return dir
}

interface Case {
  readonly argv?: ReadonlyArray<string>
  readonly env?: Record<string, string | undefined>
  /** Written to gateway.toml in a fresh cwd. */
  readonly toml?: string
  readonly cwd?: string
}

const run = (c: Case) => {
  const cwd = c.cwd ?? tempDir()
  if (c.toml !== undefined) fs.writeFileSync(path.join(cwd, "gateway.toml"), c.toml)
  return Effect.runPromiseExit(loadConfig({ argv: c.argv ?? [], env: c.env ?? {}, cwd }))
}

const load = async (c: Case): Promise<GatewayConfig> => {
  const exit = await run(c)
  if (Exit.isFailure(exit)) throw new Error(`expected success, got ${String(exit.cause)}`)
  return exit.value
}

/** The ConfigError a case fails with; also checks the message is one line and keeps secrets. */
const failure = async (c: Case): Promise<ConfigError> => {
  const exit = await run(c)
  if (Exit.isSuccess(exit)) throw new Error("expected a ConfigError, got a config")
  const error = exit.cause.reasons[0]
  if (error?._tag !== "Fail" || !(error.error instanceof ConfigError)) throw new Error(`unexpected cause ${String(exit.cause)}`)
  const { message } = error.error
  expect(message).not.toMatch(/\n/)
  expect(message).not.toContain(TOKEN)
  expect(message).not.toContain(PASSWORD)
  expect(message.startsWith(`${error.error.key}: `)).toBe(true)
  return error.error
}

const expectError = async (c: Case, key: string, ...parts: Array<string | RegExp>) => {
  const error = await failure(c)
  expect(error.key).toBe(key)
  for (const part of parts) {
    if (typeof part === "string") expect(error.message).toContain(part)
    else expect(error.message).toMatch(part)
  }
  return error
}

// ---------------------------------------------------------------------------------------------

describe("Intents", () => {
  it("has the documented masks", () => {
    expect(ALL_DOCUMENTED_INTENTS).toBe(53608447)
    expect(PRIVILEGED_INTENTS).toBe(33026)
    expect(NON_PRIVILEGED_INTENTS).toBe(53575421)
    expect(INTENTS.GUILD_MESSAGE_POLLS).toBe(16777216)
    expect(INTENTS.AUTO_MODERATION_EXECUTION).toBe(2097152)
  })

  it("names privileged intents for a 4014 hint", () => {
    expect(privilegedIntentNames(ALL_DOCUMENTED_INTENTS)).toEqual(["GUILD_MEMBERS", "GUILD_PRESENCES", "MESSAGE_CONTENT"])
    expect(privilegedIntentNames(INTENTS.GUILDS | INTENTS.MESSAGE_CONTENT)).toEqual(["MESSAGE_CONTENT"])
    expect(privilegedIntentNames(NON_PRIVILEGED_INTENTS)).toEqual([])
    expect(intentNamesOf(513)).toEqual(["GUILDS", "GUILD_MESSAGES"])
  })

  it("resolves names and old aliases case-insensitively", () => {
    expect(intentBit("guilds")).toBe(1)
    expect(intentBit("GUILD_BANS")).toBe(INTENTS.GUILD_MODERATION)
    expect(intentBit("GUILD_EMOJIS")).toBe(INTENTS.GUILD_EXPRESSIONS)
    expect(intentBit("guild_emojis_and_stickers")).toBe(INTENTS.GUILD_EXPRESSIONS)
    expect(intentBit("GUILD")).toBe(INTENTS.GUILDS)
    expect(intentBit("GUILDZ")).toBeUndefined()
    expect(intentBit("toString")).toBeUndefined()
  })

  it("suggests the closest name", () => {
    expect(closestIntentName("GUILD")).toBe("GUILDS")
    expect(closestIntentName("guild")).toBe("GUILDS")
    expect(closestIntentName("GUILD_MESAGES")).toBe("GUILD_MESSAGES")
    expect(closestIntentName("MESSAGE_CONTNET")).toBe("MESSAGE_CONTENT")
    expect(closestIntentName("GUILD_MESS")).toBe("GUILD_MESSAGES")
    expect(closestIntentName("PRESENCES")).toBe("GUILD_PRESENCES")
    expect(closestIntentName("XYZZY")).toBeUndefined()
  })
})

describe("Events", () => {
  it("knows the documented dispatch names", () => {
    expect(isKnownDispatchEvent("MESSAGE_CREATE")).toBe(true)
    expect(isKnownDispatchEvent("VOICE_CHANNEL_START_TIME_UPDATE")).toBe(true)
    expect(isKnownDispatchEvent("HELLO")).toBe(false)
    expect(closestDispatchEvent("MESAGE_CREATE")).toBe("MESSAGE_CREATE")
  })
})

describe("suggest", () => {
  it("measures edit distance without case", () => {
    expect(editDistance("kitten", "sitting")).toBe(3)
    expect(editDistance("ABC", "abc")).toBe(0)
    expect(editDistance("", "abc")).toBe(3)
  })
  it("prefers a candidate that extends the input on a tie", () => {
    expect(closest("tyep", ["type", "group"])).toBe("type")
    expect(closest("GUILD", ["GUILD_BANS", "GUILDS", "BUILD"])).toBe("GUILDS")
    expect(closest("zzzzzz", ["type"])).toBeUndefined()
  })
})

describe("parseDuration", () => {
  const ok = (text: string, ms: number) => expect(parseDuration(text)).toEqual(Result.succeed(ms))
  it("accepts Go-style and human durations", () => {
    ok("2m", 120_000)
    ok("30s", 30_000)
    ok("1500ms", 1500)
    ok("1h30m", 5_400_000)
    ok("1h 30m 15s", 5_415_000)
    ok("10 seconds", 10_000)
    ok("1 minute", 60_000)
    ok("1.5s", 1500)
    ok("2 HOURS", 7_200_000)
    ok("1d", 86_400_000)
    ok("0", 0)
    ok("0s", 0)
  })
  it("refuses ambiguous and malformed values", () => {
    for (const bad of ["10", "abc", "5 fortnights", "-1s", "1s garbage", "s", "", "30d"]) {
      expect(Result.isFailure(parseDuration(bad)), bad).toBe(true)
    }
    const fail = parseDuration("10")
    expect(Result.isFailure(fail) && fail.failure).toContain("no unit")
  })
})

describe("flags", () => {
  it("--help and -h ask main to print usage, whatever else is on the line", async () => {
    for (const argv of [["--help"], ["-h"], ["--bogus", "--help"], ["--config", "x.toml", "-h"]]) {
      const exit = await run({ argv })
      expect(Exit.isFailure(exit)).toBe(true)
      if (Exit.isFailure(exit)) {
        const reason = exit.cause.reasons[0]
        expect(reason?._tag === "Fail" && reason.error instanceof HelpRequested).toBe(true)
        if (reason?._tag === "Fail" && reason.error instanceof HelpRequested) expect(reason.error.usage).toContain("--config PATH")
      }
    }
  })

  it("parses --config in both spellings and --log-level", () => {
    expect(parseArgs(["--config", "a.toml"])).toEqual(Result.succeed({ configPath: "a.toml", logLevel: undefined }))
    expect(parseArgs(["--config=b.toml", "--log-level=DEBUG"])).toEqual(Result.succeed({ configPath: "b.toml", logLevel: "debug" }))
  })

  it("reports a flag without its value", async () => {
    await expectError({ argv: ["--config"] }, "--config", "expected a value")
    await expectError({ argv: ["--config="] }, "--config", "expected a value")
    await expectError({ argv: ["--config", "--log-level", "info"] }, "--config", "expected a value")
    await expectError({ argv: ["--log-level"] }, "--log-level", "expected a value")
  })

  it("rejects unknown flags with a suggestion", async () => {
    await expectError({ argv: ["--verbose"] }, "--verbose", "unknown flag", "--help")
    await expectError({ argv: ["--confg", "x"] }, "--confg", `did you mean "--config"?`)
    await expectError({ argv: ["--logleve=debug"] }, "--logleve", `did you mean "--log-level"?`)
    await expectError({ argv: ["-v"] }, "-v", "unknown flag")
  })

  it("rejects positional arguments without echoing them (it may be a pasted token)", async () => {
    const error = await expectError({ argv: [TOKEN] }, "arguments", "unexpected argument #1")
    expect(error.message).not.toContain(TOKEN)
    await expectError({ argv: [`--token=${TOKEN}`] }, "--token", "unknown flag")
  })

  it("validates --log-level", async () => {
    await expectError({ argv: ["--log-level", "verbose"] }, "--log-level", "trace, debug, info, warn, error", `"verbose"`)
    await expectError({ argv: ["--log-level", "warning"] }, "--log-level", `did you mean "warn"?`)
  })

  it("--log-level wins over LOG_LEVEL, which wins over log_level", async () => {
    const toml = `log_level = "error"\n`
    expect((await load({ env: BASE_ENV, toml })).logLevel).toBe("error")
    expect((await load({ env: { ...BASE_ENV, LOG_LEVEL: "WARN" }, toml })).logLevel).toBe("warn")
    expect((await load({ argv: ["--log-level", "trace"], env: { ...BASE_ENV, LOG_LEVEL: "warn" }, toml })).logLevel).toBe("trace")
    await expectError({ env: { ...BASE_ENV, LOG_LEVEL: "loud" } }, "LOG_LEVEL", "expected one of")
    await expectError({ env: BASE_ENV, toml: "log_level = 3" }, "log_level", "expected one of")
  })
})

describe("config file", () => {
  it("runs without a gateway.toml", async () => {
    const config = await load({ env: BASE_ENV })
    expect(Redacted.value(config.token)).toBe(TOKEN)
  })

  it("reads gateway.toml from cwd", async () => {
    const config = await load({ toml: `token = "${TOKEN}"\nevents = ["GUILD_CREATE"]\n` })
    expect(Redacted.value(config.token)).toBe(TOKEN)
    expect([...config.events.names]).toEqual(["GUILD_CREATE"])
  })

  it("reads --config relative to cwd, in both spellings", async () => {
    const cwd = tempDir({ "custom.toml": `token = "${TOKEN}"\nevents = ["READY"]\n`, "gateway.toml": "this is not toml" })
    for (const argv of [["--config", "custom.toml"], ["--config=custom.toml"]]) {
      expect([...(await load({ argv, cwd })).events.names]).toEqual(["READY"])
    }
    const abs = path.join(cwd, "custom.toml")
    expect([...(await load({ argv: ["--config", abs], cwd: tempDir() })).events.names]).toEqual(["READY"])
  })

  it("fails when an explicit --config file is missing, naming the path", async () => {
    await expectError({ argv: ["--config", "missing.toml"], env: BASE_ENV }, "--config", `"missing.toml" not found`)
  })

  it("fails when --config names a directory", async () => {
    const cwd = tempDir()
    fs.mkdirSync(path.join(cwd, "dir.toml"))
    await expectError({ argv: ["--config", "dir.toml"], env: BASE_ENV, cwd }, "--config", "is a directory")
  })

  it("reports TOML syntax errors on one line with the position", async () => {
    await expectError({ env: BASE_ENV, toml: "[shards]\ncount = \n" }, "gateway.toml", "invalid TOML", "line 2")
    await expectError({ env: BASE_ENV, toml: "a = 1\na = 2\n" }, "gateway.toml", "invalid TOML", "redefine")
  })

  it("never quotes an unquoted token or URL from a broken file", async () => {
    await expectError({ env: BASE_ENV, toml: `token = ${TOKEN}\n` }, "gateway.toml", "text must be in quotes")
    await expectError({ env: BASE_ENV, toml: `[amqp]\nurl = amqp://u:${PASSWORD}@host\n` }, "gateway.toml", "line 2")
    expect(sanitizeTomlMessage("Integer out of range '99999999999999999999' at line 1, column 3")).toBe(
      "Integer out of range at line 1, column 3"
    )
  })

  it("TOML inline tables and arrays of tables parse", async () => {
    const toml = `
[presence]
status = "idle"

[[presence.activities]]
name = "one"
type = 0

[[presence.activities]]
name = "two"
type = 3
`
    const config = await load({ env: BASE_ENV, toml })
    expect(config.presence).toEqual({
      since: null,
      afk: false,
      status: "idle",
      activities: [{ name: "one", type: 0 }, { name: "two", type: 3 }]
    })
  })

  it("rejects unknown keys anywhere, naming the key path", async () => {
    await expectError({ env: BASE_ENV, toml: `[broker]\ntyep = "redis"\n` }, "broker.tyep", "unknown key", `did you mean "type"?`)
    await expectError({ env: BASE_ENV, toml: `tokne = "x"\n` }, "tokne", `did you mean "token"?`)
    await expectError({ env: BASE_ENV, toml: `[shards]\ncout = 2\n` }, "shards.cout", `did you mean "count"?`)
    await expectError({ env: BASE_ENV, toml: `[shard]\ncount = 2\n` }, "shard", `did you mean "shards"?`)
    await expectError({ env: BASE_ENV, toml: `[broker]\nzzzzzz = 1\n` }, "broker.zzzzzz", "expected one of type, group")
    await expectError({ env: BASE_ENV, toml: `[presence.gaem]\nname = "x"\n` }, "presence.gaem", "unknown key")
    await expectError(
      { env: BASE_ENV, toml: `[presence]\nactivities = [{ nmae = "x", type = 0 }]\n` },
      "presence.activities[0].nmae",
      `did you mean "name"?`
    )
    await expectError({ env: BASE_ENV, toml: `shards = 4\n` }, "shards", "expected a table", "[shards]")
  })
})

describe("environment over file", () => {
  const toml = `
token = "file-token"
events = ["GUILD_CREATE"]
intents = ["GUILDS"]
[shards]
count = 4
[broker]
type = "stdout"
group = "from-file"
[api]
host = "file.example"
`
  it("wins key by key", async () => {
    const config = await load({ toml, env: { DISCORD_TOKEN: TOKEN, BROKER_GROUP: "from-env", DISCORD_SHARD_COUNT: "8" } })
    expect(Redacted.value(config.token)).toBe(TOKEN)
    expect(config.broker.group).toBe("from-env")
    expect(config.shards.count).toBe(8)
    // Keys the environment does not set still come from the file.
    expect([...config.events.names]).toEqual(["GUILD_CREATE"])
    expect(config.intents).toBe(1)
    expect(config.api.host).toBe("file.example")
  })

  it("treats empty and blank variables as unset", async () => {
    const config = await load({ toml, env: { DISCORD_TOKEN: "", BROKER_GROUP: "   ", DISCORD_EVENTS: "", DISCORD_SHARD_COUNT: undefined } })
    expect(Redacted.value(config.token)).toBe("file-token")
    expect(config.broker.group).toBe("from-file")
    expect(config.shards.count).toBe(4)
  })
})

describe("defaults", () => {
  it("fills every documented default", async () => {
    const cwd = tempDir()
    const config = await load({ env: BASE_ENV, cwd })
    expect(config.intents).toBe(53575421)
    expect(config.shards).toEqual({ count: undefined, ids: undefined, max: undefined, checkIntervalMs: 3_600_000 })
    expect(config.gatewayVersion).toBe(10)
    expect(config.compress).toBe("zlib-stream")
    expect(config.api).toEqual({ scheme: "https", host: "discord.com", version: 10 })
    expect(config.broker).toEqual({ type: "stdout", group: "gateway", messageTimeoutMs: 120_000, encoding: "json", bufferSize: 10_000 })
    expect(config.presence).toBeUndefined()
    expect(config.prometheus).toEqual({ address: undefined, endpoint: "/metrics" })
    expect(config.shardStore).toEqual({ type: "memory", prefix: "gateway:", path: path.join(cwd, ".gateway-state/shards.json") })
    expect(config.redis).toEqual({ urls: [], poolSize: 1 })
    expect(config.amqp).toEqual({ url: undefined })
    expect(config.shutdownTimeoutMs).toBe(10_000)
    expect(config.checkpointIntervalMs).toBe(1_000)
    expect(config.logLevel).toBe("info")
  })
})

describe("token", () => {
  it("is required", async () => {
    await expectError({ env: { DISCORD_EVENTS: "*" } }, "token", "no bot token; set DISCORD_TOKEN or token in gateway.toml")
    await expectError({ env: { DISCORD_EVENTS: "*" }, toml: `token = ""\n` }, "token", "no bot token")
  })

  it("loses a pasted Bot prefix", async () => {
    expect(Redacted.value((await load({ env: { ...BASE_ENV, DISCORD_TOKEN: `Bot ${TOKEN}` } })).token)).toBe(TOKEN)
    expect(Redacted.value((await load({ env: { DISCORD_EVENTS: "*" }, toml: `token = "bot  ${TOKEN}"` })).token)).toBe(TOKEN)
  })

  it("is redacted when printed", async () => {
    const config = await load({ env: BASE_ENV })
    expect(String(config.token)).not.toContain(TOKEN)
    expect(JSON.stringify(config)).not.toContain(TOKEN)
  })

  it("rejects malformed tokens without echoing them", async () => {
    await expectError({ env: { ...BASE_ENV, DISCORD_TOKEN: "Bot " } }, "DISCORD_TOKEN", `no token after the "Bot " prefix`)
    await expectError({ env: { ...BASE_ENV, DISCORD_TOKEN: `${TOKEN} extra` } }, "DISCORD_TOKEN", "contains whitespace")
    await expectError({ env: { DISCORD_EVENTS: "*" }, toml: "token = 1234" }, "token", "quoted string")
  })

  it("never appears in any error message", async () => {
    const env = { ...BASE_ENV, DISCORD_TOKEN: TOKEN }
    const cases: Array<Case> = [
      { env: { ...env, DISCORD_SHARD_COUNT: "x" } },
      { env: { ...env, BROKER_TYPE: "redis", REDIS_URL: `redis://:${PASSWORD}@` } },
      { env: { ...env, DISCORD_PRESENCE: `{"x":"${TOKEN}"}` } },
      { env, toml: `token = "${TOKEN}"\nbogus = 1` },
      { env, argv: ["--nope"] }
    ]
    for (const c of cases) await failure(c) // failure() asserts the token is absent
  })
})

describe("events", () => {
  it("is required and may not be empty", async () => {
    await expectError({ env: { DISCORD_TOKEN: TOKEN } }, "events", "no events selected", "DISCORD_EVENTS", `"*"`)
    await expectError({ env: { DISCORD_TOKEN: TOKEN }, toml: "events = []" }, "events", "no events selected")
    await expectError({ env: { DISCORD_TOKEN: TOKEN, DISCORD_EVENTS: " , " } }, "DISCORD_EVENTS", "no events selected")
  })

  it("parses lists, * and case", async () => {
    const config = await load({ env: { DISCORD_TOKEN: TOKEN, DISCORD_EVENTS: "message_create, GUILD_CREATE,," } })
    expect(config.events).toEqual({ all: false, names: new Set(["MESSAGE_CREATE", "GUILD_CREATE"]) })
    expect((await load({ env: { DISCORD_TOKEN: TOKEN, DISCORD_EVENTS: "*" } })).events).toEqual({ all: true, names: new Set() })
    expect((await load({ env: { DISCORD_TOKEN: TOKEN }, toml: `events = ["*", "READY"]` })).events.all).toBe(true)
  })

  it("keeps unknown names but warns", async () => {
    const result = validate({
      file: {},
      env: { DISCORD_TOKEN: TOKEN, DISCORD_EVENTS: "MESAGE_CREATE,SOME_FUTURE_EVENT" },
      args: { configPath: undefined, logLevel: undefined },
      cwd: "/"
    })
    expect(Result.isSuccess(result)).toBe(true)
    if (Result.isSuccess(result)) {
      expect([...result.success.config.events.names]).toEqual(["MESAGE_CREATE", "SOME_FUTURE_EVENT"])
      expect(result.success.warnings[0]).toContain(`did you mean "MESSAGE_CREATE"?`)
      expect(result.success.warnings).toHaveLength(2)
    }
  })

  it("rejects strings that cannot be event names", async () => {
    await expectError({ env: { DISCORD_TOKEN: TOKEN, DISCORD_EVENTS: "message create" } }, "DISCORD_EVENTS", "not an event name")
    await expectError({ env: { DISCORD_TOKEN: TOKEN }, toml: "events = [1]" }, "events", "quoted string")
    await expectError({ env: { DISCORD_TOKEN: TOKEN }, toml: "events = 1" }, "events", "expected an array")
  })
})

describe("intents", () => {
  const withEnv = (env: Record<string, string>) => load({ env: { ...BASE_ENV, ...env } })
  it("ORs names (current, aliases, any case) and raw bits", async () => {
    expect((await withEnv({ DISCORD_INTENTS: "GUILDS,guild_messages" })).intents).toBe(513)
    expect((await withEnv({ DISCORD_INTENTS: "GUILD_BANS,GUILD_EMOJIS" })).intents).toBe(12)
    expect((await withEnv({ DISCORD_RAW_INTENTS: "32768" })).intents).toBe(32768)
    expect((await withEnv({ DISCORD_INTENTS: "GUILDS", DISCORD_RAW_INTENTS: "512" })).intents).toBe(513)
    expect((await load({ env: BASE_ENV, toml: `intents = ["GUILDS"]\nraw_intents = 2` })).intents).toBe(3)
    expect((await load({ env: BASE_ENV, toml: `intents = []` })).intents).toBe(0)
  })

  it("suggests current names for misspelt ones", async () => {
    await expectError({ env: BASE_ENV, toml: `intents = ["GUILDZ"]` }, "intents", `unknown intent "GUILDZ" (did you mean "GUILDS"?)`)
    await expectError({ env: { ...BASE_ENV, DISCORD_INTENTS: "GUILDS,GUILD_MESAGES" } }, "DISCORD_INTENTS", `(did you mean "GUILD_MESSAGES"?)`)
    await expectError({ env: { ...BASE_ENV, DISCORD_INTENTS: "EVERYTHING" } }, "DISCORD_INTENTS", `unknown intent "EVERYTHING"`, "README.md")
  })

  it("points numbers at raw intents", async () => {
    await expectError({ env: { ...BASE_ENV, DISCORD_INTENTS: "513" } }, "DISCORD_INTENTS", "DISCORD_RAW_INTENTS")
    await expectError({ env: BASE_ENV, toml: `intents = ["513"]` }, "intents", "raw_intents")
  })

  it("validates raw intents", async () => {
    await expectError({ env: { ...BASE_ENV, DISCORD_RAW_INTENTS: "-1" } }, "DISCORD_RAW_INTENTS", "non-negative whole number", `"-1"`)
    await expectError({ env: { ...BASE_ENV, DISCORD_RAW_INTENTS: "0x10" } }, "DISCORD_RAW_INTENTS", "non-negative whole number")
    await expectError({ env: BASE_ENV, toml: "raw_intents = 1.5" }, "raw_intents", "non-negative whole number")
    await expectError({ env: { ...BASE_ENV, DISCORD_RAW_INTENTS: "4294967296" } }, "DISCORD_RAW_INTENTS", "larger than")
  })
})

describe("shards", () => {
  it("validates the count", async () => {
    await expectError(
      { env: { ...BASE_ENV, DISCORD_SHARD_COUNT: "four" } },
      "DISCORD_SHARD_COUNT",
      `expected a whole number of shards (1 or more), got "four"`
    )
    await expectError({ env: BASE_ENV, toml: "[shards]\ncount = 0" }, "shards.count", "got 0")
    await expectError({ env: BASE_ENV, toml: `[shards]\ncount = "4"` }, "shards.count", `got "4"`)
    expect((await load({ env: { ...BASE_ENV, DISCORD_SHARD_COUNT: "4" } })).shards).toEqual({ count: 4, ids: undefined, max: undefined, checkIntervalMs: 3_600_000 })
    expect((await load({ env: { ...BASE_ENV, DISCORD_SHARD_CHECK_INTERVAL: "5s" } })).shards.checkIntervalMs).toBe(5_000)
    expect((await load({ env: BASE_ENV, toml: `[shards]\ncheck_interval = "0"` })).shards.checkIntervalMs).toBe(0)
    await expectError({ env: BASE_ENV, toml: `[shards]\ncheck_interval = "soon"` }, "shards.check_interval", `"soon"`)
    expect((await load({ env: { ...BASE_ENV, DISCORD_SHARD_MAX: "3" } })).shards.max).toBe(3)
    await expectError({ env: BASE_ENV, toml: "[shards]\nmax = 0" }, "shards.max", "got 0")
  })

  it("expands ranges, sorts and dedupes", async () => {
    const config = await load({ env: { ...BASE_ENV, DISCORD_SHARD_COUNT: "40", DISCORD_SHARD_IDS: "32, 0-15,3" } })
    expect(config.shards.ids).toEqual([...Array.from({ length: 16 }, (_, i) => i), 32])
    const fromFile = await load({ env: BASE_ENV, toml: `[shards]\ncount = 10\nids = ["4-6", 1, "1", 9]` })
    expect(fromFile.shards.ids).toEqual([1, 4, 5, 6, 9])
  })

  it("requires ids below the count, naming the id and the count", async () => {
    await expectError(
      { env: { ...BASE_ENV, DISCORD_SHARD_COUNT: "16", DISCORD_SHARD_IDS: "0-15,16" } },
      "DISCORD_SHARD_IDS",
      "shard id 16 is not below the shard count 16"
    )
    await expectError(
      { env: BASE_ENV, toml: `[shards]\ncount = 8\nids = ["0-9"]` },
      "shards.ids",
      `shard id 9 (in range "0-9") is not below the shard count 8`
    )
  })

  it("requires a count when ids are given", async () => {
    await expectError({ env: { ...BASE_ENV, DISCORD_SHARD_IDS: "0" } }, "DISCORD_SHARD_IDS", "need the total shard count", "DISCORD_SHARD_COUNT")
    await expectError({ env: BASE_ENV, toml: "[shards]\nids = [0]" }, "shards.ids", "need the total shard count", "shards.count")
  })

  it("rejects malformed ids", async () => {
    const env = { ...BASE_ENV, DISCORD_SHARD_COUNT: "10" }
    await expectError({ env: { ...env, DISCORD_SHARD_IDS: "5-2" } }, "DISCORD_SHARD_IDS", "lower id first", `"2-5"`)
    await expectError({ env: { ...env, DISCORD_SHARD_IDS: "one" } }, "DISCORD_SHARD_IDS", `"one" is not a shard id`)
    await expectError({ env, toml: "[shards]\nids = [-1]" }, "shards.ids", "-1 is not a shard id")
    await expectError({ env, toml: "[shards]\nids = []" }, "shards.ids", "is empty")
    await expectError({ env, toml: "[shards]\nids = [true]" }, "shards.ids", "got true")
  })
})

describe("durations", () => {
  it("accepts strings and TOML milliseconds", async () => {
    const config = await load({
      env: { ...BASE_ENV, SHUTDOWN_TIMEOUT: "1m30s" },
      toml: `shutdown_timeout = "5s"\ncheckpoint_interval = 250\n[broker]\nmessage_timeout = "10 minutes"`
    })
    expect(config.shutdownTimeoutMs).toBe(90_000)
    expect(config.checkpointIntervalMs).toBe(250)
    expect(config.broker.messageTimeoutMs).toBe(600_000)
    expect((await load({ env: { ...BASE_ENV, BROKER_MESSAGE_TIMEOUT: "0" } })).broker.messageTimeoutMs).toBe(0)
  })

  it("names the key and shows a valid example", async () => {
    await expectError({ env: { ...BASE_ENV, BROKER_MESSAGE_TIMEOUT: "two minutes" } }, "BROKER_MESSAGE_TIMEOUT", `"30s"`)
    await expectError({ env: { ...BASE_ENV, SHUTDOWN_TIMEOUT: "10" } }, "SHUTDOWN_TIMEOUT", "no unit", `"30s"`)
    await expectError({ env: BASE_ENV, toml: "[broker]\nmessage_timeout = -5" }, "broker.message_timeout", "non-negative")
    await expectError({ env: BASE_ENV, toml: "shutdown_timeout = true" }, "shutdown_timeout", `"30s"`, "got true")
    await expectError({ env: { ...BASE_ENV, CHECKPOINT_INTERVAL: "0s" } }, "CHECKPOINT_INTERVAL", "longer than 0")
    await expectError({ env: { ...BASE_ENV, SHUTDOWN_TIMEOUT: "100d" } }, "SHUTDOWN_TIMEOUT", "too long")
  })
})

describe("gateway and api", () => {
  it("reads gateway_version, compress and [api]", async () => {
    const config = await load({
      env: { ...BASE_ENV, DISCORD_COMPRESS: "ZSTD-STREAM", DISCORD_API_HOST: "127.0.0.1:3000" },
      toml: `gateway_version = 9\n[api]\nscheme = "http"\nversion = 9`
    })
    expect(config.gatewayVersion).toBe(9)
    expect(config.compress).toBe("zstd-stream")
    expect(config.api).toEqual({ scheme: "http", host: "127.0.0.1:3000", version: 9 })
    expect((await load({ env: { ...BASE_ENV, DISCORD_COMPRESS: "none" } })).compress).toBe("none")
  })

  it("rejects bad values", async () => {
    await expectError({ env: { ...BASE_ENV, DISCORD_COMPRESS: "gzip" } }, "DISCORD_COMPRESS", "zlib-stream, zstd-stream, none")
    await expectError({ env: { ...BASE_ENV, DISCORD_GATEWAY_VERSION: "v10" } }, "DISCORD_GATEWAY_VERSION", `got "v10"`)
    await expectError({ env: { ...BASE_ENV, DISCORD_API_PROTOCOL: "ftp" } }, "DISCORD_API_PROTOCOL", "http, https")
    await expectError({ env: { ...BASE_ENV, DISCORD_API_HOST: "https://discord.com" } }, "DISCORD_API_HOST", "not a URL")
    await expectError({ env: BASE_ENV, toml: `[api]\nhost = ""` }, "api.host", "must not be empty")
    await expectError({ env: BASE_ENV, toml: `[api]\nversion = 0` }, "api.version", "whole number")
  })
})

describe("broker", () => {
  it("rejects an unknown type listing the valid ones", async () => {
    await expectError({ env: { ...BASE_ENV, BROKER_TYPE: "kafka" } }, "BROKER_TYPE", `unknown broker type "kafka"`, "stdout, redis, amqp")
    await expectError({ env: { ...BASE_ENV, BROKER_TYPE: "reddis" } }, "BROKER_TYPE", `did you mean "redis"?`)
    await expectError({ env: BASE_ENV, toml: `[broker]\ntype = 1` }, "broker.type", "stdout, redis, amqp")
  })

  it("validates encoding, group and buffer size", async () => {
    const config = await load({ env: { ...BASE_ENV, BROKER_ENCODING: "msgpack", BROKER_BUFFER_SIZE: "500", BROKER_GROUP: "bots" } })
    expect(config.broker).toMatchObject({ encoding: "msgpack", bufferSize: 500, group: "bots" })
    await expectError({ env: { ...BASE_ENV, BROKER_ENCODING: "etf" } }, "BROKER_ENCODING", "json, msgpack")
    await expectError({ env: { ...BASE_ENV, BROKER_BUFFER_SIZE: "0" } }, "BROKER_BUFFER_SIZE", "1 or more")
    await expectError({ env: BASE_ENV, toml: `[broker]\ngroup = ""` }, "broker.group", "must not be empty")
  })

  it("redis needs a URL", async () => {
    await expectError({ env: { ...BASE_ENV, BROKER_TYPE: "redis" } }, "redis.urls", `broker type "redis" needs a Redis URL`, "REDIS_URL")
    const config = await load({ env: { ...BASE_ENV, BROKER_TYPE: "redis", REDIS_URL: "redis://a:6379, rediss://b:6380/2" } })
    expect(config.redis.urls.map(Redacted.value)).toEqual(["redis://a:6379", "rediss://b:6380/2"])
    expect(String(config.redis.urls[0])).not.toContain("redis://")
  })

  it("amqp needs a URL", async () => {
    await expectError({ env: { ...BASE_ENV, BROKER_TYPE: "amqp" } }, "amqp.url", `broker type "amqp" needs a URL`, "AMQP_URL")
    const config = await load({ env: { ...BASE_ENV, BROKER_TYPE: "amqp", AMQP_URL: `amqps://u:${PASSWORD}@mq/vhost` } })
    expect(Redacted.value(config.amqp.url!)).toBe(`amqps://u:${PASSWORD}@mq/vhost`)
  })
})

describe("redis and amqp urls", () => {
  it("validate the scheme without echoing passwords", async () => {
    await expectError({ env: { ...BASE_ENV, REDIS_URL: `http://:${PASSWORD}@host` } }, "REDIS_URL", "wrong scheme", "redis://")
    await expectError({ env: { ...BASE_ENV, REDIS_URL: `redis://ok, http://localhost:6379` } }, "REDIS_URL", "entry 2", "redis://localhost:6379")
    await expectError({ env: { ...BASE_ENV, REDIS_URL: `not a url ${PASSWORD}` } }, "REDIS_URL", "not a valid URL")
    await expectError({ env: { ...BASE_ENV, AMQP_URL: `redis://u:${PASSWORD}@h` } }, "AMQP_URL", "amqp:// or amqps://")
    await expectError({ env: BASE_ENV, toml: `[redis]\nurls = [1]` }, "redis.urls", "quoted string")
  })

  it("accept the original single url key and a pool size", async () => {
    const config = await load({ env: BASE_ENV, toml: `[redis]\nurl = "redis://localhost:6379"\npool_size = 5` })
    expect(config.redis.urls.map(Redacted.value)).toEqual(["redis://localhost:6379"])
    expect(config.redis.poolSize).toBe(5)
    await expectError({ env: BASE_ENV, toml: `[redis]\nurl = "redis://a"\nurls = ["redis://b"]` }, "redis.url", "not both")
    await expectError({ env: { ...BASE_ENV, REDIS_POOL_SIZE: "-2" } }, "REDIS_POOL_SIZE", "1 or more")
  })
})

describe("shard store", () => {
  it("resolves the path against cwd and validates the type", async () => {
    const cwd = tempDir()
    // An empty variable counts as unset, so an empty prefix can only come from the file.
    const config = await load({
      env: { ...BASE_ENV, SHARD_STORE_TYPE: "file", SHARD_STORE_PATH: "state/s.json", SHARD_STORE_PREFIX: "" },
      toml: `[shard_store]\nprefix = ""`,
      cwd
    })
    expect(config.shardStore).toEqual({ type: "file", prefix: "", path: path.join(cwd, "state/s.json") })
    await expectError({ env: { ...BASE_ENV, SHARD_STORE_TYPE: "sqlite" } }, "SHARD_STORE_TYPE", "memory, redis, file")
  })

  it("redis store needs a redis URL", async () => {
    await expectError({ env: { ...BASE_ENV, SHARD_STORE_TYPE: "redis" } }, "redis.urls", `shard store type "redis" needs a Redis URL`)
    const config = await load({ env: { ...BASE_ENV, SHARD_STORE_TYPE: "redis", REDIS_URL: "redis://r" } })
    expect(config.shardStore.type).toBe("redis")
  })
})

describe("presence", () => {
  it("fills the four keys from JSON", async () => {
    const config = await load({ env: { ...BASE_ENV, DISCORD_PRESENCE: `{"status":"dnd"}` } })
    expect(config.presence).toEqual({ since: null, activities: [], status: "dnd", afk: false })
    const full = await load({
      env: { ...BASE_ENV, DISCORD_PRESENCE: `{"since":null,"afk":true,"activities":[{"name":"Custom","type":4,"state":"hi"}]}` }
    })
    expect(full.presence).toEqual({ since: null, activities: [{ name: "Custom", type: 4, state: "hi" }], status: "online", afk: true })
  })

  it("env JSON wins over the [presence] table", async () => {
    const config = await load({ env: { ...BASE_ENV, DISCORD_PRESENCE: `{"status":"idle"}` }, toml: `[presence]\nstatus = "dnd"` })
    expect(config.presence).toMatchObject({ status: "idle" })
  })

  it("an empty [presence] table sends none", async () => {
    expect((await load({ env: BASE_ENV, toml: "[presence]\n" })).presence).toBeUndefined()
  })

  it("reports invalid JSON and shapes on one line", async () => {
    await expectError({ env: { ...BASE_ENV, DISCORD_PRESENCE: `{status: online}` } }, "DISCORD_PRESENCE", "invalid JSON", `{"status":"online"`)
    await expectError({ env: { ...BASE_ENV, DISCORD_PRESENCE: `[1]` } }, "DISCORD_PRESENCE", "expected a JSON object")
    await expectError({ env: { ...BASE_ENV, DISCORD_PRESENCE: `{"status":"away"}` } }, "DISCORD_PRESENCE", "at status", "online, dnd, idle, invisible, offline")
    await expectError({ env: { ...BASE_ENV, DISCORD_PRESENCE: `{"games":{}}` } }, "DISCORD_PRESENCE", "at games", "unknown key")
    await expectError({ env: { ...BASE_ENV, DISCORD_PRESENCE: `{"activities":{}}` } }, "DISCORD_PRESENCE", "at activities", "array")
    await expectError({ env: BASE_ENV, toml: `[presence]\nactivities = [{ name = "x" }]` }, "presence.activities[0].type", "missing", "0 Playing")
    await expectError({ env: BASE_ENV, toml: `[presence]\nactivities = [{ name = "x", type = 9 }]` }, "presence.activities[0].type", "from 0 to 5")
    await expectError({ env: BASE_ENV, toml: `[presence]\nactivities = ["x"]` }, "presence.activities[0]", "activity table")
    await expectError({ env: BASE_ENV, toml: `[presence]\nafk = "no"` }, "presence.afk", "true or false")
    await expectError({ env: BASE_ENV, toml: `presence = "online"` }, "presence", "expected a table")
  })
})

describe("prometheus", () => {
  it("accepts host:port and :port", async () => {
    for (const address of [":9100", "0.0.0.0:9100", "localhost:80", "[::]:9100"]) {
      expect((await load({ env: { ...BASE_ENV, PROMETHEUS_ADDRESS: address } })).prometheus.address).toBe(address)
    }
    const config = await load({ env: BASE_ENV, toml: `[prometheus]\naddress = ":8080"\nendpoint = "/m"` })
    expect(config.prometheus).toEqual({ address: ":8080", endpoint: "/m" })
  })

  it("rejects bad addresses and endpoints", async () => {
    await expectError({ env: { ...BASE_ENV, PROMETHEUS_ADDRESS: "9100" } }, "PROMETHEUS_ADDRESS", `":9100"`, `got "9100"`)
    await expectError({ env: { ...BASE_ENV, PROMETHEUS_ADDRESS: ":99999" } }, "PROMETHEUS_ADDRESS", "host:port")
    await expectError({ env: { ...BASE_ENV, PROMETHEUS_ENDPOINT: "metrics" } }, "PROMETHEUS_ENDPOINT", `must start with "/"`)
  })
})
