// Migration from the original Go gateway, configuration side: its documented config file, its
// environment, its flags, its intent names and its scheme-less Redis addresses load here.
import { Redacted, Result } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { parseArgs } from "../../src/Config/args.ts"
import { HelpRequested } from "../../src/Config/ConfigError.ts"
import { parseToml } from "../../src/Config/toml.ts"
import { validate } from "../../src/Config/validate.ts"
import { closestIntentName } from "../../src/Config/discord.ts"
import { INTENTS } from "../../src/Discord/Intents.ts"
import { redisNode, withRedisScheme } from "../../src/Config/RedisUrl.ts"
import { GO_CONFIG_FILE, GO_DOCKER_ENV, GO_PRESENCE_EXAMPLE } from "./goDocs.ts"

const TOKEN = "MTIzNDU2Nzg5MDEyMzQ1Njc4.GaBcDe.s3cr3t-t0ken-VALUE_abcdefghijklmnop"
const BASE_ENV = { DISCORD_TOKEN: TOKEN, DISCORD_EVENTS: "MESSAGE_CREATE" }
const NO_ARGS = { configPath: undefined, logLevel: undefined }

const toml = (text: string): Record<string, unknown> => {
  const parsed = parseToml("gateway.toml", text)
  if (Result.isFailure(parsed)) throw new Error(parsed.failure.message)
  return parsed.success
}

const check = (file: Record<string, unknown>, env: Record<string, string>) => {
  const result = validate({ file, env, args: NO_ARGS, cwd: "/" })
  if (Result.isFailure(result)) throw new Error(`expected a config, got: ${result.failure.message}`)
  return result.success
}

const refusal = (file: Record<string, unknown>, env: Record<string, string>) => {
  const result = validate({ file, env, args: NO_ARGS, cwd: "/" })
  if (Result.isSuccess(result)) throw new Error("expected a ConfigError")
  return result.failure
}

describe("the Go gateway's documented examples", () => {
  it("loads the README's config file, with the token and events from the environment", () => {
    const { config, warnings } = check(toml(GO_CONFIG_FILE), BASE_ENV)
    expect(config.intents).toBe(0) // intents = [] sends none, as the Go gateway did
    expect(config.shards).toEqual({ count: 2, ids: [0, 1], checkIntervalMs: 3_600_000 })
    expect(config.broker).toMatchObject({ type: "redis", group: "gateway", messageTimeoutMs: 120_000 })
    expect(config.api).toEqual({ scheme: "https", host: "discord.com", version: 10 })
    expect(config.prometheus).toEqual({ address: ":8080", endpoint: "/metrics" })
    expect(config.shardStore).toMatchObject({ type: "redis", prefix: "gateway" })
    expect(config.presence).toBeUndefined()
    expect(config.redis.urls.map(Redacted.value)).toEqual(["redis://localhost:6379"])
    expect(config.redis.poolSize).toBe(5)
    expect(config.amqp.url === undefined ? undefined : Redacted.value(config.amqp.url)).toBe("amqp://localhost")
    expect(warnings).toEqual([])
  })

  it("reads an empty shard store or broker type as the default, as its comments describe", () => {
    const { config } = check(toml(`[shard_store]\ntype = "" # if left empty, shard info is stored locally\n[broker]\ntype = ""\n`), BASE_ENV)
    expect(config.shardStore.type).toBe("memory")
    expect(config.broker.type).toBe("stdout")
    expect(refusal(toml(`[broker]\ntype = "kafka"\n`), BASE_ENV).message).toContain("unknown broker type")
  })

  it("loads the README's example presence, sending its game as the one activity, with a warning", () => {
    const { config, warnings } = check(toml(GO_PRESENCE_EXAMPLE), BASE_ENV)
    expect(config.presence).toEqual({ since: null, activities: [{ name: "test", type: 0 }], status: "online", afk: false })
    expect(warnings).toEqual([expect.stringContaining(`"game" is the old spelling of one activity`)])
    // The same in DISCORD_PRESENCE (JSON), and a bad game is reported where it was written.
    expect(check({}, { ...BASE_ENV, DISCORD_PRESENCE: `{"status":"idle","game":{"name":"x","type":2}}` }).config.presence)
      .toMatchObject({ status: "idle", activities: [{ name: "x", type: 2 }] })
    expect(refusal(toml(`[presence.game]\nname = "x"\n`), BASE_ENV).message).toMatch(/^presence\.game\.type: missing/)
    expect(refusal(toml(`[presence]\nactivities = []\n[presence.game]\nname = "x"\ntype = 0\n`), BASE_ENV).message).toContain("not both")
  })

  it("loads the README's Docker environment (GUILD is read as GUILDS)", () => {
    const { config, warnings } = check({}, { ...GO_DOCKER_ENV, DISCORD_TOKEN: TOKEN })
    expect(config.intents).toBe(INTENTS.GUILDS | INTENTS.GUILD_MESSAGES)
    expect([...config.events.names]).toEqual(["MESSAGE_CREATE"])
    expect(warnings).toEqual([`DISCORD_INTENTS: "GUILD" is an old name for the intent GUILDS; it is read as GUILDS (write GUILDS to silence this warning)`])
  })
})

describe("legacy intent names", () => {
  it("reads each old name as its current one, with one warning per old name naming the current one", () => {
    const cases: ReadonlyArray<readonly [string, keyof typeof INTENTS]> = [
      ["GUILD", "GUILDS"],
      ["GUILD_BANS", "GUILD_MODERATION"],
      ["GUILD_EMOJIS", "GUILD_EXPRESSIONS"],
      ["GUILD_EMOJIS_AND_STICKERS", "GUILD_EXPRESSIONS"]
    ]
    for (const [old, current] of cases) {
      const fromEnv = check({}, { ...BASE_ENV, DISCORD_INTENTS: `${old},GUILD_MESSAGES,${old.toLowerCase()}` })
      expect(fromEnv.config.intents).toBe(INTENTS[current] | INTENTS.GUILD_MESSAGES)
      expect(fromEnv.warnings).toHaveLength(1)
      expect(fromEnv.warnings[0]).toContain(`"${old}" is an old name for the intent ${current}`)
      const fromFile = check({ intents: [old] }, BASE_ENV)
      expect(fromFile.config.intents).toBe(INTENTS[current])
      expect(fromFile.warnings).toEqual([expect.stringMatching(new RegExp(`^intents: "${old}" .*write ${current}`))])
    }
    // Current names give no warning.
    expect(check({ intents: ["GUILDS", "GUILD_MODERATION", "GUILD_EXPRESSIONS"] }, BASE_ENV).warnings).toEqual([])
  })

  it("still refuses names that are neither, suggesting a current name", () => {
    expect(refusal({ intents: ["GUILDZ"] }, BASE_ENV).message).toBe(`intents: unknown intent "GUILDZ" (did you mean "GUILDS"?)`)
    expect(refusal({}, { ...BASE_ENV, DISCORD_INTENTS: "GUILD_EMOJI" }).message).toBe(
      `DISCORD_INTENTS: unknown intent "GUILD_EMOJI" (did you mean "GUILD_EXPRESSIONS"?)`
    )
    expect(closestIntentName("GUILD_MESAGES")).toBe("GUILD_MESSAGES")
    expect(closestIntentName("GUILD_BAN")).toBe("GUILD_MODERATION")
    expect(refusal({}, { ...BASE_ENV, DISCORD_INTENTS: "EVERYTHING" }).message).toContain("README.md")
  })
})

describe("Redis addresses without a scheme", () => {
  it("reads host:port as redis://host:port, in REDIS_URL, [redis] urls and [redis] url", () => {
    const urls = (file: Record<string, unknown>, env: Record<string, string> = {}) =>
      check(file, { ...BASE_ENV, ...env }).config.redis.urls.map(Redacted.value)
    expect(urls({}, { REDIS_URL: "localhost:6379" })).toEqual(["redis://localhost:6379"])
    expect(urls({ redis: { urls: ["10.0.0.1:7000", "10.0.0.2:7000"] } })).toEqual(["redis://10.0.0.1:7000", "redis://10.0.0.2:7000"])
    expect(urls({ redis: { url: "cache" } })).toEqual(["redis://cache"])
    expect(urls({}, { REDIS_URL: "[::1]:6380, rediss://secure:6379" })).toEqual(["redis://[::1]:6380", "rediss://secure:6379"])
    // The Redis Cluster seed parser gets the same address.
    expect(redisNode(Redacted.make(withRedisScheme("localhost:7001")))).toMatchObject({ host: "localhost", port: 7001, tls: false })
    expect(withRedisScheme(" redis://a:1 ")).toBe("redis://a:1")
  })

  it("still refuses other schemes and broken addresses", () => {
    expect(refusal({}, { ...BASE_ENV, REDIS_URL: "http://localhost:6379" }).message).toContain("wrong scheme")
    expect(refusal({}, { ...BASE_ENV, REDIS_URL: "local host:6379" }).message).toContain("not a valid URL")
  })
})

describe("the Go gateway's flags", () => {
  const args = (argv: ReadonlyArray<string>) => {
    const parsed = parseArgs(argv)
    if (Result.isFailure(parsed)) throw new Error(parsed.failure.message)
    return parsed.success
  }
  it("accepts -config and -loglevel, with one or two dashes and with =", () => {
    expect(args(["-config", "/etc/gateway.toml", "-loglevel", "debug"])).toEqual({ configPath: "/etc/gateway.toml", logLevel: "debug" })
    expect(args(["-config=a.toml", "--loglevel=warn"])).toEqual({ configPath: "a.toml", logLevel: "warn" })
    expect(args(["--config", "b.toml", "-loglevel=ERROR"])).toEqual({ configPath: "b.toml", logLevel: "error" })
    // Go's "suppress" level: errors only.
    expect(args(["-loglevel", "suppress"])).toEqual({ configPath: undefined, logLevel: "error" })
    // Ours still work beside them.
    expect(args(["--config=c.toml", "--log-level", "trace"])).toEqual({ configPath: "c.toml", logLevel: "trace" })
  })

  it("says what is wrong with their values, naming the flag as written", () => {
    const failure = (argv: ReadonlyArray<string>) => {
      const parsed = parseArgs(argv)
      if (Result.isSuccess(parsed)) throw new Error("expected a failure")
      return parsed.failure
    }
    expect(failure(["-loglevel", "loud"]).message).toBe(`-loglevel: expected one of trace, debug, info, warn, error, got "loud"`)
    expect(failure(["-config"]).message).toBe("-config: expected a value, e.g. -config ./gateway.toml")
    expect(failure(["-help"])).toBeInstanceOf(HelpRequested)
    expect((failure(["-h"]) as HelpRequested).usage).toContain("-config PATH, -loglevel LEVEL")
  })

  it("reads the file named by -config", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "gateway-migration-"))
    dirs.push(dir)
    fs.writeFileSync(path.join(dir, "go.toml"), GO_CONFIG_FILE)
    const { loadConfig } = await import("../../src/Config/load.ts")
    const { Effect } = await import("effect")
    const config = await Effect.runPromise(loadConfig({ argv: ["-config", "go.toml", "-loglevel", "warn"], env: BASE_ENV, cwd: dir }))
    expect(config.shards.count).toBe(2)
    expect(config.logLevel).toBe("warn")
  })
})

const dirs: Array<string> = []
afterAll(() => dirs.forEach((dir) => fs.rmSync(dir, { recursive: true, force: true })))
