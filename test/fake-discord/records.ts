// What the fake observed, in arrival order. Tests assert on these; nothing here drives behaviour.

export interface IdentifyRecord {
  readonly connectionId: number
  readonly shardId: number
  readonly shardCount: number
  /** shardId % maxConcurrency */
  readonly bucket: number
  readonly at: number
  readonly intents: number
  readonly presence: unknown
  readonly properties: unknown
  /** Request path + query of the connection, e.g. "/?v=10&encoding=json". */
  readonly url: string
  /**
   * "ready": session started; "rate-limited": bucket violation answered with op 9; "session-limit":
   * no starts left; "sharding-required": closed with 4011 (count below requireShardCount).
   */
  readonly outcome: "ready" | "rate-limited" | "session-limit" | "sharding-required"
  readonly sessionId: string | undefined
}

export interface ResumeRecord {
  readonly connectionId: number
  /** Shard of the resumed session; undefined when the session is unknown. */
  readonly shardId: number | undefined
  /** Shard count of the resumed session; undefined when the session is unknown. */
  readonly shardCount: number | undefined
  readonly sessionId: string
  readonly seq: number | null
  readonly at: number
  readonly url: string
  /** True when the connection came in through READY's resume_gateway_url. */
  readonly viaResumeUrl: boolean
  /** "sharding-required": the session's count is below requireShardCount; closed with 4011, session ended. */
  readonly outcome: "resumed" | "unknown-session" | "invalid-seq" | "replay-gap" | "bad-token" | "sharding-required"
  /** Dispatches replayed before RESUMED. */
  readonly replayed: number
}

export interface ViolationRecord {
  readonly kind: "identify-bucket"
  readonly connectionId: number
  readonly shardId: number
  readonly bucket: number
  readonly at: number
  readonly previousAt: number
  readonly sinceMs: number
  /** True when the identify was refused with op 9 (enforceIdentifyLimit). */
  readonly enforced: boolean
}

export interface HeartbeatRecord {
  readonly connectionId: number
  readonly shardId: number | undefined
  readonly d: unknown
  readonly at: number
  /** True when the fake answered with op 11. */
  readonly acked: boolean
}

export interface ReceivedRecord {
  readonly connectionId: number
  readonly shardId: number | undefined
  readonly op: number
  readonly d: unknown
  readonly at: number
}

export interface CloseRecord {
  readonly connectionId: number
  readonly shardId: number | undefined
  /** Who initiated: the client (close frame or TCP drop) or the fake (close frame or dropShard). */
  readonly by: "client" | "server"
  /** 1006 when the TCP connection ended without a close frame. */
  readonly code: number
  readonly reason: string
  readonly at: number
}

export interface RestCallRecord {
  readonly method: string
  readonly path: string
  readonly version: number | undefined
  readonly status: number
  readonly authorized: boolean
  readonly at: number
}

export interface Counters {
  /** IDENTIFYs that started a session (READY sent). */
  identifies: number
  /** RESUMEs that succeeded (RESUMED sent). */
  resumes: number
  /** WebSocket connections accepted since start. */
  connections: number
  /** Connections closed with 4008 for exceeding the send rate. */
  rateLimitCloses: number
}

/**
 * A shard (id and count) authenticated on one connection while another live connection still ran
 * it. Shard 1 of 4 and shard 1 of 8 (two generations of a reshard) are different shards.
 */
export interface OverlapRecord {
  readonly shardId: number
  readonly shardCount: number
  readonly connectionId: number
  readonly otherConnectionId: number
  readonly how: "identify" | "resume"
  readonly at: number
}

/** A websocket upgrade request, as the client sent it. */
export interface UpgradeRecord {
  readonly connectionId: number
  readonly userAgent: string | undefined
  /** The client's TCP port: tells which process owns the connection (see test/support/socketOwner.ts). */
  readonly remotePort: number | undefined
}

/**
 * One dispatch written to a connection (only while recordDeliveries is on; blast and sendOversized
 * are not recorded). A replayed dispatch (RESUME) is recorded again, with the resuming connection.
 */
export interface DeliveryRecord {
  readonly connectionId: number
  readonly sessionId: string
  readonly shardId: number
  readonly shardCount: number
  readonly seq: number
  readonly t: string
  readonly replayed: boolean
  readonly at: number
}

export class Records {
  readonly overlaps: Array<OverlapRecord> = []
  readonly upgrades: Array<UpgradeRecord> = []
  readonly identifies: Array<IdentifyRecord> = []
  readonly resumes: Array<ResumeRecord> = []
  readonly violations: Array<ViolationRecord> = []
  readonly heartbeats: Array<HeartbeatRecord> = []
  readonly received: Array<ReceivedRecord> = []
  readonly closes: Array<CloseRecord> = []
  readonly restCalls: Array<RestCallRecord> = []
  readonly deliveries: Array<DeliveryRecord> = []
  /** Per shardKey(id, count): the most live connections that ran the shard at once. */
  readonly maxConcurrent = new Map<string, number>()
  readonly counters: Counters = { identifies: 0, resumes: 0, connections: 0, rateLimitCloses: 0 }
}
