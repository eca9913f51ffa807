// Gateway sessions. A session outlives its connections: it keeps the sequence counter and a
// bounded replay buffer so a RESUME can receive what it missed, and expires `sessionTimeoutMs`
// after its last connection went away (like Discord's few-minutes resume window).
import type { GatewayConnection } from "./connection.ts"

export class Session {
  readonly id: string
  readonly shardId: number
  readonly shardCount: number
  readonly guildIds: Array<string>
  readonly resumeGatewayUrl: string
  /** Last sequence number handed out (0 before READY). */
  seq = 0
  connection: GatewayConnection | undefined = undefined
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
  readonly #byShard = new Map<number, Session>()
  /** Dispatches addressed to a shard that had no session yet; delivered after its next READY. */
  readonly #queued = new Map<number, Array<QueuedDispatch>>()
  readonly #timeoutMs: number
  readonly #onExpire: (session: Session) => void

  constructor(timeoutMs: number, onExpire: (session: Session) => void) {
    this.#timeoutMs = timeoutMs
    this.#onExpire = onExpire
  }

  add(session: Session): void {
    this.#byId.set(session.id, session)
    this.#byShard.set(session.shardId, session)
  }

  get(sessionId: string): Session | undefined {
    return this.#byId.get(sessionId)
  }

  /** The shard's current session: the one most recently started or resumed. */
  ofShard(shardId: number): Session | undefined {
    return this.#byShard.get(shardId)
  }

  all(): Array<Session> {
    return [...this.#byShard.values()]
  }

  attach(session: Session, connection: GatewayConnection): void {
    if (session.expiry !== undefined) clearTimeout(session.expiry)
    session.expiry = undefined
    session.connection = connection
    this.#byId.set(session.id, session)
    this.#byShard.set(session.shardId, session)
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
    if (this.#byShard.get(session.shardId) === session) this.#byShard.delete(session.shardId)
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
    this.#queued.clear()
  }
}
