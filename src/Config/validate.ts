// Turns the three sources (TOML file, environment, flags) into a GatewayConfig. Pure: the file is
// already parsed. Environment variables win over the file key by key; flags win over both.
import { Redacted, Result } from "effect"
import * as Path from "node:path"
import { NON_PRIVILEGED_INTENTS } from "../Discord/Intents.ts"
import { withRedisScheme } from "./RedisUrl.ts"
import type { Args } from "./args.ts"
import { parseLogLevel } from "./args.ts"
import { type ConfigError, configError } from "./ConfigError.ts"
import { events, namedIntents, rawIntents, shardIds } from "./discord.ts"
import { type Env, envValue } from "./env.ts"
import type { BrokerType, Compression, GatewayConfig, LogLevel, PayloadEncoding, ShardStoreType } from "./GatewayConfig.ts"
import { FILE_KEYS, findUnknownKey, isTable } from "./keys.ts"
import { byteSize, DEFAULT_LIMITS } from "./limits.ts"
import { presence } from "./presence.ts"
import { serviceUrl, token } from "./secrets.ts"
import {
  duration,
  fail,
  list,
  nonEmptyString,
  oneOf,
  positiveInt,
  type Raw,
  type Read,
  string
} from "./values.ts"

export interface Sources {
  readonly file: Record<string, unknown>
  readonly env: Env
  readonly args: Args
  /** Relative paths in the config (shard_store.path) resolve against this. */
  readonly cwd: string
}

export interface Validated {
  readonly config: GatewayConfig
  /** Accepted but suspicious settings (e.g. an unknown event name), for main to log. */
  readonly warnings: ReadonlyArray<string>
}

export const BROKER_TYPES: ReadonlyArray<BrokerType> = ["stdout", "redis", "amqp"]
export const SHARD_STORE_TYPES: ReadonlyArray<ShardStoreType> = ["memory", "redis", "file"]
export const COMPRESSIONS: ReadonlyArray<Compression> = ["zlib-stream", "zstd-stream", "none"]
export const ENCODINGS: ReadonlyArray<PayloadEncoding> = ["json", "msgpack", "msgpack-json"]

const fileValue = (file: Record<string, unknown>, path: string): unknown =>
  path.split(".").reduce<unknown>((node, key) => (isTable(node) && Object.hasOwn(node, key) ? node[key] : undefined), file)

/** The setting from `envName` if set and not blank, else from the file at `path`, else undefined. */
export const lookup = (sources: Pick<Sources, "file" | "env">, path: string, envName?: string): Raw | undefined => {
  const fromEnv = envName === undefined ? undefined : envValue(sources.env, envName)
  if (fromEnv !== undefined) return { source: "env", name: envName!, value: fromEnv }
  const fromFile = fileValue(sources.file, path)
  return fromFile === undefined ? undefined : { source: "file", name: path, value: fromFile }
}

/**
 * `type = ""` in the file as the default: the original Go gateway's documentation says to leave
 * the shard store type empty for local storage, and an empty broker type was its stdio broker.
 */
const blankIsUnset = (raw: Raw | undefined): Raw | undefined =>
  raw?.source === "file" && typeof raw.value === "string" && raw.value.trim() === "" ? undefined : raw

const orDefault = <A>(raw: Raw | undefined, read: (raw: Raw) => Read<A>, fallback: A): Read<A> =>
  raw === undefined ? Result.succeed(fallback) : read(raw)

const PROMETHEUS_ADDRESS = /^(?:\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]*):(\d{1,5})$/

const prometheusAddress = (raw: Raw): Read<string> =>
  Result.flatMap(string(raw, `expected host:port or :port such as ":9100"`), (s) => {
    const m = PROMETHEUS_ADDRESS.exec(s.trim())
    return m !== null && Number(m[1]) <= 65535
      ? Result.succeed(s.trim())
      : fail(raw, `expected host:port or :port such as ":9100" or "127.0.0.1:9100", got "${s}"`)
  })

const apiHost = (raw: Raw): Read<string> =>
  Result.flatMap(nonEmptyString(raw, "discord.com"), (s) =>
    /[/\s]/.test(s.trim())
      ? fail(raw, `expected a host name with an optional :port such as "discord.com", not a URL or path; the scheme goes in DISCORD_API_PROTOCOL / api.scheme`)
      : Result.succeed(s.trim()))

const endpoint = (raw: Raw): Read<string> =>
  Result.flatMap(string(raw, `expected a path such as "/metrics"`), (s) =>
    s.trim().startsWith("/") ? Result.succeed(s.trim()) : fail(raw, `must start with "/", e.g. "/metrics", got "${s}"`))

const REDIS_EXAMPLE = "redis://localhost:6379"
const AMQP_EXAMPLE = "amqp://guest:guest@localhost:5672"

/**
 * REDIS_URL (comma-separated), [redis] urls (array or string), or the original's [redis] url.
 * An address without a scheme ("localhost:6379", as the original gateway took it) means redis://.
 */
const redisUrls = (sources: Sources): Read<ReadonlyArray<Redacted.Redacted<string>>> => {
  const inFile = isTable(sources.file.redis) ? sources.file.redis : {}
  if (inFile.url !== undefined && inFile.urls !== undefined) {
    return Result.fail(configError("redis.url", "set either url or urls in [redis], not both"))
  }
  const raw = lookup(sources, "redis.urls", "REDIS_URL") ?? lookup(sources, "redis.url")
  if (raw === undefined) return Result.succeed([])
  return Result.flatMap(list(raw, `["${REDIS_EXAMPLE}"]`), (items) =>
    Result.all(items.map((item, i) =>
      serviceUrl(raw, typeof item === "string" ? withRedisScheme(item) : item, ["redis:", "rediss:"], REDIS_EXAMPLE, items.length > 1 ? i + 1 : undefined)
    )))
}

export const validate = (sources: Sources): Result.Result<Validated, ConfigError> =>
  Result.gen(function*() {
    const warnings: Array<string> = []
    const warn = (message: string) => void warnings.push(message)
    const get = (path: string, envName?: string) => lookup(sources, path, envName)

    const unknown = findUnknownKey(sources.file, FILE_KEYS)
    if (unknown !== undefined) return yield* Result.fail(configError(unknown.path, unknown.problem))

    // An empty `token = ""` (as in a template) is the same as no token.
    const tokenRaw = get("token", "DISCORD_TOKEN")
    const botToken = yield* token(tokenRaw?.source === "file" && tokenRaw.value === "" ? undefined : tokenRaw)
    const eventSet = yield* events(get("events", "DISCORD_EVENTS"), warn)

    const named = get("intents", "DISCORD_INTENTS")
    const raw = get("raw_intents", "DISCORD_RAW_INTENTS")
    const intents = named === undefined && raw === undefined
      ? NON_PRIVILEGED_INTENTS
      : (named === undefined ? 0 : yield* namedIntents(named, warn)) | (raw === undefined ? 0 : yield* rawIntents(raw, warn))

    const countRaw = get("shards.count", "DISCORD_SHARD_COUNT")
    const count = countRaw === undefined ? undefined : yield* positiveInt(countRaw, "shards")
    const idsRaw = get("shards.ids", "DISCORD_SHARD_IDS")
    let ids: ReadonlyArray<number> | undefined
    if (idsRaw !== undefined) {
      if (count === undefined) {
        const countName = idsRaw.source === "env" ? "DISCORD_SHARD_COUNT (or shards.count)" : "shards.count (or DISCORD_SHARD_COUNT)"
        return yield* fail(idsRaw, `shard ids need the total shard count; set ${countName} as well`)
      }
      ids = yield* shardIds(idsRaw, count, countRaw!.name)
    }
    // The most shards one process of an automatic cluster runs; undefined: as many as there are.
    const maxRaw = get("shards.max", "DISCORD_SHARD_MAX")
    const max = maxRaw === undefined ? undefined : yield* positiveInt(maxRaw, "shards")
    // How often Discord's recommendation is read again (a higher one reshards an automatic cluster); 0: never.
    const checkIntervalMs = yield* orDefault(get("shards.check_interval", "DISCORD_SHARD_CHECK_INTERVAL"), duration, 3_600_000)

    const gatewayVersion = yield* orDefault(get("gateway_version", "DISCORD_GATEWAY_VERSION"), (r) => positiveInt(r, "the API version, e.g. 10"), 10)
    const compress = yield* orDefault(get("compress", "DISCORD_COMPRESS"), (r) => oneOf(r, COMPRESSIONS, "compression"), "zlib-stream")

    const api = {
      scheme: yield* orDefault(get("api.scheme", "DISCORD_API_PROTOCOL"), (r) => oneOf(r, ["http", "https"] as const, "scheme"), "https"),
      host: yield* orDefault(get("api.host", "DISCORD_API_HOST"), apiHost, "discord.com"),
      version: yield* orDefault(get("api.version", "DISCORD_API_VERSION"), (r) => positiveInt(r, "the API version, e.g. 10"), 10)
    }

    const broker = {
      type: yield* orDefault(blankIsUnset(get("broker.type", "BROKER_TYPE")), (r) => oneOf(r, BROKER_TYPES, "broker type"), "stdout"),
      group: yield* orDefault(get("broker.group", "BROKER_GROUP"), (r) => nonEmptyString(r, "gateway"), "gateway"),
      messageTimeoutMs: yield* orDefault(get("broker.message_timeout", "BROKER_MESSAGE_TIMEOUT"), duration, 120_000),
      encoding: yield* orDefault(get("broker.encoding", "BROKER_ENCODING"), (r) => oneOf(r, ENCODINGS, "encoding"), "json"),
      bufferSize: yield* orDefault(get("broker.buffer_size", "BROKER_BUFFER_SIZE"), (r) => positiveInt(r, "events"), 10_000)
    }

    const presenceValue = yield* presence(get("presence", "DISCORD_PRESENCE"), warn)

    const prometheus = {
      address: yield* orDefault<string | undefined>(get("prometheus.address", "PROMETHEUS_ADDRESS"), prometheusAddress, undefined),
      endpoint: yield* orDefault(get("prometheus.endpoint", "PROMETHEUS_ENDPOINT"), endpoint, "/metrics")
    }

    const shardStore = {
      type: yield* orDefault(blankIsUnset(get("shard_store.type", "SHARD_STORE_TYPE")), (r) => oneOf(r, SHARD_STORE_TYPES, "shard store type"), "memory"),
      prefix: yield* orDefault(get("shard_store.prefix", "SHARD_STORE_PREFIX"), (r) => string(r, `expected text such as "gateway:"`), "gateway:"),
      path: Path.resolve(
        sources.cwd,
        yield* orDefault(get("shard_store.path", "SHARD_STORE_PATH"), (r) => nonEmptyString(r, ".gateway-state/shards.json"), ".gateway-state/shards.json")
      )
    }

    const redis = {
      urls: yield* redisUrls(sources),
      poolSize: yield* orDefault(get("redis.pool_size", "REDIS_POOL_SIZE"), (r) => positiveInt(r, "connections"), 1)
    }
    const needsRedis = broker.type === "redis" ? "broker type" : shardStore.type === "redis" ? "shard store type" : undefined
    if (needsRedis !== undefined && redis.urls.length === 0) {
      return yield* Result.fail(configError("redis.urls", `${needsRedis} "redis" needs a Redis URL; set REDIS_URL or urls in [redis], e.g. ${REDIS_EXAMPLE}`))
    }

    const amqpRaw = get("amqp.url", "AMQP_URL")
    const amqp = {
      url: amqpRaw === undefined ? undefined : yield* serviceUrl(amqpRaw, amqpRaw.value, ["amqp:", "amqps:"], AMQP_EXAMPLE)
    }
    if (broker.type === "amqp" && amqp.url === undefined) {
      return yield* Result.fail(configError("amqp.url", `broker type "amqp" needs a URL; set AMQP_URL or url in [amqp], e.g. ${AMQP_EXAMPLE}`))
    }

    const shutdownTimeoutMs = yield* orDefault(get("shutdown_timeout", "SHUTDOWN_TIMEOUT"), duration, 10_000)
    const checkpointRaw = get("checkpoint_interval", "CHECKPOINT_INTERVAL")
    const checkpointIntervalMs = yield* orDefault(checkpointRaw, duration, 1_000)
    if (checkpointIntervalMs === 0) return yield* fail(checkpointRaw!, `must be longer than 0, e.g. "1s"`)

    const logLevel: LogLevel = sources.args.logLevel ?? (yield* orDefault(get("log_level", "LOG_LEVEL"), (r) =>
      typeof r.value === "string" ? parseLogLevel(r.name, r.value) : fail(r, `expected one of trace, debug, info, warn, error`), "info" as LogLevel))

    // [limits]: hard caps on memory taken by what Discord sends.
    const limits = {
      frameBytes: yield* orDefault(get("limits.frame_size", "LIMITS_FRAME_SIZE"), byteSize, DEFAULT_LIMITS.frameBytes),
      payloadBytes: yield* orDefault(get("limits.payload_size", "LIMITS_PAYLOAD_SIZE"), byteSize, DEFAULT_LIMITS.payloadBytes),
      partialBytes: yield* orDefault(get("limits.partial_size", "LIMITS_PARTIAL_SIZE"), byteSize, DEFAULT_LIMITS.partialBytes)
    }

    const config: GatewayConfig = {
      token: botToken,
      events: eventSet,
      intents,
      shards: { count, ids, max, checkIntervalMs },
      gatewayVersion,
      compress,
      api,
      broker,
      presence: presenceValue,
      prometheus,
      shardStore,
      redis,
      amqp,
      shutdownTimeoutMs,
      checkpointIntervalMs,
      logLevel,
      limits
    }
    return { config, warnings }
  })
