// One shard's life: connect, HELLO, IDENTIFY or RESUME, heartbeats, dispatches, and whatever
// ends the connection leading back to a live session (DISCORD_GATEWAY.md §4-§7).
//
// Frames are handled synchronously in the socket callback (inflate, read the envelope, hand the
// event to the outbox); only the rare control payloads cross into the session fiber.
import { Context, Data, Deferred, Duration, Effect, Layer, Queue, Random, Redacted } from "effect"
import { AppConfig } from "../Config/AppConfig.ts"
import type { GatewayConfig } from "../Config/GatewayConfig.ts"
import { Outbox } from "../Broker/Outbox.ts"
import { closeAction } from "../Discord/CloseCodes.ts"
import { privilegedIntentNames } from "../Discord/Intents.ts"
import { Op } from "../Discord/Opcodes.ts"
import { makeEnvelopeReader } from "../Discord/PayloadScanner.ts"
import { IdentifyLimiter } from "../RateLimiter/IdentifyLimiter.ts"
import { SendWindow } from "../RateLimiter/SendWindow.ts"
import { Checkpointer } from "../ShardStore/Checkpointer.ts"
import { ShardStore } from "../ShardStore/ShardStore.ts"
import { type Connection, ConnectError, openConnection } from "../Transport/Connection.ts"
import { InflateError, makeInflater } from "../Transport/Inflater.ts"
import { GatewayStats } from "../Observability/GatewayStats.ts"
import { reconnectReason } from "../Observability/reconnectReason.ts"
import { heartbeatLoop } from "./Heartbeat.ts"
import { type Ending, reconnectForever } from "./Reconnect.ts"
import { SessionCursor } from "./SessionCursor.ts"
import { ShardPlan } from "./ShardPlan.ts"
import { ShardStatus } from "./ShardStatus.ts"

/** A close code after which retrying cannot help; the gateway stops. */
export class FatalGatewayError extends Data.TaggedError("FatalGatewayError")<{
  readonly shard: number
  readonly code: number
  readonly reason: string
  readonly fix: string
}> {
  override get message() {
    return `shard ${this.shard}: Discord closed the connection with ${this.code} (${this.reason}): ${this.fix}`
  }
}

/** What a shard keeps from one connection to the next. */
interface Holder {
  cursor: SessionCursor | undefined
  /** The resume url could not be reached: resume through the main url. */
  mainUrlForResume: boolean
  /** A command taken from the queue and not yet written. */
  carried: PendingCommand | undefined
  /** The current connection reached READY or RESUMED. */
  established: boolean
}

type Control =
  | { readonly kind: "payload"; readonly op: number; readonly d: unknown }
  | { readonly kind: "ready"; readonly cursor: SessionCursor }
  | { readonly kind: "resumed" }
  | { readonly kind: "closed"; readonly code: number; readonly reason: string }
  | { readonly kind: "end"; readonly ending: Ending }

const OPEN_TIMEOUT_MS = 15_000
const HELLO_TIMEOUT_MS = 30_000

export const gatewayUrl = (base: string, config: GatewayConfig): string => {
  const url = new URL(base)
  url.searchParams.set("v", String(config.gatewayVersion))
  url.searchParams.set("encoding", "json")
  if (config.compress !== "none") url.searchParams.set("compress", config.compress)
  else url.searchParams.delete("compress")
  return url.toString()
}

/** A command waiting for its shard's connection and a free slot in the send window. */
interface PendingCommand {
  readonly payload: string
  readonly sent: Deferred.Deferred<void>
}

/** Commands a shard holds while reconnecting or while its send window is full. */
export const COMMAND_QUEUE_SIZE = 1_000

/**
 * Send slots kept free for heartbeats, heartbeat requests and a resume/identify: commands get
 * the rest of the 120 per 60 s (115 at Discord's usual 41.25 s interval, never more than 110 sooner).
 */
export const commandReserve = (heartbeatIntervalMs: number) =>
  Math.max(5, Math.ceil(60_000 / heartbeatIntervalMs) + 3)

export class ShardSession extends Context.Service<ShardSession, {
  /** Runs the shard until interrupted; fails only when Discord says retrying cannot help. */
  readonly run: (shard: number) => Effect.Effect<never, FatalGatewayError>
  /** Stop reading every socket: frames not read are replayed by the next RESUME. */
  readonly stopReading: () => void
  /** Shards this process runs (whether connected or not). */
  readonly owns: (shard: number) => boolean
  /**
   * Queues a command payload (`{"op":N,"d":...}` text) for the shard and completes once it has
   * been written to Discord. Waits while the shard's queue is full.
   */
  readonly submit: (shard: number, payload: string) => Effect.Effect<void>
}>()("gateway/ShardSession") {}

export const ShardSessionLive = Layer.effect(
  ShardSession,
  Effect.gen(function*() {
    const config = yield* AppConfig
    const plan = yield* ShardPlan
    const outbox = yield* Outbox
    const limiter = yield* IdentifyLimiter
    const store = yield* ShardStore
    const checkpointer = yield* Checkpointer
    const status = yield* ShardStatus
    const stats = yield* GatewayStats
    const token = config.token
    const wanted = config.events.all ? () => true : (t: string) => config.events.names.has(t)
    const connections = new Map<number, Connection>()
    const inboxes = new Map<number, Queue.Queue<PendingCommand>>()
    for (const id of plan.shardIds) inboxes.set(id, yield* Queue.bounded<PendingCommand>(COMMAND_QUEUE_SIZE))
    let reading = true
    // Logging from socket callbacks, outside any fiber: run the log effect with this layer's context.
    const context = yield* Effect.context<never>()
    const readEnvelope = makeEnvelopeReader(() =>
      void Effect.runForkWith(context)(Effect.logWarning(
        "Discord payloads no longer end with their d field; reading every payload in full from now on (slower, still correct)"
      ))
    )

    const identifyPayload = (shard: number) =>
      JSON.stringify({
        op: Op.Identify,
        d: {
          token: Redacted.value(token),
          properties: { os: process.platform, browser: "spectacles-gateway", device: "spectacles-gateway" },
          shard: [shard, plan.shardCount],
          intents: config.intents,
          ...(config.presence === undefined ? {} : { presence: config.presence })
        }
      })

    const fatalFor = (shard: number, code: number, reason: string, fix: string) => {
      let detail = fix
      if (code === 4014) {
        const names = privilegedIntentNames(config.intents)
        if (names.length > 0) detail = `${fix}: the bot asks for ${names.join(", ")}`
      }
      return new FatalGatewayError({ shard, code, reason, fix: detail })
    }

    /** One connection, from dial to its ending. */
    const connectOnce = (shard: number, holder: Holder) =>
      Effect.gen(function*() {
        const resuming = holder.cursor !== undefined
        holder.established = false
        const base = holder.cursor && !holder.mainUrlForResume ? holder.cursor.resumeUrl : plan.url
        const control = yield* Queue.unbounded<Control>()
        const window = new SendWindow()
        let acked = true
        let framesSinceBeat = 0
        let beatSentAt = 0
        let paused = false
        let conn: Connection | undefined
        const received = stats.eventsOf(shard)

        const end = (ending: Ending) => Queue.offerUnsafe(control, { kind: "end", ending })
        const sendNow = (payload: string): boolean => {
          window.record(Date.now())
          return conn?.send(payload) ?? false
        }
        const resumeReading = () => {
          paused = false
          if (reading) conn?.resume()
        }

        const forward = (cursor: SessionCursor, t: string, seq: number, data: string) => {
          cursor.forwarded(seq)
          if (!outbox.offer({ shard, t, seq, data, receipt: cursor }) && !paused) {
            // Backpressure: stop reading this socket until the broker catches up.
            paused = true
            conn?.pause()
            outbox.onSpace(resumeReading)
          }
        }

        // The slow path: control payloads, READY/RESUMED, and anything the scanner declined.
        const handleParsed = (text: string) => {
          let payload: { op?: unknown; d?: unknown; s?: unknown; t?: unknown }
          try {
            payload = JSON.parse(text)
          } catch {
            end({ next: "resume", reason: "Discord sent a payload that is not JSON" })
            return
          }
          const op = typeof payload.op === "number" ? payload.op : -1
          if (op === Op.HeartbeatAck) {
            if (!acked) stats.heartbeatAcked(shard, Date.now() - beatSentAt)
            acked = true
            return
          }
          if (op === Op.Heartbeat) {
            sendNow(JSON.stringify({ op: Op.Heartbeat, d: holder.cursor?.received ?? null }))
            return
          }
          if (op !== Op.Dispatch) {
            Queue.offerUnsafe(control, { kind: "payload", op, d: payload.d })
            return
          }
          const t = typeof payload.t === "string" ? payload.t : undefined
          const s = typeof payload.s === "number" ? payload.s : undefined
          if (t === undefined || s === undefined) return
          received.add(t)
          if (t === "READY") {
            const d = payload.d as { session_id?: unknown; resume_gateway_url?: unknown }
            if (typeof d?.session_id !== "string" || typeof d.resume_gateway_url !== "string") {
              end({ next: "identify", reason: "READY without session_id or resume_gateway_url" })
              return
            }
            const cursor = new SessionCursor(shard, d.session_id, d.resume_gateway_url, s)
            holder.cursor = cursor
            holder.mainUrlForResume = false
            Queue.offerUnsafe(control, { kind: "ready", cursor })
            if (wanted(t)) forward(cursor, t, s, JSON.stringify(payload.d))
            return
          }
          const cursor = holder.cursor
          if (cursor === undefined || s <= cursor.received) return
          if (t === "RESUMED") Queue.offerUnsafe(control, { kind: "resumed" })
          if (wanted(t)) forward(cursor, t, s, JSON.stringify(payload.d ?? null))
          else cursor.skipped(s)
        }

        // The hot path: most payloads are dispatches forwarded or skipped without a parse.
        const onPayload = (text: string) => {
          const env = readEnvelope(text)
          if (env === undefined || env.op !== Op.Dispatch || env.t === null || env.s === null || env.dStart < 0) {
            handleParsed(text)
            return
          }
          const t = env.t
          if (t === "READY" || t === "RESUMED") {
            handleParsed(text)
            return
          }
          received.add(t)
          const cursor = holder.cursor
          // Before READY there is no session to count against; a replayed duplicate is dropped.
          if (cursor === undefined || env.s <= cursor.received) return
          if (wanted(t)) forward(cursor, t, env.s, text.slice(env.dStart, env.dEnd))
          else cursor.skipped(env.s)
        }

        const inflater = makeInflater(config.compress, {
          onPayload,
          onError: (error) => end({ next: "resume", reason: error.message })
        })

        const onFrame = (frame: Buffer) => {
          // Stopped for shutdown: what is not read now is replayed by the next RESUME.
          if (!reading) return
          framesSinceBeat++
          try {
            inflater.push(frame)
          } catch (error) {
            const reason = error instanceof InflateError ? error.message : `frame handling failed: ${String(error)}`
            end({ next: "resume", reason })
          }
        }

        yield* status.set(shard, "connecting")
        conn = yield* openConnection(gatewayUrl(base, config), {
          onFrame,
          onClose: (code, reason) => Queue.offerUnsafe(control, { kind: "closed", code, reason })
        }, OPEN_TIMEOUT_MS)
        const connection = conn
        if (!reading) connection.pause()
        connections.set(shard, connection)
        yield* Effect.addFinalizer(() =>
          Effect.sync(() => {
            connections.delete(shard)
            inflater.close()
          })
        )
        let heartbeatIntervalMs = 41_250
        let senderStarted = false

        // Commands go out only on a READY or RESUMED session, paced by the sliding send window.
        const sendCommands = Effect.gen(function*() {
          const inbox = inboxes.get(shard)!
          const reserve = commandReserve(heartbeatIntervalMs)
          for (;;) {
            const command = holder.carried ?? (yield* Queue.take(inbox))
            // Held here until written: a connection lost while waiting hands it to the next one.
            holder.carried = command
            const wait = window.waitFor(Date.now(), reserve)
            if (wait > 0) {
              yield* Effect.sleep(Duration.millis(wait))
              continue
            }
            if (!sendNow(command.payload)) return yield* Effect.never
            holder.carried = undefined
            Deferred.doneUnsafe(command.sent, Effect.void)
          }
        })
        const startSender = Effect.suspend(() => {
          if (senderStarted) return Effect.void
          senderStarted = true
          return Effect.asVoid(Effect.forkScoped(sendCommands))
        })

        const heartbeat = (intervalMs: number) =>
          heartbeatLoop(intervalMs, {
            beat: Effect.sync(() => {
              acked = false
              framesSinceBeat = 0
              beatSentAt = Date.now()
              sendNow(JSON.stringify({ op: Op.Heartbeat, d: holder.cursor?.received ?? null }))
            }),
            acked: () => acked,
            framesSinceBeat: () => framesSinceBeat
          }).pipe(
            Effect.catch((zombie) =>
              Effect.sync(() => end({ next: "resume", reason: `zombie connection: ${zombie.message}`, terminate: true }))
            )
          )

        const identify = Effect.gen(function*() {
          yield* status.set(shard, "identifying")
          yield* limiter.acquire(shard)
          yield* Effect.logDebug("sending IDENTIFY")
          sendNow(identifyPayload(shard))
          stats.identified(shard)
        })

        const resume = (cursor: SessionCursor) =>
          Effect.gen(function*() {
            yield* status.set(shard, "resuming")
            yield* Effect.logDebug(`sending RESUME at seq ${cursor.received}`)
            sendNow(JSON.stringify({
              op: Op.Resume,
              d: { token: Redacted.value(token), session_id: cursor.sessionId, seq: cursor.received }
            }))
            stats.resumed(shard)
          })

        const endingForClose = (code: number, reason: string) =>
          Effect.gen(function*() {
            const action = closeAction(code)
            const said = reason ? `${code} ${reason}` : `${code}`
            if (action.kind === "fatal") return yield* fatalFor(shard, code, action.reason, action.fix)
            return { next: action.kind, reason: `Discord closed the connection (${said}: ${action.reason})` } satisfies Ending
          })

        let helloSeen = false
        const helloTimer = yield* Effect.forkScoped(
          Effect.sleep(Duration.millis(HELLO_TIMEOUT_MS)).pipe(
            Effect.andThen(Effect.sync(() => {
              if (!helloSeen) end({ next: "resume", reason: `no HELLO within ${HELLO_TIMEOUT_MS / 1000}s` })
            }))
          )
        )
        void helloTimer

        for (;;) {
          const message = yield* Queue.take(control)
          switch (message.kind) {
            case "closed":
              return yield* endingForClose(message.code, message.reason)
            case "end":
              if (message.ending.terminate) connection.terminate()
              return message.ending
            case "ready": {
              yield* Effect.logInfo(`READY: session ${message.cursor.sessionId}`)
              holder.established = true
              yield* checkpointer.track(message.cursor)
              yield* startSender
              yield* status.set(shard, "ready")
              break
            }
            case "resumed": {
              yield* Effect.logInfo(`RESUMED at seq ${holder.cursor?.received ?? "?"}`)
              holder.established = true
              if (holder.cursor) yield* checkpointer.track(holder.cursor)
              yield* startSender
              yield* status.set(shard, "ready")
              break
            }
            case "payload": {
              switch (message.op) {
                case Op.Hello: {
                  if (helloSeen) break
                  helloSeen = true
                  const d = message.d as { heartbeat_interval?: unknown }
                  if (typeof d?.heartbeat_interval === "number" && d.heartbeat_interval > 0) {
                    heartbeatIntervalMs = d.heartbeat_interval
                  }
                  yield* Effect.forkScoped(heartbeat(heartbeatIntervalMs))
                  // Identify waits for its bucket in its own fiber so this loop keeps reacting.
                  yield* Effect.forkScoped(holder.cursor && resuming ? resume(holder.cursor) : identify)
                  break
                }
                case Op.Reconnect:
                  return { next: "resume", reason: "Discord asked to reconnect (op 7)" } satisfies Ending
                case Op.InvalidSession: {
                  if (message.d === true && holder.cursor) {
                    return { next: "resume", reason: "session invalidated, resumable (op 9)" } satisfies Ending
                  }
                  const waitMs = 1_000 + Math.floor((yield* Random.next) * 4_000)
                  return { next: "identify", reason: "session invalidated (op 9)", waitMs } satisfies Ending
                }
                default:
                  yield* Effect.logDebug(`ignoring op ${message.op}`)
              }
            }
          }
        }
      })

    const run = (shard: number): Effect.Effect<never, FatalGatewayError> =>
      Effect.gen(function*() {
        const stored = yield* store.load(shard).pipe(
          Effect.catch((error) => Effect.as(Effect.logWarning(`${error.message}; identifying afresh`), undefined))
        )
        const holder: Holder = {
          cursor: stored ? new SessionCursor(shard, stored.sessionId, stored.resumeUrl, stored.seq) : undefined,
          mainUrlForResume: false,
          carried: undefined,
          established: false
        }
        if (stored) yield* Effect.logInfo(`found stored session ${stored.sessionId} at seq ${stored.seq}; resuming`)
        const connect = connectOnce(shard, holder).pipe(
          Effect.map((ending): Ending => ({ ...ending, established: holder.established })),
          Effect.scoped,
          Effect.catchTag("ConnectError", (error: ConnectError) =>
            Effect.sync((): Ending => {
              // A resume url that cannot be reached: the main url can resume too.
              if (holder.cursor) holder.mainUrlForResume = true
              return { next: "resume", reason: error.message }
            })
          )
        )
        return yield* reconnectForever(connect, (ending) =>
          Effect.gen(function*() {
            stats.reconnected(shard, reconnectReason(ending))
            yield* status.set(shard, "reconnecting")
            if (ending.next === "identify" && holder.cursor) {
              holder.cursor = undefined
              yield* checkpointer.forget(shard)
            }
            return holder.cursor ? "resuming" : "identifying"
          })
        )
      }).pipe(Effect.annotateLogs({ shard }))

    return ShardSession.of({
      run,
      stopReading: () => {
        reading = false
        for (const connection of connections.values()) connection.pause()
      },
      owns: (shard) => inboxes.has(shard),
      submit: (shard, payload) =>
        Effect.gen(function*() {
          const inbox = inboxes.get(shard)
          if (inbox === undefined) return yield* Effect.die(new Error(`shard ${shard} is not run by this process`))
          const sent = yield* Deferred.make<void>()
          yield* Queue.offer(inbox, { payload, sent })
          yield* Deferred.await(sent)
        })
    })
  })
)
