// Options of the fake and their defaults, plus the shared context the modules operate on.
import type { CompressionEngine } from "./compression.ts"
import type { GatewayConnection } from "./connection.ts"
import type { IdentifyLimiter, SessionStartLimit } from "./limits.ts"
import { ALL_INTENTS, PRIVILEGED_INTENTS } from "./protocol.ts"
import type { Records } from "./records.ts"
import type { SessionStore } from "./sessions.ts"

export interface RestFailure {
  /** HTTP status answered instead of the real response, e.g. 500, 502 or 429. */
  readonly status: number
  /** How many consecutive /gateway/bot calls fail. */
  readonly times: number
  /** For 429: retry_after in seconds (float). Default 1. */
  readonly retryAfterSec?: number | undefined
  /**
   * The answer's body instead of the default one: a string is sent as it is (text/plain), anything
   * else as JSON, e.g. Discord's error shape `{ message: "401: Unauthorized", code: 40001 }`.
   */
  readonly body?: unknown
}

export interface FakeDiscordOptions {
  /** 0 (default) picks a free port. */
  readonly port?: number | undefined
  /** Interface to bind. Default 127.0.0.1. */
  readonly host?: string | undefined
  readonly token?: string | undefined
  /** Recommended shard count returned by /gateway/bot (setShardCount changes it). Default 1. */
  readonly shardCount?: number | undefined
  /** Smallest shard count IDENTIFY/RESUME may use; smaller ones close with 4011 (see requireShardCount). Default 1. */
  readonly minShardCount?: number | undefined
  /** Adds `"_conn": <connection id>` to the `d` object of every dispatch as it is written (see setTagConnections). Default false. */
  readonly tagConnections?: boolean | undefined
  /** Records every dispatch written to a connection in `deliveries` (see setRecordDeliveries). Default false. */
  readonly recordDeliveries?: boolean | undefined
  readonly maxConcurrency?: number | undefined
  readonly sessionStartLimit?: Partial<SessionStartLimit> | undefined
  readonly heartbeatIntervalMs?: number | undefined
  /** Close with 4009 when no heartbeat arrives for interval × factor. 0 disables. Default 1.5. */
  readonly heartbeatTimeoutFactor?: number | undefined
  readonly guildsPerShard?: number | undefined
  /** Members in each initial GUILD_CREATE. Default 25. */
  readonly guildCreateMembers?: number | undefined
  /** Privileged intents enabled "in the developer portal". Default all (2|256|32768). */
  readonly allowedPrivilegedIntents?: number | undefined
  /** How long a disconnected session stays resumable. Default 120 000. */
  readonly sessionTimeoutMs?: number | undefined
  /** Dispatches kept per session for replay. Default 10 000. */
  readonly replayLimit?: number | undefined
  /** Identify bucket window. Default 5000. */
  readonly identifyIntervalMs?: number | undefined
  /** Answer bucket violations with op 9 false (they are recorded either way). Default true. */
  readonly enforceIdentifyLimit?: boolean | undefined
  readonly restFailures?: RestFailure | undefined
  /** zlib-stream only: compressed messages larger than this are split over several WS frames. Default 65 536; 0 never splits. */
  readonly splitFramesOver?: number | undefined
  /** Client send limit per connection. Default 120 payloads per 60 000 ms. */
  readonly sendLimit?: { readonly max: number; readonly windowMs: number } | undefined
  /** Minimum ms between "all members" op 8 requests per guild before RATE_LIMITED. Default 30 000; 0 disables. */
  readonly memberRequestIntervalMs?: number | undefined
  /** Seed for trickle randomness. Default 1. */
  readonly seed?: number | undefined
  /** "auto" (default) uses the fast synchronous zlib engine when available. */
  readonly compressionEngine?: CompressionEngine | undefined
  /** Receives one line per notable event (connections, identifies, closes). */
  readonly log?: ((line: string) => void) | undefined
}

export interface ResolvedOptions {
  readonly host: string
  readonly port: number
  readonly token: string
  readonly shardCount: number
  readonly minShardCount: number
  readonly tagConnections: boolean
  readonly recordDeliveries: boolean
  readonly maxConcurrency: number
  readonly sessionStartLimit: SessionStartLimit
  readonly heartbeatIntervalMs: number
  readonly heartbeatTimeoutFactor: number
  readonly guildsPerShard: number
  readonly guildCreateMembers: number
  readonly allowedPrivilegedIntents: number
  readonly sessionTimeoutMs: number
  readonly replayLimit: number
  readonly identifyIntervalMs: number
  readonly enforceIdentifyLimit: boolean
  readonly splitFramesOver: number
  readonly sendLimit: { readonly max: number; readonly windowMs: number }
  readonly memberRequestIntervalMs: number
  readonly seed: number
  readonly compressionEngine: CompressionEngine
  readonly log: (line: string) => void
}

export function resolveOptions(options: FakeDiscordOptions): ResolvedOptions {
  return {
    host: options.host ?? "127.0.0.1",
    port: options.port ?? 0,
    token: options.token ?? "fake-token",
    shardCount: options.shardCount ?? 1,
    minShardCount: options.minShardCount ?? 1,
    tagConnections: options.tagConnections ?? false,
    recordDeliveries: options.recordDeliveries ?? false,
    maxConcurrency: options.maxConcurrency ?? 1,
    sessionStartLimit: {
      total: options.sessionStartLimit?.total ?? 1000,
      remaining: options.sessionStartLimit?.remaining ?? options.sessionStartLimit?.total ?? 1000,
      resetAfter: options.sessionStartLimit?.resetAfter ?? 86_400_000
    },
    heartbeatIntervalMs: options.heartbeatIntervalMs ?? 41_250,
    heartbeatTimeoutFactor: options.heartbeatTimeoutFactor ?? 1.5,
    guildsPerShard: options.guildsPerShard ?? 2,
    guildCreateMembers: options.guildCreateMembers ?? 25,
    allowedPrivilegedIntents: (options.allowedPrivilegedIntents ?? PRIVILEGED_INTENTS) & ALL_INTENTS,
    sessionTimeoutMs: options.sessionTimeoutMs ?? 120_000,
    replayLimit: options.replayLimit ?? 10_000,
    identifyIntervalMs: options.identifyIntervalMs ?? 5000,
    enforceIdentifyLimit: options.enforceIdentifyLimit ?? true,
    splitFramesOver: options.splitFramesOver ?? 65_536,
    sendLimit: options.sendLimit ?? { max: 120, windowMs: 60_000 },
    memberRequestIntervalMs: options.memberRequestIntervalMs ?? 30_000,
    seed: options.seed ?? 1,
    compressionEngine: options.compressionEngine ?? "auto",
    log: options.log ?? (() => {})
  }
}

/** State shared by the gateway handler, the REST handler and the control API. */
export interface FakeContext {
  readonly options: ResolvedOptions
  readonly records: Records
  readonly sessions: SessionStore
  readonly limiter: IdentifyLimiter
  /** Open connections, oldest first. */
  readonly connections: Set<GatewayConnection>
  /** Recommended shard count (mutable via setShardCount). */
  shardCount: number
  /** IDENTIFY/RESUME with a smaller shard count close with 4011 (mutable via requireShardCount). */
  minShardCount: number
  /** Dispatches carry `"_conn": <connection id>` in `d` (mutable via setTagConnections). */
  tagConnections: boolean
  /** Dispatches written are recorded in records.deliveries (mutable via setRecordDeliveries). */
  recordDeliveries: boolean
  restFailures: { status: number; remaining: number; retryAfterSec: number; body?: unknown } | undefined
  /** ws://host:port — the main gateway URL. */
  gatewayUrl: string
  /** READY.resume_gateway_url. */
  resumeGatewayUrl: string
  /** Called after every state change so waitFor() re-evaluates promptly. */
  notify(): void
}
