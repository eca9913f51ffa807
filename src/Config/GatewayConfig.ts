// The validated configuration the rest of the daemon reads. Produced by Config/load.ts from
// gateway.toml, environment variables (which win) and command-line flags.
import type { Redacted } from "effect"
import type { Limits } from "./limits.ts"

export type BrokerType = "stdout" | "redis" | "amqp"
export type ShardStoreType = "memory" | "redis" | "file"
export type Compression = "zlib-stream" | "zstd-stream" | "none"
/** `msgpack-json`: the original Go gateway's bytes (MessagePack string of the JSON text of `d`). */
export type PayloadEncoding = "json" | "msgpack" | "msgpack-json"
export type LogLevel = "trace" | "debug" | "info" | "warn" | "error"

export interface GatewayConfig {
  /** Bot token, without the "Bot " prefix. Never logged. */
  readonly token: Redacted.Redacted<string>
  /** Dispatch names forwarded to the broker; "*" in the source means every dispatch. */
  readonly events: { readonly all: boolean; readonly names: ReadonlySet<string> }
  /** Intents bitfield sent in IDENTIFY (named intents ORed with raw_intents). */
  readonly intents: number
  readonly shards: {
    /** undefined: take Discord's recommendation from /gateway/bot. */
    readonly count: number | undefined
    /** undefined: every id in [0, count). Sorted, unique. */
    readonly ids: ReadonlyArray<number> | undefined
    /** Automatic cluster: the most shards this process runs (undefined: no limit). */
    readonly max: number | undefined
    /**
     * Automatic cluster: how often Discord's recommended count is read again (ms; 0: never). A higher
     * recommendation reshards the cluster when `count` is unset, else it is only logged.
     */
    readonly checkIntervalMs: number
  }
  readonly gatewayVersion: number
  readonly compress: Compression
  readonly api: { readonly scheme: "http" | "https"; readonly host: string; readonly version: number }
  readonly broker: {
    readonly type: BrokerType
    readonly group: string
    /** Milliseconds; 0 means no expiry. */
    readonly messageTimeoutMs: number
    readonly encoding: PayloadEncoding
    /** Events held in memory while the broker is slow or down; beyond it the shards stop reading. */
    readonly bufferSize: number
  }
  /** IDENTIFY presence (op 3 payload), as given. */
  readonly presence: unknown | undefined
  readonly prometheus: { readonly address: string | undefined; readonly endpoint: string }
  readonly shardStore: { readonly type: ShardStoreType; readonly prefix: string; readonly path: string }
  readonly redis: { readonly urls: ReadonlyArray<Redacted.Redacted<string>>; readonly poolSize: number }
  readonly amqp: { readonly url: Redacted.Redacted<string> | undefined }
  /** Milliseconds allowed for a graceful shutdown before the process exits anyway. */
  readonly shutdownTimeoutMs: number
  /** Milliseconds between shard-store checkpoint flushes. */
  readonly checkpointIntervalMs: number
  readonly logLevel: LogLevel
  /** Hard caps on memory taken by what Discord sends ([limits]). */
  readonly limits: Limits
  /** Absolute path of the TOML file read; undefined when none was (environment only). */
  readonly configFile?: string | undefined
}
