import { describe, expect, it } from "vitest"
import { closeAction, CLOSE_CODES } from "../../src/Discord/CloseCodes.ts"
import { SendWindow } from "../../src/RateLimiter/SendWindow.ts"
import { SessionCursor } from "../../src/Shard/SessionCursor.ts"
import { backoffDelayMs, Backoffs } from "../../src/Resilience/Backoff.ts"
import { failuresAfter, HEALTHY_AFTER_MS } from "../../src/Shard/Reconnect.ts"

describe("close codes", () => {
  it("resumes where the session survives, identifies where it does not, stops where retrying cannot help", () => {
    for (const code of [4000, 4001, 4002, 4003, 4005, 4008, 1000, 1001, 1006, 4999]) expect(closeAction(code).kind).toBe("resume")
    for (const code of [4007, 4009]) expect(closeAction(code).kind).toBe("identify")
    for (const code of [4004, 4010, 4011, 4012, 4013, 4014]) {
      const action = closeAction(code)
      expect(action.kind).toBe("fatal")
      if (action.kind === "fatal") expect(action.fix.length).toBeGreaterThan(20)
    }
    expect(CLOSE_CODES.size).toBe(14)
  })
})

describe("reconnect backoff", () => {
  it("is immediate after a healthy session, then doubles with jitter up to a cap", () => {
    const delay = (failures: number, random: number) => backoffDelayMs(Backoffs.reconnect, failures, random)
    expect(delay(0, 0.5)).toBe(0)
    expect(delay(1, 0)).toBe(500)
    expect(delay(1, 1)).toBe(1000)
    expect(delay(3, 0)).toBe(2000)
    expect(delay(30, 1)).toBe(60_000)
    expect(delay(30, 0)).toBe(30_000)
  })

  it("starts over after a healthy session, stays short after an established one, grows otherwise", () => {
    expect(failuresAfter(7, { lastedMs: HEALTHY_AFTER_MS, established: false })).toBe(0)
    expect(failuresAfter(7, { lastedMs: 1_000, established: true })).toBe(1)
    expect(failuresAfter(7, { lastedMs: 1_000, established: false })).toBe(8)
  })
})

describe("SendWindow", () => {
  it("is a sliding window of 120 sends per 60 s", () => {
    const w = new SendWindow()
    for (let i = 0; i < 115; i++) w.record(1_000 + i)
    // The oldest send leaves the window at 61 000; a second of margin covers arrival-time skew.
    expect(w.waitFor(2_000, 5)).toBe(60_000)
    expect(w.waitFor(2_000, 6)).toBeGreaterThan(0)
    expect(w.waitFor(2_000, 4)).toBe(0)
    expect(w.used(61_000)).toBe(114)
    expect(w.waitFor(61_000, 5)).toBe(0)
    expect(w.used(61_000)).toBe(114)
    expect(w.used(200_000)).toBe(0)
  })
})

describe("SessionCursor", () => {
  it("checkpoints only past events the broker accepted", () => {
    const c = new SessionCursor(0, "s", "ws://r", 1)
    c.skipped(2)
    expect(c.checkpoint).toBe(2)
    c.forwarded(3)
    c.skipped(4)
    c.forwarded(5)
    expect(c.checkpoint).toBe(2) // 3 and 5 are in flight
    c.accepted(3)
    expect(c.checkpoint).toBe(3)
    c.accepted(5)
    expect(c.checkpoint).toBe(5)
    expect(c.received).toBe(5)
  })
})
