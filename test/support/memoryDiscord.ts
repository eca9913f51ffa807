// An in-memory Transport that plays Discord's gateway for in-process shard tests: no sockets, no
// compression, time on Effect's (test) clock. It answers like Discord (HELLO, READY, RESUMED with
// replay, heartbeat ACKs) and lets a test break things (close codes, op 7, op 9, silence).
import { Clock, Effect, Layer } from "effect"
import { ConnectError, type Connection, Transport, type TransportHandlers } from "../../src/Transport/Transport.ts"

export interface Sent {
  readonly op: number
  readonly d: any
  /** Test-clock time it was sent. */
  readonly at: number
}

interface SessionLog {
  readonly id: string
  readonly shard: number
  seq: number
  readonly events: Array<{ t: string; s: number; d: unknown }>
}

export class MemoryPeer {
  readonly sent: Array<Sent> = []
  shard: number | undefined
  session: SessionLog | undefined
  ready = false
  open = true
  paused = false
  /** How the client ended it: its close code, or "abort" with the code sent before dropping. */
  clientClose: { readonly code: number; readonly aborted: boolean } | undefined
  readonly url: string
  readonly openedAt: number
  readonly handlers: TransportHandlers
  constructor(url: string, openedAt: number, handlers: TransportHandlers) {
    this.url = url
    this.openedAt = openedAt
    this.handlers = handlers
  }

  /** What arrived while the client had stopped reading (a paused socket). */
  readonly unread: Array<string> = []

  /** Messages still handed over after a pause, like what a real socket had already buffered. */
  readAhead = 0
  #readAheadLeft = 0

  /** Server to client; held while the client is not reading, like a paused socket's buffers. */
  deliver(payload: unknown): void {
    if (!this.open) return
    const text = typeof payload === "string" ? payload : JSON.stringify(payload)
    if (this.paused && this.#readAheadLeft > 0) {
      this.#readAheadLeft--
      this.handlers.onPayload(Buffer.from(text))
    } else if (this.paused) this.unread.push(text)
    else this.handlers.onPayload(Buffer.from(text))
  }

  pause(): void {
    if (!this.paused) this.#readAheadLeft = this.readAhead
    this.paused = true
  }

  /** The client reads again: what waited is read now, in order. */
  flush(): void {
    while (!this.paused && this.open && this.unread.length > 0) this.handlers.onPayload(Buffer.from(this.unread.shift()!))
  }

  /** The server closes the websocket with `code`. */
  close(code: number, reason = ""): void {
    if (!this.open) return
    this.open = false
    this.handlers.onClose(code, reason)
  }
}

export interface MemoryDiscordOptions {
  readonly heartbeatIntervalMs?: number
  /** Answer heartbeats with ACKs (false: a zombie server). */
  readonly ack?: boolean
  /** Send HELLO on connect. */
  readonly hello?: boolean
}

export class MemoryDiscord {
  readonly peers: Array<MemoryPeer> = []
  readonly sessions = new Map<string, SessionLog>()
  readonly identifies: Array<{ readonly shard: number; readonly at: number }> = []
  readonly resumes: Array<{ readonly shard: number; readonly seq: number; readonly url: string; readonly ok: boolean }> = []
  /** Urls (prefixes) that refuse connections, like an unreachable host. */
  readonly unreachable = new Set<string>()
  /** Connects that never complete (a server that drips its upgrade reply). */
  hang = false
  /** Every new connection is closed with this at once (a server refusing the client). */
  closeOnConnect: { readonly code: number; readonly reason: string } | undefined
  heartbeatIntervalMs: number
  ack: boolean
  hello: boolean
  #sessions = 0
  clock: Clock.Clock | undefined
  /** Test-clock time (set at the first connect). */
  now(): number {
    return this.clock?.currentTimeMillisUnsafe() ?? 0
  }
  readonly mainUrl = "ws://main.discord.test/"
  /** Read-ahead given to every new connection (see MemoryPeer.readAhead). */
  readAhead = 0

  constructor(options: MemoryDiscordOptions = {}) {
    this.heartbeatIntervalMs = options.heartbeatIntervalMs ?? 41_250
    this.ack = options.ack ?? true
    this.hello = options.hello ?? true
  }

  readonly layer = Layer.succeed(
    Transport,
    Transport.of({
      connect: (url, handlers) => {
        const server = this
        return Effect.acquireRelease(
          Effect.interruptible(Effect.gen(function*() {
            server.clock = yield* Clock.clockWith(Effect.succeed)
            const now = server.now()
            if (server.hang) return yield* Effect.never
            for (const prefix of server.unreachable) {
              if (url.startsWith(prefix)) return yield* new ConnectError({ url, reason: "connect ECONNREFUSED" })
            }
            const peer = new MemoryPeer(url, now, handlers)
            peer.readAhead = server.readAhead
            server.peers.push(peer)
            return peer
          })),
          (peer) =>
            Effect.sync(() => {
              if (peer.open && peer.clientClose === undefined) peer.clientClose = { code: 4000, aborted: false }
              peer.open = false
            })
        ).pipe(Effect.map((peer) => server.connectionOf(peer)))
      }
    })
  )

  private connectionOf(peer: MemoryPeer): Connection {
    const refuse = this.closeOnConnect
    if (refuse !== undefined) queueMicrotask(() => peer.close(refuse.code, refuse.reason))
    // HELLO right after the upgrade, as Discord does (from a microtask: the client is still wiring up).
    else if (this.hello) queueMicrotask(() => peer.deliver({ op: 10, d: { heartbeat_interval: this.heartbeatIntervalMs } }))
    return {
      send: (text) => {
        if (!peer.open) return false
        this.receive(peer, text)
        return true
      },
      close: (code) => {
        if (!peer.open) return
        peer.clientClose = { code, aborted: false }
        peer.open = false
      },
      abort: (code) => {
        peer.clientClose = { code, aborted: true }
        peer.open = false
      },
      pause: () => peer.pause(),
      resume: () => {
        peer.paused = false
        peer.flush()
      },
      isOpen: () => peer.open
    }
  }

  /** What the shard sent, across every connection, in order. */
  sentBy(shard: number): Array<Sent> {
    return this.peers.filter((p) => p.shard === shard).flatMap((p) => p.sent)
  }

  /** The shard's open, READY (or RESUMED) connection. */
  live(shard: number): MemoryPeer | undefined {
    return this.peers.findLast((p) => p.shard === shard && p.open && p.ready)
  }

  latest(): MemoryPeer | undefined {
    return this.peers.at(-1)
  }

  /** Queues a dispatch on the shard's session; delivered now if the shard is live, else on RESUME. */
  dispatch(shard: number, t: string, d: unknown): number {
    const session = [...this.sessions.values()].findLast((s) => s.shard === shard)
    if (session === undefined) throw new Error(`shard ${shard} has no session`)
    const s = ++session.seq
    session.events.push({ t, s, d })
    this.live(shard)?.deliver({ op: 0, t, s, d })
    return s
  }

  private receive(peer: MemoryPeer, text: string): void {
    const payload = JSON.parse(text) as { op: number; d: any }
    peer.sent.push({ op: payload.op, d: payload.d, at: this.now() })
    switch (payload.op) {
      case 1:
        if (this.ack) queueMicrotask(() => peer.deliver({ op: 11 }))
        return
      case 2: {
        const shard = payload.d.shard[0] as number
        peer.shard = shard
        this.identifies.push({ shard, at: this.now() })
        const session: SessionLog = { id: `session-${shard}-${++this.#sessions}`, shard, seq: 1, events: [] }
        this.sessions.set(session.id, session)
        peer.session = session
        peer.ready = true
        queueMicrotask(() =>
          peer.deliver({
            op: 0,
            t: "READY",
            s: 1,
            d: { session_id: session.id, resume_gateway_url: `ws://resume-${shard}.discord.test/`, shard: [shard, 1], user: { id: "1" } }
          })
        )
        return
      }
      case 6: {
        const session = this.sessions.get(payload.d.session_id)
        const ok = session !== undefined && payload.d.seq <= session.seq
        this.resumes.push({ shard: session?.shard ?? -1, seq: payload.d.seq, url: peer.url, ok })
        if (!ok) {
          queueMicrotask(() => peer.deliver({ op: 9, d: false }))
          return
        }
        peer.shard = session.shard
        peer.session = session
        peer.ready = true
        queueMicrotask(() => {
          for (const event of session.events) if (event.s > payload.d.seq) peer.deliver({ op: 0, t: event.t, s: event.s, d: event.d })
          peer.deliver({ op: 0, t: "RESUMED", s: ++session.seq, d: null })
        })
        return
      }
    }
  }
}

