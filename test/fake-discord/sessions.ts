// Gateway sessions. A session outlives its connections: it keeps the sequence counter and a
// bounded replay buffer so a RESUME can receive what it missed, and expires `sessionTimeoutMs`
// after its last connection went away (like Discord's few-minutes resume window).
// A shard is a (shard id, shard count) pair: during a reshard shard 1 of 4 and shard 1 of 8 are two
// different shards with their own sessions, and both receive the events of the guilds they own.
import type { GatewayConnection } from "./connection.ts"
import { shardOf } from "./snowflake.ts"

/** Map key of a (shard id, shard count) pair. */
export const shardKey = (shardId: number, shardCount: number): string => `${shardId}/${shardCount}`

export class Session {
  readonly id: string
  readonly shardId: number
  readonly shardCount: number
  readonly guildIds: Array<string>
  readonly resumeGatewayUrl: string
  /** Last sequence number handed out (0 before READY). */
  seq = 0
  connection: GatewayConnection | undefined = undefined
  /** Order of the last start or resume; the newest session of a shard id is its "current" one. */
  activatedAt = 0
  expiry: ReturnType<typeof setTimeout> | undefined = undefined
  // Ring buffer of serialized dispatches: seq s lives at (s - 1) % capacity.
  readonly #ring: Array<string | undefined>
  #stored = 0

  constructor(id: string, shardId: number, shardCount: number, guildIds: Array<string>, resumeGatewayUrl: string, replayLimit: number) {
    this.id = id
    this.shardId = shardId
    this.shardCount = shardCount
    this.guildIds = guildIds
    this.resumeGatewayUrl = resumeGatewayUrl
    this.#ring = new Array<string | undefined>(Math.max(1, replayLimit))
  }

  /** Reserves the next seq and remembers the frame built for it. */
  append(build: (seq: number) => string): { seq: number; text: string } {
    const seq = ++this.seq
    const text = build(seq)
    this.#ring[(seq - 1) % this.#ring.length] = text
    if (this.#stored < this.#ring.length) this.#stored++
    return { seq, text }
  }

  /** True when this session's (shard id, count) owns the guild: `(guild_id >> 22) % count === id`. */
  owns(guildId: string | bigint): boolean {
    return shardOf(guildId, this.shardCount) === this.shardId
  }

  /** Frames after `seq`, oldest first; undefined when some were already evicted. */
  replayAfter(seq: number): Array<string> | undefined {
    if (seq < this.seq - this.#stored) return undefined
    const out: Array<string> = []
    for (let s = seq + 1; s <= this.seq; s++) out.push(this.#ring[(s - 1) % this.#ring.length]!)
    return out
  }
}

export interface QueuedDispatch {
  readonly t: string
  readonly dJson: string
}

export class SessionStore {
  readonly #byId = new Map<string, Session>()
  /** The current session of each shard id, whatever its count (what the per-shard-id control API addresses). */
  readonly #byShard = new Map<number, Session>()
  /** The current session of each (shard id, shard count). */
  readonly #byKey = new Map<string, Session>()
  #activations = 0
  /** Dispatches addressed to a shard that had no session yet; delivered after its next READY. */
  readonly #queued = new Map<number, Array<QueuedDispatch>>()
  readonly #timeoutMs: number
  readonly #onExpire: (session: Session) => void

  constructor(timeoutMs: number, onExpire: (session: Session) => void) {
    this.#timeoutMs = timeoutMs
    this.#onExpire = onExpire
  }

  add(session: Session): void {
    this.#activate(session)
  }

  get(sessionId: string): Session | undefined {
    return this.#byId.get(sessionId)
  }

  /** The shard id's current session (any shard count): the one most recently started or resumed. */
  ofShard(shardId: number): Session | undefined {
    return this.#byShard.get(shardId)
  }

  /** The current session of shard `shardId` of `shardCount`. */
  ofKey(shardId: number, shardCount: number): Session | undefined {
    return this.#byKey.get(shardKey(shardId, shardCount))
  }

  /** The current session of each shard id (one per id, even while two shard counts run). */
  all(): Array<Session> {
    return [...this.#byShard.values()]
  }

  /** Every session still alive (connected or resumable), of every shard count, oldest first. */
  everySession(): Array<Session> {
    return [...this.#byId.values()]
  }

  /** Every alive session whose (shard id, count) owns the guild: Discord sends the guild's events to each. */
  owning(guildId: string | bigint): Array<Session> {
    return this.everySession().filter((session) => session.owns(guildId))
  }

  attach(session: Session, connection: GatewayConnection): void {
    if (session.expiry !== undefined) clearTimeout(session.expiry)
    session.expiry = undefined
    session.connection = connection
    this.#activate(session)
  }

  #activate(session: Session): void {
    session.activatedAt = ++this.#activations
    this.#byId.set(session.id, session)
    this.#byShard.set(session.shardId, session)
    this.#byKey.set(shardKey(session.shardId, session.shardCount), session)
  }

  /** The connection went away without ending the session: start the resume window. */
  detach(session: Session): void {
    session.connection = undefined
    if (session.expiry !== undefined) clearTimeout(session.expiry)
    session.expiry = setTimeout(() => {
      this.forget(session)
      this.#onExpire(session)
    }, this.#timeoutMs)
    session.expiry.unref()
  }

  forget(session: Session): void {
    if (session.expiry !== undefined) clearTimeout(session.expiry)
    session.expiry = undefined
    this.#byId.delete(session.id)
    // Another connected session of the same shard (an overlapping one, or the other generation of
    // a reshard) becomes current again, so the control API keeps reaching a live shard. Merely
    // resumable ones are not: dispatches then queue for the next READY, as before.
    const key = shardKey(session.shardId, session.shardCount)
    if (this.#byKey.get(key) === session) this.#replace(this.#byKey, key, (s) => shardKey(s.shardId, s.shardCount) === key)
    if (this.#byShard.get(session.shardId) === session) this.#replace(this.#byShard, session.shardId, (s) => s.shardId === session.shardId)
  }

  /** Points `map[key]` at the most recently activated connected session matching, or removes it. */
  #replace<K>(map: Map<K, Session>, key: K, matches: (session: Session) => boolean): void {
    let newest: Session | undefined
    for (const s of this.#byId.values()) if (s.connection?.state === "open" && matches(s) && (newest === undefined || s.activatedAt > newest.activatedAt)) newest = s
    if (newest === undefined) map.delete(key)
    else map.set(key, newest)
  }

  queue(shardId: number, dispatch: QueuedDispatch): void {
    const list = this.#queued.get(shardId)
    if (list === undefined) this.#queued.set(shardId, [dispatch])
    else list.push(dispatch)
  }

  takeQueued(shardId: number): Array<QueuedDispatch> {
    const list = this.#queued.get(shardId) ?? []
    this.#queued.delete(shardId)
    return list
  }

  clear(): void {
    for (const session of this.#byId.values()) if (session.expiry !== undefined) clearTimeout(session.expiry)
    this.#byId.clear()
    this.#byShard.clear()
    this.#byKey.clear()
    this.#queued.clear()
  }
}
