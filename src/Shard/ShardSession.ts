// Drives one shard's connections: feeds the pure ShardMachine what the socket and the timers say,
// and carries out the actions it returns (send, forward to the outbox, heartbeat, identify, end).
//
// Frames are handled synchronously in the transport's callback: read the envelope, step the
// machine, hand the event to the outbox. Only actions that need a fiber (heartbeat and identify
// timing, store writes, logs, the ending) cross into the connection's fiber through a queue.
import { Cause, Clock, Context, Data, Duration, Effect, Layer, Metric, Queue, Redacted, type Scope } from "effect"
import { AppConfig } from "../Config/AppConfig.ts"
import type { GatewayConfig } from "../Config/GatewayConfig.ts"
import type { DispatchEvent } from "../Broker/DispatchEvent.ts"
import { Outbox } from "../Broker/Outbox.ts"
import { EventBytes } from "../Broker/EventBytes.ts"
import { closeAction } from "../Discord/CloseCodes.ts"
import { privilegedIntentNames } from "../Discord/Intents.ts"
import { Op } from "../Discord/Opcodes.ts"
import { makeEnvelopeReader, sequenceProblem } from "../Discord/PayloadScanner.ts"
import { IdentifyLimiter } from "../RateLimiter/IdentifyLimiter.ts"
import { SendWindow } from "../RateLimiter/SendWindow.ts"
import { Checkpointer } from "../ShardStore/Checkpointer.ts"
import { ShardStore } from "../ShardStore/ShardStore.ts"
import type { DroppedPayload } from "../Transport/Inflater.ts"
import { type Connection, ConnectError, Transport } from "../Transport/Transport.ts"
import { GatewayStats } from "../Metrics/GatewayStats.ts"
import { FOREVER, type LeaseCell, ShardLeases } from "../Cluster/ShardLeases.ts"
import { type Ending, endingLabel, Endings, mustTerminate } from "./Ending.ts"
import { runHeartbeat } from "./Heartbeat.ts"
import { type Attempt, reconnectSchedule } from "./Reconnect.ts"
import { type CommandJob, ShardCommands } from "./ShardCommands.ts"
import { type Action, dialUrl, initialState, type Input, makeShardMachine, type Outgoing, type ShardState } from "./ShardMachine.ts"
import { SessionCursor } from "./SessionCursor.ts"
import { ShardPlan } from "../Cluster/ShardPlan.ts"
import { ShardStatus } from "./ShardStatus.ts"
import { PublishGate } from "./PublishGate.ts"

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

/** Dial to open, including the websocket upgrade: a hard deadline on Effect's clock. */
export const OPEN_TIMEOUT_MS = 15_000
export const HELLO_TIMEOUT_MS = 30_000
/** The close code we end a connection with when we mean to resume it (never 1000/1001). */
export const RESUMABLE_CLOSE = 4000

export const gatewayUrl = (base: string, config: GatewayConfig): string => {
  const url = new URL(base)
  url.searchParams.set("v", String(config.gatewayVersion))
  url.searchParams.set("encoding", "json")
  if (config.compress !== "none") url.searchParams.set("compress", config.compress)
  else url.searchParams.delete("compress")
  return url.toString()
}

/**
 * Send slots kept free for heartbeats, heartbeat requests and a resume/identify: commands get
 * the rest of the 120 per 60 s (115 at Discord's usual 41.25 s interval, never more than 110 sooner).
 */
export const commandReserve = (heartbeatIntervalMs: number) => Math.max(5, Math.ceil(60_000 / heartbeatIntervalMs) + 3)

const EMPTY = Buffer.alloc(0)

/** Protocol oddities a shard survives: counted by kind. */
const protocolWarnings = Metric.counter("gateway_protocol_warnings_total", {
  description: "Survivable protocol anomalies (clamped heartbeat intervals, sequence numbers going backwards or skipping)",
  incremental: true
})

export class ShardSession extends Context.Service<ShardSession, {
  /** Runs the shard under its lease until interrupted; fails only when Discord says retrying cannot help. */
  readonly run: (shard: number, lease: LeaseCell) => Effect.Effect<never, FatalGatewayError>
  /**
   * The first half of a handoff: stops reading the shard and waits (up to `timeoutMs`) until
   * every event it read was accepted by the broker. True when nothing is left in flight; the
   * caller then writes the checkpoint and ends the run (closing with a resumable code).
   */
  readonly drain: (shard: number, timeoutMs: number) => Effect.Effect<boolean>
  /** Stop reading every socket: frames not read are replayed by the next RESUME. */
  readonly stopReading: () => void
}>()("gateway/ShardSession") {}

/** A defect in one of a connection's callbacks or helper fibers. */
interface Crashed {
  readonly _tag: "Crashed"
  readonly cause: Cause.Cause<unknown>
}

/** What a shard keeps from one connection to the next. */
interface ShardRun {
  readonly shard: number
  /** Until when this process may act for the shard (its lease). */
  readonly lease: LeaseCell
  /** Whether it may act now (reads and sends, checkpoint writes): the lease is still valid. */
  readonly mayAct: () => boolean
  state: ShardState
  /** Delivery progress of the current session (the outbox's receipts). */
  cursor: SessionCursor | undefined
  /** A command taken from the queue and not yet written: the next connection sends it. */
  carried: CommandJob | undefined
  /** Events read while the outbox was full, waiting for room (from `overflowHead` on). They
   * belong to the session, not the connection: a new connection waits for them to go first. */
  overflow: Array<DispatchEvent>
  overflowHead: number
  /** False once a handoff began: nothing more is read for this shard. */
  reading: boolean
  /** The open connection, if any. */
  connection: Connection | undefined
}

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
    const transport = yield* Transport
    const commands = yield* ShardCommands
    const leases = yield* ShardLeases
    const eventBytes = yield* EventBytes
    const clock = yield* Clock.clockWith(Effect.succeed)
    const token = config.token
    const named = config.events.all ? () => true : (t: string) => config.events.names.has(t)
    // While resharding, a generation not yet switched to reads without publishing (PublishGate.ts).
    const gate = yield* Effect.serviceOption(PublishGate)
    const machine = makeShardMachine({ wanted: gate._tag === "None" ? named : (t) => named(t) && gate.value.pass() })
    const connections = new Set<Connection>()
    let reading = true
    // Logging from socket callbacks, outside any fiber: run the log effect with this layer's context.
    const context = yield* Effect.context<never>()
    const readEnvelope = makeEnvelopeReader(() =>
      void Effect.runForkWith(context)(Effect.logWarning(
        "Discord payloads no longer end with their d field; reading every payload in full from now on (slower, still correct)"
      ))
    )

    const encode = (shard: number, payload: Outgoing): string => {
      switch (payload._tag) {
        case "Heartbeat":
          return JSON.stringify({ op: Op.Heartbeat, d: payload.seq })
        case "Resume":
          return JSON.stringify({ op: Op.Resume, d: { token: Redacted.value(token), session_id: payload.sessionId, seq: payload.seq } })
        case "Identify":
          return JSON.stringify({
            op: Op.Identify,
            d: {
              token: Redacted.value(token),
              properties: { os: process.platform, browser: "spectacles-gateway", device: "spectacles-gateway" },
              shard: [shard, plan.shardCount],
              intents: config.intents,
              ...(config.presence === undefined ? {} : { presence: config.presence })
            }
          })
      }
    }

    const fatalFor = (shard: number, ending: Ending): FatalGatewayError | undefined => {
      if (ending._tag !== "Closed") return undefined
      const action = closeAction(ending.code)
      if (action.kind !== "fatal") return undefined
      let fix = action.fix
      if (ending.code === 4014) {
        const names = privilegedIntentNames(config.intents)
        if (names.length > 0) fix = `${fix}: the bot asks for ${names.join(", ")}`
      }
      const reason = ending.reason === "" ? action.reason : `${action.reason}: "${ending.reason}"`
      return new FatalGatewayError({ shard, code: ending.code, reason, fix })
    }

    /** One connection, from dial to its ending. */
    const connectOnce = (sh: ShardRun): Effect.Effect<Attempt, never, Scope.Scope> =>
      Effect.gen(function*() {
        const shard = sh.shard
        const startedAt = clock.currentTimeMillisUnsafe()
        // Actions that need a fiber, in the order the machine produced them; and defects of this
        // connection's helpers (callbacks, timers, sender), which end the shard's fiber with them.
        const fiberActions = yield* Queue.unbounded<Action | Crashed>()
        const crashed = (cause: Cause.Cause<unknown>) => Queue.offerUnsafe(fiberActions, { _tag: "Crashed", cause })
        const forkWatched = <A, E>(effect: Effect.Effect<A, E>) =>
          Effect.forkScoped(effect.pipe(Effect.catchCause((cause) => Cause.hasInterruptsOnly(cause) ? Effect.void : Effect.sync(() => crashed(cause)))))
        const window = new SendWindow()
        const received = stats.eventsOf(shard)
        let conn: Connection | undefined
        let heard = false
        let paused = false
        let beatSentAt = 0
        let established = false
        // The dispatch being stepped: its d is copied out only if the machine forwards it.
        let dBytes: Buffer = EMPTY
        let dStart = 0
        let dEnd = 0

        const send = (payload: string): boolean => {
          window.record(clock.currentTimeMillisUnsafe())
          return conn?.send(payload) ?? false
        }
        // Backpressure: the outbox takes no more than its capacity. An event it refuses waits in the
        // shard's own overflow (in order, ahead of anything read later) and the socket stops being
        // read; what the socket had already buffered joins the overflow. Once the outbox has room
        // the overflow goes first, then reading starts again.
        const drainOverflow = () => {
          while (sh.overflowHead < sh.overflow.length && outbox.offer(sh.overflow[sh.overflowHead]!)) sh.overflowHead++
          if (sh.overflowHead < sh.overflow.length) return outbox.onSpace(drainOverflow)
          sh.overflow = []
          sh.overflowHead = 0
          paused = false
          if (reading && sh.reading) conn?.resume()
        }
        const forward = (t: string, seq: number) => {
          const cursor = sh.cursor!
          cursor.forwarded(seq)
          // A copy: the payload's bytes may be the inflater's shared buffer, which the next payload
          // overwrites (Broker/EventBytes.ts).
          const data = eventBytes.copy(dBytes, dStart, dEnd)
          const event: DispatchEvent = { shard, t, seq, data, receipt: cursor, epoch: sh.lease.epoch }
          if (sh.overflow.length === 0 && outbox.offer(event)) return
          sh.overflow.push(event)
          if (paused) return
          paused = true
          conn?.pause()
          outbox.onSpace(drainOverflow)
        }
        const perform = (action: Action) => {
          switch (action._tag) {
            case "Forward":
              return forward(action.t, action.seq)
            case "Skip":
              return sh.cursor?.skipped(action.seq)
            case "Send":
              send(encode(shard, action.payload))
              if (action.payload._tag === "Identify") stats.identified(shard)
              else if (action.payload._tag === "Resume") stats.resumed(shard)
              return
            case "HeartbeatAcked":
              return stats.heartbeatAcked(shard, clock.currentTimeMillisUnsafe() - beatSentAt)
            case "Ignore":
              return
            case "Established":
              // The cursor must exist before the READY itself is forwarded (next action).
              if (action.how === "ready" || sh.cursor === undefined) {
                sh.cursor = new SessionCursor(shard, action.session.id, action.session.resumeUrl, action.seq, sh.mayAct)
              }
              Queue.offerUnsafe(fiberActions, action)
              return
            case "ForgetSession":
              sh.cursor = undefined
              Queue.offerUnsafe(fiberActions, action)
              return
            default:
              Queue.offerUnsafe(fiberActions, action)
          }
        }
        // The lease is checked before anything is read or sent: a process that could not renew it
        // (cut off from Redis, paused) must not act for a shard another process may run by now.
        let lapsed = false
        const leaseHeld = () => {
          if (lapsed) return false
          if (sh.lease.until === Number.POSITIVE_INFINITY || sh.mayAct()) return true
          lapsed = true
          conn?.pause()
          Queue.offerUnsafe(fiberActions, { _tag: "End", ending: Endings.leaseLapsed })
          return false
        }
        const apply = (input: Input) => {
          if (!leaseHeld()) return
          const transition = machine.step(sh.state, input)
          sh.state = transition.state
          const actions = transition.actions
          for (let i = 0; i < actions.length; i++) perform(actions[i]!)
        }

        // The slow path: control payloads, READY, and anything the scanner declined.
        const handleParsed = (bytes: Buffer) => {
          let payload: { op?: unknown; d?: unknown; s?: unknown; t?: unknown }
          try {
            payload = JSON.parse(bytes.toString("utf8"))
          } catch {
            return apply({ _tag: "Undecodable", layer: "payload", detail: "Discord sent a payload that is not JSON" })
          }
          const d = payload.d as Record<string, unknown> | null | undefined
          switch (payload.op) {
            case Op.HeartbeatAck:
              return apply({ _tag: "HeartbeatAck" })
            case Op.Heartbeat:
              return apply({ _tag: "HeartbeatRequest" })
            case Op.Hello:
              return apply({ _tag: "Hello", heartbeatInterval: d?.heartbeat_interval })
            case Op.Reconnect:
              return apply({ _tag: "Reconnect" })
            case Op.InvalidSession:
              return apply({ _tag: "InvalidSession", resumable: payload.d === true })
            case Op.Dispatch: {
              if (typeof payload.t !== "string" || payload.s === null || payload.s === undefined) return
              const problem = sequenceProblem(payload.s)
              if (problem !== undefined) return apply({ _tag: "Undecodable", layer: "payload", detail: `Discord sent ${payload.t} with a bad sequence number: ${problem}` })
              if (typeof payload.s !== "number") return
              received.add(payload.t)
              dBytes = Buffer.from(JSON.stringify(payload.d ?? null))
              dStart = 0
              dEnd = dBytes.length
              if (payload.t === "READY") apply({ _tag: "Ready", sessionId: d?.session_id, resumeUrl: d?.resume_gateway_url, seq: payload.s })
              else apply({ _tag: "Dispatch", t: payload.t, seq: payload.s })
              dBytes = EMPTY
              return
            }
            default:
              void Effect.runForkWith(context)(Effect.logDebug(`ignoring op ${String(payload.op)}`))
          }
        }

        // The hot path: most payloads are dispatches forwarded or skipped without a parse.
        const readPayload = (bytes: Buffer) => {
          // Stopped for shutdown or a handoff: what is not read now is replayed by the next RESUME.
          if (!reading || !sh.reading) return
          heard = true
          const env = readEnvelope(bytes)
          if (env !== undefined && env.undecodable !== undefined) {
            return apply({ _tag: "Undecodable", layer: "payload", detail: `Discord sent a payload with a bad sequence number: ${env.undecodable}` })
          }
          if (env === undefined || env.op !== Op.Dispatch || env.t === null || env.s === null || env.dStart < 0 || env.t === "READY") {
            return handleParsed(bytes)
          }
          received.add(env.t)
          dBytes = bytes
          dStart = env.dStart
          dEnd = env.dEnd
          apply({ _tag: "Dispatch", t: env.t, seq: env.s })
          // Not kept past its step: an idle shard would otherwise hold its last payload (a guild).
          dBytes = EMPTY
        }
        // A bug in a socket callback must end this shard's fiber (and be restarted), not the process.
        const guarded = <Args extends Array<unknown>>(f: (...args: Args) => void) => (...args: Args) => {
          try {
            f(...args)
          } catch (defect) {
            crashed(Cause.die(defect))
          }
        }
        const onPayload = guarded(readPayload)

        yield* leases.awaitHeld(sh.lease)
        yield* status.set(shard, "connecting")
        const url = gatewayUrl(dialUrl(sh.state, plan.url), config)
        const shown = url.split("?")[0] ?? url
        const opened = yield* transport.connect(url, {
          onPayload,
          onDropped: guarded((dropped: DroppedPayload) => {
            heard = true
            apply({ _tag: "Dropped", bytes: dropped.bytes, limit: dropped.limit, t: dropped.t, seq: dropped.s })
          }),
          onUndecodable: guarded((detail: string, resumable: boolean) =>
            apply(resumable ? { _tag: "Undecodable", layer: "compression", detail } : { _tag: "Oversized", detail })
          ),
          onClose: guarded((code: number, reason: string) => apply({ _tag: "Closed", code, reason }))
        }, { openTimeoutMs: OPEN_TIMEOUT_MS }).pipe(
          Effect.timeoutOrElse({
            duration: Duration.millis(OPEN_TIMEOUT_MS),
            orElse: () => Effect.fail(new ConnectError({ url: shown, reason: `no open connection within ${OPEN_TIMEOUT_MS / 1000}s` }))
          }),
          Effect.result
        )
        if (opened._tag === "Failure") {
          const transition = machine.step(sh.state, { _tag: "ConnectFailed", url: shown, reason: opened.failure.reason })
          sh.state = transition.state
          const ending = transition.actions.find((a) => a._tag === "End")!.ending
          return { ending, lastedMs: clock.currentTimeMillisUnsafe() - startedAt, established: false, next: nextLabel(sh) }
        }
        const connection = opened.success
        conn = connection
        sh.connection = connection
        connections.add(connection)
        yield* Effect.addFinalizer(() =>
          Effect.sync(() => {
            connections.delete(connection)
            if (sh.connection === connection) sh.connection = undefined
          })
        )
        if (!reading || !sh.reading) connection.pause()
        // Events of an earlier connection still wait for the outbox: they go first.
        if (sh.overflowHead < sh.overflow.length) {
          paused = true
          connection.pause()
          outbox.onSpace(drainOverflow)
        }
        apply({ _tag: "Connected" })

        yield* forkWatched(
          Effect.sleep(Duration.millis(HELLO_TIMEOUT_MS)).pipe(Effect.andThen(Effect.sync(() => apply({ _tag: "HelloTimeout", afterMs: HELLO_TIMEOUT_MS }))))
        )

        const beat = Effect.sync(() => {
          apply({ _tag: "HeartbeatDue", heard, paused })
          heard = false
          beatSentAt = clock.currentTimeMillisUnsafe()
        })

        // Commands go out only on a READY or RESUMED session, paced by the sliding send window.
        const sendCommands = Effect.gen(function*() {
          const reserve = commandReserve(sh.state.heartbeatMs)
          for (;;) {
            const job = sh.carried ?? (yield* commands.take(shard))
            // Held here until written: a connection lost while waiting hands it to the next one.
            sh.carried = job
            if (job.wanted !== undefined && !job.wanted()) {
              sh.carried = undefined
              continue
            }
            const wait = window.waitFor(clock.currentTimeMillisUnsafe(), reserve)
            if (wait > 0) {
              yield* Effect.sleep(Duration.millis(wait))
              continue
            }
            if (!leaseHeld() || !send(job.payload)) return yield* Effect.never
            sh.carried = undefined
            yield* job.sent
          }
        })

        const identify = Effect.gen(function*() {
          yield* status.set(shard, "identifying")
          yield* limiter.acquire(shard)
          yield* Effect.logDebug("sending IDENTIFY")
          apply({ _tag: "IdentifyGranted" })
        })

        for (;;) {
          const action = yield* Queue.take(fiberActions)
          switch (action._tag) {
            case "StartHeartbeat":
              yield* forkWatched(runHeartbeat(action.intervalMs, beat))
              break
            case "RequestIdentify":
              // Waits for its bucket in its own fiber so this loop keeps reacting.
              yield* forkWatched(identify)
              break
            case "Established": {
              established = true
              yield* action.how === "ready"
                ? Effect.logInfo(`READY: session ${action.session.id}`)
                : Effect.logInfo(`RESUMED at seq ${action.seq}`)
              if (sh.cursor !== undefined) yield* checkpointer.track(sh.cursor)
              yield* forkWatched(sendCommands)
              yield* status.set(shard, "ready")
              break
            }
            case "Warn":
              yield* Effect.logWarning(action.message)
              yield* Metric.update(Metric.withAttributes(protocolWarnings, { kind: action.metric }), 1)
              break
            case "ForgetSession":
              yield* checkpointer.forget(shard)
              break
            case "Crashed":
              return yield* Effect.failCause(action.cause as Cause.Cause<never>)
            case "End":
              if (mustTerminate(action.ending)) connection.abort(RESUMABLE_CLOSE, "zombie connection")
              return { ending: action.ending, lastedMs: clock.currentTimeMillisUnsafe() - startedAt, established, next: nextLabel(sh) }
            default:
              break
          }
        }
      })

    const nextLabel = (sh: ShardRun) => (sh.state.session === undefined ? "identifying" : "resuming")

    const runs = new Map<number, ShardRun>()

    const run = (shard: number, lease: LeaseCell): Effect.Effect<never, FatalGatewayError> =>
      Effect.gen(function*() {
        const stored = yield* store.load(shard).pipe(
          Effect.catch((error) => Effect.as(Effect.logWarning(`${error.message}; identifying afresh`), undefined))
        )
        // Without leases (`until` = Infinity, never changed) no clock read: the publisher asks per event.
        const mayAct = lease === FOREVER ? () => true : () => clock.currentTimeMillisUnsafe() < lease.until
        const sh: ShardRun = {
          shard,
          lease,
          mayAct,
          state: initialState(stored && { session: { id: stored.sessionId, resumeUrl: stored.resumeUrl }, seq: stored.seq }),
          cursor: stored ? new SessionCursor(shard, stored.sessionId, stored.resumeUrl, stored.seq, mayAct) : undefined,
          carried: undefined,
          overflow: [],
          overflowHead: 0,
          reading: true,
          connection: undefined
        }
        runs.set(shard, sh)
        yield* Effect.addFinalizer(() => Effect.sync(() => runs.get(shard) === sh && runs.delete(shard)))
        if (stored) yield* Effect.logInfo(`found stored session ${stored.sessionId} at seq ${stored.seq}; resuming`)
        const attempt = Effect.scoped(connectOnce(sh)).pipe(
          Effect.tap((attempt) =>
            Effect.gen(function*() {
              const fatal = fatalFor(shard, attempt.ending)
              if (fatal !== undefined) return yield* fatal
              stats.reconnected(shard, endingLabel(attempt.ending))
              yield* status.set(shard, "reconnecting")
            })
          )
        )
        yield* Effect.repeat(attempt, reconnectSchedule())
        return yield* Effect.die(new Error("the reconnect schedule ended"))
      }).pipe(Effect.scoped, Effect.annotateLogs({ shard }))

    const drain = (shard: number, timeoutMs: number) =>
      Effect.gen(function*() {
        const sh = runs.get(shard)
        if (sh === undefined) return true
        sh.reading = false
        sh.connection?.pause()
        const settled = () => sh.overflowHead >= sh.overflow.length && (sh.cursor === undefined || sh.cursor.pending === 0)
        const deadline = clock.currentTimeMillisUnsafe() + timeoutMs
        while (!settled() && clock.currentTimeMillisUnsafe() < deadline) yield* Effect.sleep(Duration.millis(10))
        return settled()
      })

    return ShardSession.of({
      run,
      drain,
      stopReading: () => {
        reading = false
        for (const connection of connections) connection.pause()
      }
    })
  })
)
