// The server side of the gateway protocol: HELLO, heartbeats, IDENTIFY, RESUME, client commands,
// close handling. Every decision is recorded in ctx.records before the client can observe it.
import { randomUUID } from "node:crypto"
import type { IncomingMessage } from "node:http"
import type { RawData, WebSocket, WebSocketServer } from "ws"
import type { CompressKind } from "./compression.ts"
import { GatewayConnection } from "./connection.ts"
import type { PreparedBody } from "./connection.ts"
import { replayDispatches, sendDispatch } from "./delivery.ts"
import { makeGuildCreate, makeGuildMembersChunk, makeUser, makeVoiceStateUpdate } from "./events.ts"
import type { FakeContext } from "./options.ts"
import type { ResumeRecord } from "./records.ts"
import {
  ALL_INTENTS,
  CLIENT_OPS,
  CloseCode,
  dispatchPrefix,
  frameText,
  MAX_CLIENT_PAYLOAD_BYTES,
  Op,
  opText,
  PRIVILEGED_INTENTS,
  SUPPORTED_VERSIONS,
  trace
} from "./protocol.ts"
import { Session, shardKey } from "./sessions.ts"
import { guildIdForShard, userId } from "./snowflake.ts"

/** The bot user of READY (user 0 of the generators, so it is also a member of every guild). */
export const BOT_USER = { ...makeUser(0), username: "fake-bot", global_name: null, bot: true, verified: true, mfa_enabled: false, email: null }
export const APPLICATION_ID = userId(0)

type Obj = Record<string, unknown>
const isObject = (value: unknown): value is Obj => typeof value === "object" && value !== null && !Array.isArray(value)
const isInt = (value: unknown): value is number => typeof value === "number" && Number.isSafeInteger(value)

/** Appends a dispatch to the session and sends it when the session has a writable connection. */
export function deliver(ctx: FakeContext, session: Session, t: string, dJson: string): number {
  const { seq, text } = session.append((s) => frameText(t, s, Op.Dispatch, dJson))
  if (session.connection !== undefined) sendDispatch(ctx, session.connection, session, seq, t, text, false)
  return seq
}

/** Like `deliver`, for a body serialized once and sent many times (blast). */
export function deliverPrepared(session: Session, t: string, body: PreparedBody): number {
  const { seq } = session.append((s) => dispatchPrefix(t, s) + body.dJson + "}")
  session.connection?.sendPrepared(dispatchPrefix(t, seq), body)
  return seq
}

/** Fake-initiated close: recorded now; 4007/4009 also end the session (it cannot be resumed). */
export function serverClose(ctx: FakeContext, conn: GatewayConnection, code: number, reason: string): void {
  if (conn.state !== "open") return
  conn.serverClose = { code, reason }
  ctx.records.closes.push({ connectionId: conn.id, shardId: conn.shardId, by: "server", code, reason, at: Date.now() })
  if ((code === CloseCode.InvalidSeq || code === CloseCode.SessionTimedOut) && conn.session !== undefined) {
    ctx.sessions.forget(conn.session)
  }
  ctx.options.log(`conn#${conn.id} shard ${conn.shardId ?? "-"}: server close ${code} ${reason}`)
  conn.close(code, reason)
  ctx.notify()
}

/** Fake-initiated TCP drop (no close frame); recorded with code 1006. */
export function serverDrop(ctx: FakeContext, conn: GatewayConnection, reason: string): void {
  if (conn.state === "closed") return
  if (conn.serverClose === undefined) {
    conn.serverClose = { code: 1006, reason }
    ctx.records.closes.push({ connectionId: conn.id, shardId: conn.shardId, by: "server", code: 1006, reason, at: Date.now() })
  }
  conn.drop()
  ctx.notify()
}

function sendOp(conn: GatewayConnection, op: number, d: unknown): void {
  conn.send(opText(op, d))
}

export function attachGateway(ctx: FakeContext, wss: WebSocketServer): void {
  let nextConnectionId = 0
  const hbTimeout = Math.round(ctx.options.heartbeatIntervalMs * ctx.options.heartbeatTimeoutFactor)
  const lastAllMembersRequest = new Map<string, number>()

  const armWatchdog = (conn: GatewayConnection): void => {
    conn.armWatchdog(hbTimeout, () => {
      // A zombie connection must not send anything, not even the timeout close.
      if (conn.zombie) armWatchdog(conn)
      else serverClose(ctx, conn, CloseCode.SessionTimedOut, "Session timed out.")
    })
  }

  wss.on("connection", (ws: WebSocket, req: IncomingMessage) => {
    const id = ++nextConnectionId
    const rawUrl = req.url ?? "/"
    const parsed = new URL(rawUrl, "http://fake-discord")
    // The client appends its own query to resume_gateway_url, so match on the path only.
    const viaResumeUrl = parsed.pathname.replace(/\/+$/, "") === "/resume"
    const compressParam = parsed.searchParams.get("compress")
    const compress: CompressKind | undefined =
      compressParam === "zlib-stream" || compressParam === "zstd-stream" ? compressParam : undefined
    const conn = new GatewayConnection({
      id,
      ws,
      socket: req.socket,
      url: rawUrl,
      version: Number(parsed.searchParams.get("v") ?? Number.NaN),
      viaResumeUrl,
      compress,
      engine: ctx.options.compressionEngine,
      splitFramesOver: ctx.options.splitFramesOver,
      sendLimit: ctx.options.sendLimit
    })
    ctx.connections.add(conn)
    ctx.records.counters.connections++
    ctx.records.upgrades.push({ connectionId: id, userAgent: req.headers["user-agent"], remotePort: req.socket.remotePort })
    ctx.options.log(`conn#${id} open ${rawUrl}`)
    req.socket.on("error", () => {})
    ws.on("error", () => {})
    ws.on("message", (data: RawData) => {
      try {
        onMessage(conn, data)
      } catch (error) {
        ctx.options.log(`conn#${id} handler error: ${String(error)}`)
        serverClose(ctx, conn, CloseCode.UnknownError, "Unknown error.")
      }
    })
    ws.on("close", (code: number, reason: Buffer) => onClose(conn, code, reason.toString()))

    if (!SUPPORTED_VERSIONS.has(conn.version)) return serverClose(ctx, conn, CloseCode.InvalidApiVersion, "Invalid API version.")
    const encoding = parsed.searchParams.get("encoding")
    if (encoding !== null && encoding !== "json") return serverClose(ctx, conn, CloseCode.DecodeError, "Unsupported encoding (the fake speaks json only).")
    if (compressParam !== null && compress === undefined) return serverClose(ctx, conn, CloseCode.DecodeError, "Unsupported compression.")

    conn.send(frameText(null, null, Op.Hello, JSON.stringify({ heartbeat_interval: ctx.options.heartbeatIntervalMs, _trace: trace("hello") })))
    armWatchdog(conn)
    ctx.notify()
  })

  /**
   * Two gateway processes running one shard: a connection authenticates for a shard (id and count)
   * while another connection of that shard is open, authenticated and still live (it sent a frame
   * within two heartbeat intervals). An abandoned socket (its process frozen or gone) does not
   * count, nor does the same shard id of another count (the two generations of a reshard).
   * Also tracks the most live connections each shard had at once.
   */
  function checkOverlap(conn: GatewayConnection, shardId: number, shardCount: number, how: "identify" | "resume"): void {
    const now = Date.now()
    let live = 1
    for (const other of ctx.connections) {
      if (other === conn || other.shardId !== shardId || other.shardCount !== shardCount || !other.authenticated || other.state !== "open") continue
      if (now - other.lastFrameAt > 2 * ctx.options.heartbeatIntervalMs) continue
      live++
      ctx.records.overlaps.push({ shardId, shardCount, connectionId: conn.id, otherConnectionId: other.id, how, at: now })
      ctx.options.log(`conn#${conn.id} shard ${shardId}/${shardCount}: ${how} while conn#${other.id} still runs the shard (overlap)`)
    }
    const key = shardKey(shardId, shardCount)
    ctx.records.maxConcurrent.set(key, Math.max(live, ctx.records.maxConcurrent.get(key) ?? 0))
  }

  function onMessage(conn: GatewayConnection, data: RawData): void {
    if (conn.state !== "open") return
    conn.lastFrameAt = Date.now()
    const buffer = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data)
    const now = Date.now()
    if (!conn.countPayload(now)) {
      ctx.records.counters.rateLimitCloses++
      return serverClose(ctx, conn, CloseCode.RateLimited, "You are being rate limited.")
    }
    if (buffer.length > MAX_CLIENT_PAYLOAD_BYTES) return serverClose(ctx, conn, CloseCode.DecodeError, "Payload too large.")
    let payload: unknown
    try {
      payload = JSON.parse(buffer.toString("utf8"))
    } catch {
      return serverClose(ctx, conn, CloseCode.DecodeError, "Error while decoding payload.")
    }
    if (!isObject(payload) || !isInt(payload.op)) return serverClose(ctx, conn, CloseCode.DecodeError, "Error while decoding payload.")
    const op = payload.op
    const d = payload.d
    ctx.records.received.push({ connectionId: conn.id, shardId: conn.shardId ?? shardHint(op, d), op, d, at: now })
    ctx.notify()
    if (!CLIENT_OPS.has(op)) return serverClose(ctx, conn, CloseCode.UnknownOpcode, "Unknown opcode.")
    if (op === Op.Heartbeat) return onHeartbeat(conn, d, now)
    if (op === Op.Identify) return onIdentify(conn, d, now)
    if (op === Op.Resume) return onResume(conn, d, now)
    if (!conn.authenticated) return serverClose(ctx, conn, CloseCode.NotAuthenticated, "Not authenticated.")
    onCommand(conn, op, d, now)
  }

  /** Shard id for records of IDENTIFY/RESUME payloads, before the connection knows its shard. */
  function shardHint(op: number, d: unknown): number | undefined {
    if (op === Op.Identify && isObject(d) && Array.isArray(d.shard) && isInt(d.shard[0])) return d.shard[0]
    if (op === Op.Identify && isObject(d) && d.shard === undefined) return 0
    if (op === Op.Resume && isObject(d) && typeof d.session_id === "string") return ctx.sessions.get(d.session_id)?.shardId
    return undefined
  }

  function onHeartbeat(conn: GatewayConnection, d: unknown, now: number): void {
    const acked = !conn.zombie && !conn.silent
    ctx.records.heartbeats.push({ connectionId: conn.id, shardId: conn.shardId, d, at: now, acked })
    if (acked) sendOp(conn, Op.HeartbeatAck, null)
    armWatchdog(conn)
  }

  function onIdentify(conn: GatewayConnection, d: unknown, now: number): void {
    const options = ctx.options
    if (conn.authenticated) return serverClose(ctx, conn, CloseCode.AlreadyAuthenticated, "Already authenticated.")
    if (!isObject(d)) return serverClose(ctx, conn, CloseCode.UnknownOpcode, "Invalid identify payload.")
    if (d.token !== options.token) return serverClose(ctx, conn, CloseCode.AuthenticationFailed, "Authentication failed.")
    if (!isObject(d.properties)) return serverClose(ctx, conn, CloseCode.UnknownOpcode, "Invalid identify payload.")
    let shardId = 0
    let shardCount = 1
    if (d.shard !== undefined) {
      const shard = d.shard
      if (!Array.isArray(shard) || shard.length !== 2 || !isInt(shard[0]) || !isInt(shard[1]) || shard[1] < 1 || shard[0] < 0 || shard[0] >= shard[1]) {
        return serverClose(ctx, conn, CloseCode.InvalidShard, "Invalid shard.")
      }
      shardId = shard[0]
      shardCount = shard[1]
    }
    const intents = d.intents
    if (!isInt(intents) || intents < 0 || intents > 0x7fffffff || (intents & ~ALL_INTENTS) !== 0) {
      return serverClose(ctx, conn, CloseCode.InvalidIntents, "Invalid intent(s).")
    }
    if ((intents & PRIVILEGED_INTENTS & ~options.allowedPrivilegedIntents) !== 0) {
      return serverClose(ctx, conn, CloseCode.DisallowedIntents, "Disallowed intent(s).")
    }

    const bucket = ctx.limiter.bucketOf(shardId)
    const base = { connectionId: conn.id, shardId, shardCount, bucket, at: now, intents, presence: d.presence, properties: d.properties, url: conn.url }
    if (shardCount < ctx.minShardCount) {
      ctx.records.identifies.push({ ...base, outcome: "sharding-required", sessionId: undefined })
      return serverClose(ctx, conn, CloseCode.ShardingRequired, "Sharding required.")
    }
    if (!ctx.limiter.hasSessionStart(now)) {
      ctx.records.identifies.push({ ...base, outcome: "session-limit", sessionId: undefined })
      options.log(`conn#${conn.id} shard ${shardId}: identify refused, no session starts left`)
      sendOp(conn, Op.InvalidSession, false)
      return ctx.notify()
    }
    const previousAt = ctx.limiter.tooSoon(bucket, now)
    if (previousAt !== undefined) {
      const enforced = options.enforceIdentifyLimit
      ctx.records.violations.push({ kind: "identify-bucket", connectionId: conn.id, shardId, bucket, at: now, previousAt, sinceMs: now - previousAt, enforced })
      options.log(`conn#${conn.id} shard ${shardId}: identify bucket ${bucket} violated (${now - previousAt} ms after the previous one)`)
      if (enforced) {
        ctx.records.identifies.push({ ...base, outcome: "rate-limited", sessionId: undefined })
        sendOp(conn, Op.InvalidSession, false)
        return ctx.notify()
      }
    }

    ctx.limiter.accept(bucket, now)
    checkOverlap(conn, shardId, shardCount, "identify")
    const guildIds = Array.from({ length: options.guildsPerShard }, (_, i) => guildIdForShard(shardId, shardCount, i))
    const session = new Session(randomUUID().replaceAll("-", ""), shardId, shardCount, guildIds, ctx.resumeGatewayUrl, options.replayLimit)
    conn.authenticated = true
    conn.shardId = shardId
    conn.shardCount = shardCount
    conn.session = session
    ctx.sessions.add(session)
    ctx.sessions.attach(session, conn)
    ctx.records.counters.identifies++
    ctx.records.identifies.push({ ...base, outcome: "ready", sessionId: session.id })
    options.log(`conn#${conn.id} shard ${shardId}/${shardCount}: READY session ${session.id}`)

    const ready = {
      v: conn.version,
      user_settings: {},
      user: BOT_USER,
      session_type: "normal",
      session_id: session.id,
      resume_gateway_url: session.resumeGatewayUrl,
      relationships: [],
      private_channels: [],
      presences: [],
      guilds: guildIds.map((id) => ({ id, unavailable: true })),
      guild_join_requests: [],
      geo_ordered_rtc_regions: ["rotterdam", "madrid", "frankfurt", "milan", "stockholm"],
      auth: {},
      application: { id: APPLICATION_ID, flags: 0 },
      shard: [shardId, shardCount],
      _trace: trace("ready")
    }
    deliver(ctx, session, "READY", JSON.stringify(ready))
    for (const guildId of guildIds) {
      deliver(ctx, session, "GUILD_CREATE", JSON.stringify(makeGuildCreate(guildId, { members: options.guildCreateMembers })))
    }
    for (const queued of ctx.sessions.takeQueued(shardId)) deliver(ctx, session, queued.t, queued.dJson)
    ctx.notify()
  }

  function onResume(conn: GatewayConnection, d: unknown, now: number): void {
    if (conn.authenticated) return serverClose(ctx, conn, CloseCode.AlreadyAuthenticated, "Already authenticated.")
    if (!isObject(d) || typeof d.session_id !== "string" || !(d.seq === null || isInt(d.seq))) {
      return serverClose(ctx, conn, CloseCode.UnknownOpcode, "Invalid resume payload.")
    }
    const sessionId = d.session_id
    const seq = d.seq
    const session = ctx.sessions.get(sessionId)
    const record = (outcome: ResumeRecord["outcome"], replayed = 0): void => {
      ctx.records.resumes.push({ connectionId: conn.id, shardId: session?.shardId, shardCount: session?.shardCount, sessionId, seq, at: now, url: conn.url, viaResumeUrl: conn.viaResumeUrl, outcome, replayed })
      ctx.options.log(`conn#${conn.id} shard ${session?.shardId ?? "-"}: resume ${sessionId} seq ${seq} -> ${outcome}`)
    }
    if (d.token !== ctx.options.token) {
      record("bad-token")
      return serverClose(ctx, conn, CloseCode.AuthenticationFailed, "Authentication failed.")
    }
    if (session === undefined) {
      record("unknown-session")
      sendOp(conn, Op.InvalidSession, false)
      return ctx.notify()
    }
    if (session.shardCount < ctx.minShardCount) {
      record("sharding-required")
      ctx.sessions.forget(session)
      return serverClose(ctx, conn, CloseCode.ShardingRequired, "Sharding required.")
    }
    const from = seq ?? 0
    if (from > session.seq) {
      record("invalid-seq")
      conn.session = session
      return serverClose(ctx, conn, CloseCode.InvalidSeq, "Invalid seq.")
    }
    const replay = session.replayAfter(from)
    if (replay === undefined) {
      record("replay-gap")
      ctx.sessions.forget(session)
      sendOp(conn, Op.InvalidSession, false)
      return ctx.notify()
    }
    checkOverlap(conn, session.shardId, session.shardCount, "resume")
    // One live connection per session: the previous one is cut (it was presumably abandoned).
    const previous = session.connection
    if (previous !== undefined && previous !== conn) {
      previous.session = undefined
      serverDrop(ctx, previous, "Superseded by a resumed connection.")
    }
    conn.authenticated = true
    conn.shardId = session.shardId
    conn.shardCount = session.shardCount
    conn.session = session
    ctx.sessions.attach(session, conn)
    replayDispatches(ctx, conn, session, replay)
    deliver(ctx, session, "RESUMED", JSON.stringify({ _trace: trace("resumed") }))
    ctx.records.counters.resumes++
    record("resumed", replay.length)
    ctx.notify()
  }

  function onCommand(conn: GatewayConnection, op: number, d: unknown, now: number): void {
    if (!isObject(d)) return serverClose(ctx, conn, CloseCode.UnknownOpcode, "Invalid payload.")
    const session = conn.session
    if (op === Op.PresenceUpdate) return
    if (op === Op.RequestSoundboardSounds) {
      if (!Array.isArray(d.guild_ids)) return serverClose(ctx, conn, CloseCode.UnknownOpcode, "Invalid payload.")
      if (session === undefined) return
      for (const guildId of d.guild_ids) deliver(ctx, session, "SOUNDBOARD_SOUNDS", JSON.stringify({ soundboard_sounds: [], guild_id: String(guildId) }))
      return
    }
    if (typeof d.guild_id !== "string") return serverClose(ctx, conn, CloseCode.UnknownOpcode, "Invalid payload.")
    const guildId = d.guild_id
    if (session === undefined) return
    if (op === Op.VoiceStateUpdate) {
      const channel = typeof d.channel_id === "string" ? d.channel_id : null
      const voice = makeVoiceStateUpdate(guildId, APPLICATION_ID, channel, session.id, d.self_mute === true, d.self_deaf === true)
      deliver(ctx, session, "VOICE_STATE_UPDATE", JSON.stringify(voice))
      if (channel !== null) {
        deliver(ctx, session, "VOICE_SERVER_UPDATE", JSON.stringify({ token: "fake-voice-token", guild_id: guildId, endpoint: "fake-voice.discord.media:443" }))
      }
      return
    }
    if (op === Op.RequestGuildMembers) return onRequestMembers(session, guildId, d, now)
    if (op === Op.RequestChannelInfo) {
      deliver(ctx, session, "CHANNEL_INFO", JSON.stringify({ guild_id: guildId, channels: [] }))
    }
  }

  function onRequestMembers(session: Session, guildId: string, d: Obj, now: number): void {
    const nonce = typeof d.nonce === "string" ? d.nonce : undefined
    // Discord silently drops requests with an invalid (too long) nonce.
    if (nonce !== undefined && Buffer.byteLength(nonce) > 32) return
    const userIds = typeof d.user_ids === "string" ? [d.user_ids] : Array.isArray(d.user_ids) ? d.user_ids.map(String).slice(0, 100) : undefined
    const limit = isInt(d.limit) ? d.limit : 0
    if (userIds === undefined && d.query === "" && ctx.options.memberRequestIntervalMs > 0) {
      const last = lastAllMembersRequest.get(guildId)
      if (last !== undefined && now - last < ctx.options.memberRequestIntervalMs) {
        const retryAfter = (ctx.options.memberRequestIntervalMs - (now - last)) / 1000
        const meta = nonce === undefined ? { guild_id: guildId } : { guild_id: guildId, nonce }
        deliver(ctx, session, "RATE_LIMITED", JSON.stringify({ opcode: Op.RequestGuildMembers, retry_after: retryAfter, meta }))
        return
      }
      lastAllMembersRequest.set(guildId, now)
    }
    const chunk = makeGuildMembersChunk(guildId, {
      ...(userIds !== undefined ? { userIds } : { count: limit > 0 ? Math.min(limit, 100) : 5 }),
      ...(nonce !== undefined ? { nonce } : {}),
      presences: d.presences === true
    })
    deliver(ctx, session, "GUILD_MEMBERS_CHUNK", JSON.stringify(chunk))
  }

  function onClose(conn: GatewayConnection, code: number, reason: string): void {
    conn.closed()
    ctx.connections.delete(conn)
    if (conn.serverClose === undefined) {
      ctx.records.closes.push({ connectionId: conn.id, shardId: conn.shardId, by: "client", code, reason, at: Date.now() })
      ctx.options.log(`conn#${conn.id} shard ${conn.shardId ?? "-"}: client closed ${code} ${reason}`)
    }
    const session = conn.session
    if (session !== undefined && session.connection === conn) {
      session.connection = undefined
      // Closing with 1000/1001 ends the session; anything else (or a TCP drop) keeps it resumable.
      if (conn.serverClose === undefined && (code === 1000 || code === 1001)) ctx.sessions.forget(session)
      else if (ctx.sessions.get(session.id) === session) ctx.sessions.detach(session)
    }
    ctx.notify()
  }
}
