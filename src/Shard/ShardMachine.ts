// The gateway protocol of one shard as a pure state machine (DISCORD_GATEWAY.md §4-§7): no Effect,
// no clock, no socket. `step(state, input)` returns the next state and the actions the driver
// (ShardSession) carries out. Every protocol decision is made here, once; tests drive it directly.
import { Endings, type Ending, nextStep } from "./Ending.ts"

/** Discord's usual interval, used when HELLO carries none we can use. */
export const DEFAULT_HEARTBEAT_MS = 41_250
/** HELLO intervals outside this range are clamped: 1 ms would flood, 1e12 would never beat. */
export const MIN_HEARTBEAT_MS = 1_000
export const MAX_HEARTBEAT_MS = 300_000

export type Phase = "connecting" | "awaitingHello" | "identifying" | "resuming" | "ready" | "ended"

export interface Session {
  readonly id: string
  /** Where to RESUME (READY's resume_gateway_url). */
  readonly resumeUrl: string
}

export interface ShardState {
  readonly phase: Phase
  /** The session to resume, if any: survives connections, gone after a non-resumable ending. */
  readonly session: Session | undefined
  /** Last sequence number received on the session (0: none yet). */
  readonly seq: number
  readonly heartbeatMs: number
  /** A heartbeat went out and its ACK has not come back. */
  readonly awaitingAck: boolean
  /** The resume url could not be reached: the main url resumes too. */
  readonly resumeViaMain: boolean
}

export type Outgoing =
  | { readonly _tag: "Heartbeat"; readonly seq: number | null }
  | { readonly _tag: "Identify" }
  | { readonly _tag: "Resume"; readonly sessionId: string; readonly seq: number }

export type Action =
  | { readonly _tag: "Send"; readonly payload: Outgoing }
  /** The dispatch just read goes to the broker. */
  | { readonly _tag: "Forward"; readonly t: string; readonly seq: number }
  /** The dispatch just read is not wanted: it only moves the sequence. */
  | { readonly _tag: "Skip"; readonly seq: number }
  /** A dispatch not counted (before READY, or replayed): nothing to do but say so at debug. */
  | { readonly _tag: "Ignore"; readonly why: string }
  | { readonly _tag: "StartHeartbeat"; readonly intervalMs: number }
  /** Wait for the identify limiter, then feed `IdentifyGranted`. */
  | { readonly _tag: "RequestIdentify" }
  /** READY or RESUMED: the session is live (track its checkpoint, start sending commands). */
  | { readonly _tag: "Established"; readonly how: "ready" | "resumed"; readonly session: Session; readonly seq: number }
  | { readonly _tag: "HeartbeatAcked" }
  /** Something odd but survivable: logged and counted under `metric`. */
  | {
    readonly _tag: "Warn"
    readonly metric: "heartbeat_interval" | "sequence_backwards" | "sequence_gap" | "payload_dropped"
    readonly message: string
  }
  /** The session is gone for good: forget it in the store. */
  | { readonly _tag: "ForgetSession" }
  | { readonly _tag: "End"; readonly ending: Ending }

export type Input =
  /** The socket is open. */
  | { readonly _tag: "Connected" }
  | { readonly _tag: "Hello"; readonly heartbeatInterval: unknown }
  | { readonly _tag: "HeartbeatAck" }
  /** op 1 from Discord: beat now. */
  | { readonly _tag: "HeartbeatRequest" }
  | { readonly _tag: "Reconnect" }
  | { readonly _tag: "InvalidSession"; readonly resumable: boolean }
  | { readonly _tag: "Ready"; readonly sessionId: unknown; readonly resumeUrl: unknown; readonly seq: number }
  /** Any other dispatch (RESUMED included), by name and sequence number. */
  | { readonly _tag: "Dispatch"; readonly t: string; readonly seq: number }
  /** A payload too large to keep was discarded while read; what its first bytes said of it. */
  | { readonly _tag: "Dropped"; readonly bytes: number; readonly limit: number; readonly t: string | undefined; readonly seq: number | undefined }
  | { readonly _tag: "IdentifyGranted" }
  /** Heartbeat timer. `heard`: any frame arrived since the last beat; `paused`: we stopped reading. */
  | { readonly _tag: "HeartbeatDue"; readonly heard: boolean; readonly paused: boolean }
  | { readonly _tag: "HelloTimeout"; readonly afterMs: number }
  | { readonly _tag: "Closed"; readonly code: number; readonly reason: string }
  | { readonly _tag: "Undecodable"; readonly layer: "compression" | "payload"; readonly detail: string }
  | { readonly _tag: "Oversized"; readonly detail: string }
  | { readonly _tag: "ConnectFailed"; readonly url: string; readonly reason: string }

export interface Transition {
  readonly state: ShardState
  readonly actions: ReadonlyArray<Action>
}

export interface MachineOptions {
  /** Whether a dispatch name goes to the broker. */
  readonly wanted: (t: string) => boolean
}

const NONE: ReadonlyArray<Action> = []

export const initialState = (stored?: { readonly session: Session; readonly seq: number }): ShardState => ({
  phase: "connecting",
  session: stored?.session,
  seq: stored?.seq ?? 0,
  heartbeatMs: DEFAULT_HEARTBEAT_MS,
  awaitingAck: false,
  resumeViaMain: false
})

/** The url the next connection dials. */
export const dialUrl = (state: ShardState, mainUrl: string): string =>
  state.session !== undefined && !state.resumeViaMain ? state.session.resumeUrl : mainUrl

const isSequence = (s: number) => Number.isSafeInteger(s) && s >= 0

export const makeShardMachine = (options: MachineOptions) => {
  const end = (state: ShardState, ending: Ending, extra: ReadonlyArray<Action> = NONE): Transition => {
    let next: ShardState = { ...state, phase: "ended", awaitingAck: false }
    const actions: Array<Action> = [...extra]
    const step = nextStep(ending)
    if (step === "identify" && state.session !== undefined) {
      next = { ...next, session: undefined, seq: 0, resumeViaMain: false }
      actions.push({ _tag: "ForgetSession" })
    }
    if (ending._tag === "ConnectFailed" && state.session !== undefined) next = { ...next, resumeViaMain: true }
    actions.push({ _tag: "End", ending })
    return { state: next, actions }
  }

  const dispatch = (state: ShardState, t: string, seq: number): Transition => {
    if (!isSequence(seq)) {
      return end(state, Endings.undecodable("payload", `Discord sent ${t} with sequence number ${seq}, which is not a whole number`))
    }
    // Before READY there is no session to count against.
    if (state.session === undefined) return { state, actions: [{ _tag: "Ignore", why: `${t} before READY` }] }
    if (seq <= state.seq) {
      return {
        state,
        actions: [{ _tag: "Warn", metric: "sequence_backwards", message: `dropped ${t} with sequence ${seq}: already at ${state.seq}` }]
      }
    }
    // Runs once per event: the common case allocates only the new state, one action and its list.
    const resumed = t === "RESUMED" && state.phase === "resuming"
    const phase: Phase = resumed ? "ready" : state.phase
    const next: ShardState = {
      phase,
      session: state.session,
      seq,
      heartbeatMs: state.heartbeatMs,
      awaitingAck: state.awaitingAck,
      resumeViaMain: state.resumeViaMain
    }
    const routed: Action = options.wanted(t) ? { _tag: "Forward", t, seq } : { _tag: "Skip", seq }
    const gap = seq > state.seq + 1 && state.seq > 0 && phase === "ready" && t !== "RESUMED"
    if (!resumed && !gap) return { state: next, actions: [routed] }
    const actions: Array<Action> = []
    if (resumed) actions.push({ _tag: "Established", how: "resumed", session: state.session, seq })
    if (gap) actions.push({ _tag: "Warn", metric: "sequence_gap", message: `sequence jumped from ${state.seq} to ${seq} (${t})` })
    actions.push(routed)
    return { state: next, actions }
  }

  const step = (state: ShardState, input: Input): Transition => {
    // After the ending only a new connection means anything.
    if (state.phase === "ended" && input._tag !== "Connected" && input._tag !== "ConnectFailed") return { state, actions: NONE }
    switch (input._tag) {
      case "Connected":
        return { state: { ...state, phase: "awaitingHello", awaitingAck: false }, actions: NONE }
      case "Hello": {
        if (state.phase !== "awaitingHello") return { state, actions: NONE }
        const raw = input.heartbeatInterval
        let intervalMs = DEFAULT_HEARTBEAT_MS
        const actions: Array<Action> = []
        if (typeof raw !== "number" || !Number.isFinite(raw) || raw <= 0) {
          actions.push({ _tag: "Warn", metric: "heartbeat_interval", message: `HELLO without a usable heartbeat_interval (${String(raw)}); beating every ${DEFAULT_HEARTBEAT_MS} ms` })
        } else if (raw < MIN_HEARTBEAT_MS || raw > MAX_HEARTBEAT_MS) {
          intervalMs = Math.min(MAX_HEARTBEAT_MS, Math.max(MIN_HEARTBEAT_MS, raw))
          actions.push({ _tag: "Warn", metric: "heartbeat_interval", message: `HELLO heartbeat_interval ${raw} ms is outside ${MIN_HEARTBEAT_MS}-${MAX_HEARTBEAT_MS} ms; beating every ${intervalMs} ms` })
        } else {
          intervalMs = raw
        }
        actions.push({ _tag: "StartHeartbeat", intervalMs })
        if (state.session !== undefined) {
          actions.push({ _tag: "Send", payload: { _tag: "Resume", sessionId: state.session.id, seq: state.seq } })
          return { state: { ...state, phase: "resuming", heartbeatMs: intervalMs }, actions }
        }
        actions.push({ _tag: "RequestIdentify" })
        return { state: { ...state, phase: "identifying", heartbeatMs: intervalMs }, actions }
      }
      case "IdentifyGranted":
        if (state.phase !== "identifying") return { state, actions: NONE }
        return { state, actions: [{ _tag: "Send", payload: { _tag: "Identify" } }] }
      case "HeartbeatAck":
        if (!state.awaitingAck) return { state, actions: NONE }
        return { state: { ...state, awaitingAck: false }, actions: [{ _tag: "HeartbeatAcked" }] }
      case "HeartbeatRequest":
        return { state, actions: [{ _tag: "Send", payload: { _tag: "Heartbeat", seq: state.seq > 0 ? state.seq : null } }] }
      case "HeartbeatDue":
        // Any frame proves the peer alive; a socket we paused ourselves cannot show that.
        if (state.awaitingAck && !input.heard && !input.paused) return end(state, Endings.zombie(state.heartbeatMs))
        return {
          state: { ...state, awaitingAck: true },
          actions: [{ _tag: "Send", payload: { _tag: "Heartbeat", seq: state.seq > 0 ? state.seq : null } }]
        }
      case "HelloTimeout":
        if (state.phase !== "awaitingHello") return { state, actions: NONE }
        return end(state, Endings.helloTimeout(input.afterMs))
      case "Reconnect":
        return end(state, Endings.reconnectRequested)
      case "InvalidSession":
        return end(state, Endings.invalidSession(input.resumable && state.session !== undefined))
      case "Ready": {
        if (typeof input.sessionId !== "string" || typeof input.resumeUrl !== "string" || input.sessionId === "") {
          return end(state, Endings.badReady)
        }
        if (!isSequence(input.seq)) {
          return end(state, Endings.undecodable("payload", `Discord sent READY with sequence number ${input.seq}, which is not a whole number`))
        }
        const session: Session = { id: input.sessionId, resumeUrl: input.resumeUrl }
        const actions: Array<Action> = [{ _tag: "Established", how: "ready", session, seq: input.seq }]
        actions.push(options.wanted("READY") ? { _tag: "Forward", t: "READY", seq: input.seq } : { _tag: "Skip", seq: input.seq })
        return { state: { ...state, phase: "ready", session, seq: input.seq, resumeViaMain: false }, actions }
      }
      case "Dispatch":
        return dispatch(state, input.t, input.seq)
      case "Dropped": {
        const what = `${input.t ?? "a payload"}${input.seq === undefined ? "" : ` (seq ${input.seq})`}`
        const warn: Action = {
          _tag: "Warn",
          metric: "payload_dropped",
          message: `dropped ${what} of ${input.bytes} bytes: over limits.payload_size (${input.limit} bytes)`
        }
        // The sequence moves past it (a RESUME would only replay it); nothing is forwarded.
        if (input.seq === undefined || input.t === undefined || state.session === undefined || !isSequence(input.seq) || input.seq <= state.seq) {
          return { state, actions: [warn] }
        }
        return { state: { ...state, seq: input.seq }, actions: [warn, { _tag: "Skip", seq: input.seq }] }
      }
      case "Closed":
        return end(state, Endings.closed(input.code, input.reason))
      case "Undecodable":
        return end(state, Endings.undecodable(input.layer, input.detail))
      case "Oversized":
        return end(state, Endings.oversized(input.detail))
      case "ConnectFailed":
        return end({ ...state, phase: "ended" }, Endings.connectFailed(input.url, input.reason))
    }
  }

  return { step }
}

export type ShardMachine = ReturnType<typeof makeShardMachine>
