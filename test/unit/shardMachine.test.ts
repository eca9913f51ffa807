// The pure protocol core: state + input -> state + actions, no Effect, no clock.
import { describe, expect, it } from "vitest"
import { describeEnding, Endings, nextStep } from "../../src/Shard/Ending.ts"
import { type Action, type Input, initialState, makeShardMachine, type ShardState } from "../../src/Shard/ShardMachine.ts"

const machine = makeShardMachine({ wanted: (t) => t !== "TYPING_START" })
const run = (state: ShardState, ...inputs: Array<Input>) => {
  const actions: Array<Action> = []
  for (const input of inputs) {
    const next = machine.step(state, input)
    state = next.state
    actions.push(...next.actions)
  }
  return { state, actions, tags: actions.map((a) => a._tag) }
}
const ready = run(initialState(), { _tag: "Connected" }, { _tag: "Hello", heartbeatInterval: 41_250 }, { _tag: "IdentifyGranted" }, {
  _tag: "Ready",
  sessionId: "abc",
  resumeUrl: "wss://resume",
  seq: 1
})

describe("ShardMachine", () => {
  it("identifies without a session and resumes with one", () => {
    expect(ready.tags).toEqual(["StartHeartbeat", "RequestIdentify", "Send", "Established", "Forward"])
    expect(ready.state.phase).toBe("ready")
    const again = run({ ...ready.state, phase: "ended" }, { _tag: "Connected" }, { _tag: "Hello", heartbeatInterval: 41_250 })
    expect(again.actions).toContainEqual({ _tag: "Send", payload: { _tag: "Resume", sessionId: "abc", seq: 1 } })
    expect(again.state.phase).toBe("resuming")
  })

  it("forwards wanted dispatches, skips the rest, drops replays and counts gaps", () => {
    const r = run(ready.state, { _tag: "Dispatch", t: "MESSAGE_CREATE", seq: 2 }, { _tag: "Dispatch", t: "TYPING_START", seq: 3 }, {
      _tag: "Dispatch",
      t: "MESSAGE_CREATE",
      seq: 3
    }, { _tag: "Dispatch", t: "MESSAGE_CREATE", seq: 7 })
    expect(r.tags).toEqual(["Forward", "Skip", "Warn", "Warn", "Forward"])
    expect(r.state.seq).toBe(7)
  })

  it("calls a connection a zombie only when nothing at all was heard since an unacknowledged beat, and not while paused", () => {
    const beat = run(ready.state, { _tag: "HeartbeatDue", heard: false, paused: false })
    expect(beat.tags).toEqual(["Send"])
    expect(run(beat.state, { _tag: "HeartbeatDue", heard: true, paused: false }).tags).toEqual(["Send"])
    expect(run(beat.state, { _tag: "HeartbeatDue", heard: false, paused: true }).tags).toEqual(["Send"])
    const zombie = run(beat.state, { _tag: "HeartbeatDue", heard: false, paused: false })
    expect(zombie.actions.at(-1)).toEqual({ _tag: "End", ending: Endings.zombie(41_250) })
  })

  it("forgets the session on an ending that needs a new one, keeps it otherwise", () => {
    const invalid = run(ready.state, { _tag: "InvalidSession", resumable: false })
    expect(invalid.tags).toEqual(["ForgetSession", "End"])
    expect(invalid.state.session).toBeUndefined()
    const closed = run(ready.state, { _tag: "Closed", code: 4000, reason: "" })
    expect(closed.state.session?.id).toBe("abc")
    expect(run(ready.state, { _tag: "Closed", code: 4009, reason: "" }).state.session).toBeUndefined()
  })

  it("ignores everything after the ending but a new connection", () => {
    const ended = run(ready.state, { _tag: "Reconnect" })
    expect(run(ended.state, { _tag: "HeartbeatDue", heard: false, paused: false }, { _tag: "Closed", code: 1006, reason: "" }).tags).toEqual([])
  })

  it("resumes through the main url after the resume url failed, and forgets that once READY", () => {
    const failed = run(ready.state, { _tag: "Reconnect" }, { _tag: "ConnectFailed", url: "wss://resume", reason: "ECONNREFUSED" })
    expect(failed.state.resumeViaMain).toBe(true)
  })

  it("derives the next step and the sentence from the ending's tag", () => {
    expect(nextStep(Endings.closed(4004, ""))).toBe("fatal")
    expect(nextStep(Endings.closed(4007, ""))).toBe("identify")
    expect(nextStep(Endings.invalidSession(true))).toBe("resume")
    // A reason the server gave replaces our guess about it.
    expect(describeEnding(Endings.closed(4002, "missing user agent"))).not.toContain("gateway bug")
    expect(describeEnding(Endings.closed(4002, ""))).toContain("gateway bug")
  })
})
