// A fake Discord for end-to-end tests, the demo and benchmarks: REST (/gateway, /gateway/bot)
// and the WebSocket gateway on one port, plus a control API to script failures and inspect what
// the client did. Control methods address shards by id (the shard's current session, or its newest
// live connection).
import { createServer } from "node:http"
import type { Server } from "node:http"
import type { AddressInfo } from "node:net"
import { WebSocketServer } from "ws"
import { blast } from "./blast.ts"
import type { BlastPayload } from "./blast.ts"
import type { GatewayConnection } from "./connection.ts"
import { createRng } from "./events.ts"
import { attachGateway, deliver, serverClose, serverDrop } from "./gateway.ts"
import { IdentifyLimiter } from "./limits.ts"
import type { SessionStartLimit } from "./limits.ts"
import { resolveOptions } from "./options.ts"
import type { FakeContext, FakeDiscordOptions, RestFailure } from "./options.ts"
import { CloseCode, frameText, Op, opText } from "./protocol.ts"
import { Records } from "./records.ts"
import type { CloseRecord, Counters, DeliveryRecord, HeartbeatRecord, IdentifyRecord, ReceivedRecord, RestCallRecord, ResumeRecord, ViolationRecord, OverlapRecord, UpgradeRecord } from "./records.ts"
import { createRestHandler } from "./rest.ts"
import { SessionStore, shardKey } from "./sessions.ts"
import type { Session } from "./sessions.ts"
import { shardOf } from "./snowflake.ts"
import { CONN_FIELD } from "./delivery.ts"
import { createTrickle } from "./trickle.ts"
import type { Trickle } from "./trickle.ts"

export type { FakeDiscordOptions, RestFailure } from "./options.ts"
export type { BlastPayload } from "./blast.ts"
export type { SessionStartLimit } from "./limits.ts"
export type * from "./records.ts"
export { CONN_FIELD } from "./delivery.ts"

export interface SessionInfo {
  readonly sessionId: string
  readonly shardId: number
  readonly shardCount: number
  /** Last seq handed out on this session. */
  readonly seq: number
  readonly resumeGatewayUrl: string
  readonly guildIds: ReadonlyArray<string>
  /** A connection is attached and writable (not closing, not zombie). */
  readonly connected: boolean
  readonly connectionId: number | undefined
}

/** One session a guild event was appended to by dispatchGuildAll. */
export interface GuildDelivery {
  readonly sessionId: string
  readonly shardId: number
  readonly shardCount: number
  readonly seq: number
  /** The connection it was written to; undefined when the session is disconnected (it waits in the replay buffer). */
  readonly connectionId: number | undefined
}

interface Waiter {
  readonly check: () => boolean
  readonly fail: (error: Error) => void
}

export class FakeDiscord {
  readonly #ctx: FakeContext
  readonly #server: Server
  readonly #wss: WebSocketServer
  readonly #trickle: Trickle
  readonly #waiters = new Set<Waiter>()
  #notifyScheduled = false
  #closed = false
  /** http://host:port — REST base. */
  readonly url: string
  /** host:port, the value for DISCORD_API_HOST. */
  readonly host: string
  readonly port: number
  /** ws://host:port — returned by /gateway and /gateway/bot. */
  readonly gatewayUrl: string
  /** READY.resume_gateway_url (same server, path /resume). */
  readonly resumeGatewayUrl: string
  readonly token: string

  /** Use startFakeDiscord(). */
  constructor(ctx: FakeContext, server: Server, wss: WebSocketServer, port: number) {
    this.#ctx = ctx
    this.#server = server
    this.#wss = wss
    this.port = port
    const hostname = ctx.options.host.includes(":") ? `[${ctx.options.host}]` : ctx.options.host
    this.host = `${hostname}:${port}`
    this.url = `http://${this.host}`
    this.gatewayUrl = `ws://${this.host}`
    this.resumeGatewayUrl = `ws://${this.host}/resume`
    this.token = ctx.options.token
    ctx.gatewayUrl = this.gatewayUrl
    ctx.resumeGatewayUrl = this.resumeGatewayUrl
    ctx.notify = () => this.#scheduleCheck()
    this.#trickle = createTrickle(ctx, createRng(ctx.options.seed))
  }

  // ---- records -------------------------------------------------------------------------------

  get identifies(): ReadonlyArray<IdentifyRecord> { return this.#ctx.records.identifies }
  get resumes(): ReadonlyArray<ResumeRecord> { return this.#ctx.records.resumes }
  get violations(): ReadonlyArray<ViolationRecord> { return this.#ctx.records.violations }
  /**
   * Moments two live connections ran one shard (two gateway processes on one shard). A shard is an
   * (id, count) pair: shard 1 of 4 next to shard 1 of 8 (a reshard's two generations) is no overlap.
   */
  get overlaps(): ReadonlyArray<OverlapRecord> { return this.#ctx.records.overlaps }
  /** Dispatches written to connections, while recordDeliveries is on (see setRecordDeliveries). */
  get deliveries(): ReadonlyArray<DeliveryRecord> { return this.#ctx.records.deliveries }
  /** Every websocket upgrade request (its User-Agent header). */
  get upgrades(): ReadonlyArray<UpgradeRecord> { return this.#ctx.records.upgrades }
  get heartbeats(): ReadonlyArray<HeartbeatRecord> { return this.#ctx.records.heartbeats }
  get received(): ReadonlyArray<ReceivedRecord> { return this.#ctx.records.received }
  get closes(): ReadonlyArray<CloseRecord> { return this.#ctx.records.closes }
  get restCalls(): ReadonlyArray<RestCallRecord> { return this.#ctx.records.restCalls }
  get counters(): Readonly<Counters> { return this.#ctx.records.counters }
  /** Currently open WebSocket connections (counters.connections is the total ever accepted). */
  get connections(): number { return this.#ctx.connections.size }
  get sessionStartLimit(): SessionStartLimit { return this.#ctx.limiter.snapshot() }

  // ---- dispatching ---------------------------------------------------------------------------

  /**
   * Appends a dispatch to the shard's current session and returns its seq. Delivered now when the
   * shard is connected, else kept in the replay buffer and delivered on RESUME. When the shard has
   * no session at all, the dispatch is queued, delivered right after the next READY (and its
   * GUILD_CREATEs), and -1 is returned.
   */
  dispatch(shardId: number, t: string, d: unknown): number {
    const dJson = JSON.stringify(d ?? null)
    const session = this.#ctx.sessions.ofShard(shardId)
    if (session === undefined) {
      this.#ctx.sessions.queue(shardId, { t, dJson })
      return -1
    }
    const seq = deliver(this.#ctx, session, t, dJson)
    this.#ctx.notify()
    return seq
  }

  /** Shard owning a guild: `(guild_id >> 22) % shardCount`, using the count the shards identified with. */
  shardForGuild(guildId: string | bigint): number {
    for (const session of this.#ctx.sessions.all()) {
      if (shardOf(guildId, session.shardCount) === session.shardId) return session.shardId
    }
    const last = this.#ctx.records.identifies.at(-1)
    return shardOf(guildId, last?.shardCount ?? this.#ctx.shardCount)
  }

  /**
   * dispatchGuildAll, returning one seq: the one in the session of the largest shard count (the
   * newest generation during a reshard), or -1 when no session owns the guild and it was queued.
   */
  dispatchGuild(guildId: string | bigint, t: string, d: unknown): number {
    const deliveries = this.dispatchGuildAll(guildId, t, d)
    let newest: GuildDelivery | undefined
    for (const delivery of deliveries) if (newest === undefined || delivery.shardCount >= newest.shardCount) newest = delivery
    return newest?.seq ?? -1
  }

  /**
   * Like Discord: appends the guild's event to every alive session (connected or resumable) whose
   * (shard id, count) owns the guild, so during a reshard both generations get it, and two
   * sessions of one shard (an overlap) both get it too. Returns those sessions. When none owns the
   * guild, the event is queued for shardForGuild(guildId), as `dispatch` does, and [] is returned.
   */
  dispatchGuildAll(guildId: string | bigint, t: string, d: unknown): Array<GuildDelivery> {
    const owners = this.#ctx.sessions.owning(guildId)
    if (owners.length === 0) {
      this.dispatch(this.shardForGuild(guildId), t, d)
      return []
    }
    const dJson = JSON.stringify(d ?? null)
    const out = owners.map((session) => {
      const connectionId = session.connection?.writable === true ? session.connection.id : undefined
      const seq = deliver(this.#ctx, session, t, dJson)
      return { sessionId: session.id, shardId: session.shardId, shardCount: session.shardCount, seq, connectionId }
    })
    this.#ctx.notify()
    return out
  }

  /** Dispatches to the current session of every shard id; returns shardId → seq. */
  broadcast(t: string, d: unknown): Map<number, number> {
    const out = new Map<number, number>()
    for (const session of this.#ctx.sessions.all()) out.set(session.shardId, this.dispatch(session.shardId, t, d))
    return out
  }

  /** Sends `payloads` as dispatches as fast as the client reads; resolves with the last seq once all are handed to the kernel. */
  blast(shardId: number, payloads: Iterable<BlastPayload>): Promise<number> {
    return blast(this.#ctx, shardId, payloads)
  }

  /**
   * Sends the shard one dispatch `t` (default GUILD_CREATE) whose JSON text is `bytes` long,
   * `{"t":..,"s":..,"op":0,"d":{"pad":"…"}}`, to test the client's size limits. Built in 1 MiB
   * pieces, so the fake never holds it whole where the transport allows (see
   * GatewayConnection.sendPieces): with pad "repeat" (default) compressed streams make it a bomb
   * (300 MB become about 300 KB of zlib); pad "random" does not compress much. With `split`,
   * each compressed chunk is its own websocket message (unfinished zlib data for the client to
   * buffer). It takes a seq; a RESUME replays a small stand-in with the same t and s and
   * `d: {"oversized_replay": true}` instead. Returns the seq, or -1 when the shard has no live
   * connection.
   */
  sendOversized(shardId: number, options: { readonly bytes: number; readonly t?: string; readonly pad?: "repeat" | "random"; readonly split?: boolean }): number {
    const session = this.#ctx.sessions.ofShard(shardId)
    const conn = this.#connectionOf(shardId)
    if (session === undefined || conn === undefined || !conn.writable) return -1
    const t = options.t ?? "GUILD_CREATE"
    const { seq } = session.append((s) => frameText(t, s, Op.Dispatch, `{"oversized_replay":true}`))
    const head = Buffer.from(`{"t":${JSON.stringify(t)},"s":${seq},"op":0,"d":{"pad":"`)
    const tail = Buffer.from(`"}}`)
    conn.sendPieces(oversizedPieces(head, Math.max(0, options.bytes - head.length - tail.length), tail, options.pad ?? "repeat"), options.split ?? false)
    this.#ctx.notify()
    return seq
  }

  startTrickle(ratePerSec: number): void { this.#trickle.start(ratePerSec) }
  stopTrickle(): void { this.#trickle.stop() }

  // ---- failure injection (all return false when the shard has no live connection) ------------

  /** The shard's live connection: its current session's, else the newest one that identified/resumed as it. */
  #connectionOf(shardId: number): GatewayConnection | undefined {
    const current = this.#ctx.sessions.ofShard(shardId)?.connection
    if (current !== undefined && current.state === "open") return current
    let found: GatewayConnection | undefined
    for (const conn of this.#ctx.connections) if (conn.shardId === shardId && conn.state === "open") found = conn
    return found
  }

  /** op 7 Reconnect. The connection stays open until the client closes it. */
  sendReconnect(shardId: number): boolean {
    const conn = this.#connectionOf(shardId)
    conn?.send(opText(Op.Reconnect, null))
    return conn !== undefined
  }

  /** op 9 Invalid Session with d = resumable; with false the session is also forgotten. */
  invalidateSession(shardId: number, resumable: boolean): boolean {
    const conn = this.#connectionOf(shardId)
    conn?.send(opText(Op.InvalidSession, resumable))
    const session = this.#ctx.sessions.ofShard(shardId)
    if (!resumable && session !== undefined) this.#ctx.sessions.forget(session)
    this.#ctx.notify()
    return conn !== undefined || (!resumable && session !== undefined)
  }

  /** op 1 from the server: the client must heartbeat immediately. */
  requestHeartbeat(shardId: number): boolean {
    const conn = this.#connectionOf(shardId)
    conn?.send(opText(Op.Heartbeat, null))
    return conn !== undefined
  }

  /** Close frame with `code` (sent after frames already queued). 4007 and 4009 also end the session. */
  closeShard(shardId: number, code: number, reason = ""): boolean {
    const conn = this.#connectionOf(shardId)
    if (conn !== undefined) serverClose(this.#ctx, conn, code, reason)
    return conn !== undefined
  }

  /** Destroys the TCP connection without a close frame; the session stays resumable. */
  dropShard(shardId: number): boolean {
    const conn = this.#connectionOf(shardId)
    if (conn !== undefined) serverDrop(this.#ctx, conn, "dropShard")
    return conn !== undefined
  }

  /**
   * Zombie: the connection stays TCP-open and keeps reading (heartbeats are recorded, acked:false)
   * but nothing is written: no ACK, no dispatch (they go to the replay buffer), no close/pong reply,
   * no 4009 timeout close. Applies to the current connection only; a reconnect is healthy again.
   */
  setZombie(shardId: number, on: boolean): boolean {
    const conn = this.#connectionOf(shardId)
    conn?.setZombie(on)
    this.#ctx.notify()
    return conn !== undefined
  }

  /** Silent: heartbeats are not ACKed but dispatches still flow (current connection only). */
  setSilent(shardId: number, on: boolean): boolean {
    const conn = this.#connectionOf(shardId)
    if (conn !== undefined) conn.silent = on
    return conn !== undefined
  }

  /** Drops the shard's session without telling the client; a later RESUME gets op 9 false. */
  forgetSession(shardId: number): boolean {
    const session = this.#ctx.sessions.ofShard(shardId)
    if (session !== undefined) this.#ctx.sessions.forget(session)
    this.#ctx.notify()
    return session !== undefined
  }

  // ---- settings --------------------------------------------------------------------------------

  setSessionStartLimit(limit: Partial<SessionStartLimit>): void { this.#ctx.limiter.set(limit) }
  /** Makes the next `times` /gateway/bot calls answer `status` (and `body`, if given); undefined clears. */
  setRestFailures(failure: RestFailure | undefined): void {
    this.#ctx.restFailures = failure === undefined || failure.times <= 0
      ? undefined
      : { status: failure.status, remaining: failure.times, retryAfterSec: failure.retryAfterSec ?? 1, body: failure.body }
  }
  /**
   * The recommended shard count: `shards` of every later /gateway/bot answer. Nothing else changes:
   * live sessions keep their count, and IDENTIFY with any count is still accepted (see
   * requireShardCount to refuse smaller ones).
   */
  setShardCount(count: number): void {
    if (!Number.isSafeInteger(count) || count < 1) throw new RangeError(`setShardCount: a shard count is an integer >= 1, got ${count}`)
    this.#ctx.shardCount = count
  }
  /** What /gateway/bot answers as `shards` now. */
  get recommendedShardCount(): number { return this.#ctx.shardCount }

  /**
   * Discord's "Sharding required": from now on IDENTIFY and RESUME with a shard count below `count`
   * are closed with 4011, and every live connection running such a count is closed with 4011 now
   * (its session stays known so a RESUME of it also gets 4011, then ends). Raises the recommended
   * count to `count` when it is lower. `requireShardCount(1)` lifts the requirement. Returns the
   * number of connections closed.
   */
  requireShardCount(count: number): number {
    if (!Number.isSafeInteger(count) || count < 1) throw new RangeError(`requireShardCount: a shard count is an integer >= 1, got ${count}`)
    this.#ctx.minShardCount = count
    if (this.#ctx.shardCount < count) this.#ctx.shardCount = count
    let closed = 0
    for (const conn of [...this.#ctx.connections]) {
      if (!conn.authenticated || conn.state !== "open" || conn.shardCount === undefined || conn.shardCount >= count) continue
      serverClose(this.#ctx, conn, CloseCode.ShardingRequired, "Sharding required.")
      closed++
    }
    this.#ctx.notify()
    return closed
  }
  /** The smallest shard count accepted now (1 unless requireShardCount raised it). */
  get minShardCount(): number { return this.#ctx.minShardCount }

  /** Adds `"_conn": <connection id>` as the first member of every dispatch's `d` object from now on (replays included; not blast/sendOversized). */
  setTagConnections(on: boolean): void { this.#ctx.tagConnections = on }
  /** Records every dispatch written to a connection in `deliveries` from now on (not blast/sendOversized). */
  setRecordDeliveries(on: boolean): void { this.#ctx.recordDeliveries = on }
  setMaxConcurrency(maxConcurrency: number): void { this.#ctx.limiter.maxConcurrency = Math.max(1, maxConcurrency) }

  // ---- inspection ----------------------------------------------------------------------------

  /**
   * Shard ids whose current session has a writable connection (READY or RESUMED sent), sorted. With
   * `shardCount`, the ids of that count's sessions only (e.g. readyShards(8) during a 4 -> 8 reshard).
   */
  readyShards(shardCount?: number): Array<number> {
    const sessions = shardCount === undefined ? this.#ctx.sessions.all() : this.#ctx.sessions.everySession().filter((s) => s.shardCount === shardCount)
    return [...new Set(sessions.filter((s) => s.connection?.writable === true).map((s) => s.shardId))].sort((a, b) => a - b)
  }

  /** The current session of the shard id (any count), or of shard `shardId` of `shardCount`. */
  sessionOf(shardId: number, shardCount?: number): SessionInfo | undefined {
    const session = shardCount === undefined ? this.#ctx.sessions.ofShard(shardId) : this.#ctx.sessions.ofKey(shardId, shardCount)
    return session === undefined ? undefined : sessionInfo(session)
  }

  /** Every alive session (connected or resumable) of every shard count, sorted by count, then id. */
  sessions(): Array<SessionInfo> {
    return this.#ctx.sessions.everySession().map(sessionInfo).sort((a, b) => a.shardCount - b.shardCount || a.shardId - b.shardId)
  }

  /** IDENTIFYs of the shard that started a session (READY sent); of any count unless `shardCount` is given. */
  identifiesOf(shardId: number, shardCount?: number): number {
    return this.#ctx.records.identifies.filter((r) => r.outcome === "ready" && r.shardId === shardId && (shardCount === undefined || r.shardCount === shardCount)).length
  }

  /** Successful RESUMEs (RESUMED sent) of the shard; of any count unless `shardCount` is given. */
  resumesOf(shardId: number, shardCount?: number): number {
    return this.#ctx.records.resumes.filter((r) => r.outcome === "resumed" && r.shardId === shardId && (shardCount === undefined || r.shardCount === shardCount)).length
  }

  /**
   * The most live connections that ran the shard (id and count) at once, measured whenever one
   * authenticated: 1 when the shard never overlapped, 0 when it never ran. Without `shardCount`,
   * the largest over every count the shard id ran with.
   */
  maxConcurrent(shardId: number, shardCount?: number): number {
    const max = this.#ctx.records.maxConcurrent
    if (shardCount !== undefined) return max.get(shardKey(shardId, shardCount)) ?? 0
    let out = 0
    for (const [key, value] of max) if (key.startsWith(`${shardId}/`)) out = Math.max(out, value)
    return out
  }

  /** The connection that wrote a tagged dispatch: its `d._conn` (see setTagConnections), else undefined. */
  static connectionOf(d: unknown): number | undefined {
    if (typeof d !== "object" || d === null) return undefined
    const conn = (d as Record<string, unknown>)[CONN_FIELD]
    return typeof conn === "number" ? conn : undefined
  }

  // ---- waiting ---------------------------------------------------------------------------------

  /**
   * Resolves with the predicate's first truthy value. Re-checked after every state change of the
   * fake (after the handler finished) and every 20 ms; rejects after `timeoutMs`.
   */
  waitFor<T>(predicate: () => T | undefined | null | false, timeoutMs = 10_000, label = "condition"): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      let interval: ReturnType<typeof setInterval> | undefined
      let timeout: ReturnType<typeof setTimeout> | undefined
      const finish = (): void => {
        this.#waiters.delete(waiter)
        clearInterval(interval)
        clearTimeout(timeout)
      }
      const waiter: Waiter = {
        check: () => {
          let value: T | undefined | null | false
          try {
            value = predicate()
          } catch (error) {
            finish()
            reject(error)
            return true
          }
          if (value === undefined || value === null || value === false) return false
          finish()
          resolve(value)
          return true
        },
        fail: (error) => {
          finish()
          reject(error)
        }
      }
      if (waiter.check()) return
      this.#waiters.add(waiter)
      interval = setInterval(() => waiter.check(), 20)
      timeout = setTimeout(() => waiter.fail(new Error(`waitFor(${label}) timed out after ${timeoutMs} ms`)), timeoutMs)
    })
  }

  #scheduleCheck(): void {
    if (this.#notifyScheduled || this.#waiters.size === 0) return
    this.#notifyScheduled = true
    queueMicrotask(() => {
      this.#notifyScheduled = false
      for (const waiter of [...this.#waiters]) waiter.check()
    })
  }

  /** Stops the trickle, terminates every socket and closes the server. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    this.#trickle.stop()
    for (const conn of this.#ctx.connections) conn.ws.terminate()
    this.#ctx.sessions.clear()
    for (const waiter of [...this.#waiters]) waiter.fail(new Error("fake Discord closed"))
    await new Promise<void>((resolve) => this.#wss.close(() => resolve()))
    this.#server.closeAllConnections()
    await new Promise<void>((resolve) => this.#server.close(() => resolve()))
  }
}

const PIECE = 1024 * 1024
const LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

/** head, `padBytes` of pad in pieces of at most 1 MiB, tail. "repeat" reuses one buffer. */
function* oversizedPieces(head: Buffer, padBytes: number, tail: Buffer, pad: "repeat" | "random"): Generator<Buffer> {
  yield head
  const repeated = pad === "repeat" ? Buffer.alloc(Math.min(PIECE, padBytes), "a") : undefined
  for (let left = padBytes; left > 0; left -= PIECE) {
    const n = Math.min(PIECE, left)
    if (repeated !== undefined) yield repeated.subarray(0, n)
    else {
      const piece = Buffer.allocUnsafe(n)
      for (let i = 0; i < n; i++) piece[i] = LETTERS.charCodeAt(Math.floor(Math.random() * LETTERS.length))
      yield piece
    }
  }
  yield tail
}

export async function startFakeDiscord(options: FakeDiscordOptions = {}): Promise<FakeDiscord> {
  const resolved = resolveOptions(options)
  const ctx: FakeContext = {
    options: resolved,
    records: new Records(),
    sessions: new SessionStore(resolved.sessionTimeoutMs, (session) => {
      resolved.log(`shard ${session.shardId}: session ${session.id} expired`)
      ctx.notify()
    }),
    limiter: new IdentifyLimiter(resolved.sessionStartLimit, resolved.maxConcurrency, resolved.identifyIntervalMs),
    connections: new Set(),
    shardCount: resolved.shardCount,
    minShardCount: resolved.minShardCount,
    tagConnections: resolved.tagConnections,
    recordDeliveries: resolved.recordDeliveries,
    restFailures: undefined,
    gatewayUrl: "",
    resumeGatewayUrl: "",
    notify: () => {}
  }
  const server = createServer(createRestHandler(ctx))
  server.on("clientError", (_error, socket) => socket.destroy())
  const wss = new WebSocketServer({ server, perMessageDeflate: false, maxPayload: 1024 * 1024 })
  wss.on("error", () => {})
  attachGateway(ctx, wss)
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject)
    server.listen(resolved.port, resolved.host, () => {
      server.off("error", reject)
      resolve()
    })
  })
  server.on("error", (error) => resolved.log(`server error: ${String(error)}`))
  const fake = new FakeDiscord(ctx, server, wss, (server.address() as AddressInfo).port)
  fake.setRestFailures(options.restFailures)
  resolved.log(`fake Discord listening on ${fake.url}`)
  return fake
}

function sessionInfo(session: Session): SessionInfo {
  return {
    sessionId: session.id,
    shardId: session.shardId,
    shardCount: session.shardCount,
    seq: session.seq,
    resumeGatewayUrl: session.resumeGatewayUrl,
    guildIds: [...session.guildIds],
    connected: session.connection?.writable === true,
    connectionId: session.connection?.id
  }
}
