// The shard protocol, in-process: the real ShardSession over an in-memory Discord on the test
// clock. Every ending of the close-code table, op 7, op 9, zombies, HELLO timeouts, resume urls,
// identify buckets and the send window, each in milliseconds of real time.
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Layer } from "effect"
import { type LeaseCell, ShardLeases } from "../../src/Cluster/ShardLeases.ts"
import { CLOSE_CODES, closeAction } from "../../src/Discord/CloseCodes.ts"
import { type Harness, makeHarness } from "../support/shardHarness.ts"

/** Ready, with `before` marked events delivered. */
const readyWith = (h: Harness, shard: number, before: number, tag = "before") =>
  Effect.gen(function*() {
    yield* h.until(() => h.discord.live(shard) !== undefined, `shard ${shard} READY`)
    for (let i = 0; i < before; i++) h.discord.dispatch(shard, "MESSAGE_CREATE", { m: `${tag}-${i}` })
    yield* h.until(() => h.markers(shard).length >= before, `${before} events delivered`)
  })

/** Every marker dispatched so far on the shard's sessions reached the outbox, none twice. */
const expectNothingLost = (h: Harness, shard: number) => {
  const sent = [...h.discord.sessions.values()].filter((s) => s.shard === shard)
    .flatMap((s) => s.events.filter((e) => e.t === "MESSAGE_CREATE").map((e) => (e.d as { m: string }).m))
  expect(new Set(h.markers(shard))).toEqual(new Set(sent))
  expect(h.markers(shard).length).toBe(sent.length)
}

const opsSent = (h: Harness, shard: number) => h.discord.sentBy(shard).map((s) => s.op)

describe("close codes, in-process", () => {
  const codes = [...CLOSE_CODES.keys(), 1000, 1001, 1006, 4999]
  it.effect.each(codes)("close %i: resume, identify afresh or stop, as the table says", (code) =>
    Effect.gen(function*() {
      const h = yield* makeHarness()
      yield* readyWith(h, 0, 5)
      const first = h.discord.live(0)!
      first.close(code, "test")
      // Dispatched while the connection is down: a resume replays them.
      h.discord.dispatch(0, "MESSAGE_CREATE", { m: "during" })
      const action = closeAction(code)
      if (action.kind === "fatal") {
        const exit = yield* Fiber.await(h.fibers.get(0)!).pipe(Effect.timeout("1 second"), Effect.orDie)
        expect(Exit.isFailure(exit)).toBe(true)
        const text = String(Exit.isFailure(exit) ? exit.cause : "")
        expect(text).toContain(String(code))
        expect(text).toContain(action.fix.slice(0, 20))
        expect(h.discord.peers.length).toBe(1)
        return
      }
      yield* h.until(() => h.discord.peers.length === 2 && h.discord.live(0) !== undefined, "a new live connection", 130_000)
      const second = h.discord.peers[1]!
      if (action.kind === "resume") {
        expect(second.url.startsWith("ws://resume-0.discord.test/")).toBe(true)
        expect(second.sent.map((s) => s.op)).toContain(6)
        expect(second.sent.map((s) => s.op)).not.toContain(2)
        yield* h.until(() => h.markers(0).includes("during"), "the replayed event")
        expectNothingLost(h, 0)
      } else {
        expect(second.url.startsWith(h.discord.mainUrl)).toBe(true)
        expect(second.sent.map((s) => s.op)).toContain(2)
        expect(h.discord.identifies.length).toBe(2)
      }
    }))
})

describe("Discord's requests, in-process", () => {
  it.effect("op 7: reconnects to the resume url and RESUMEs; nothing lost", () =>
    Effect.gen(function*() {
      const h = yield* makeHarness()
      yield* readyWith(h, 0, 10)
      h.discord.live(0)!.deliver({ op: 7, d: null })
      h.discord.dispatch(0, "MESSAGE_CREATE", { m: "after" })
      yield* h.until(() => h.markers(0).includes("after"), "the event after op 7")
      expect(h.discord.resumes).toEqual([expect.objectContaining({ shard: 0, ok: true })])
      expect(h.discord.identifies.length).toBe(1)
      expectNothingLost(h, 0)
    }))

  it.effect("op 9 true: resumes the same session", () =>
    Effect.gen(function*() {
      const h = yield* makeHarness()
      yield* readyWith(h, 0, 3)
      h.discord.live(0)!.deliver({ op: 9, d: true })
      yield* h.until(() => h.discord.resumes.length === 1 && h.discord.live(0) !== undefined, "a resume")
      expect(h.discord.identifies.length).toBe(1)
      expect(h.discord.live(0)!.session!.id).toBe(h.discord.peers[0]!.session!.id)
    }))

  it.effect("op 9 false: waits 1-5 s, identifies afresh and forgets the stored session", () =>
    Effect.gen(function*() {
      const h = yield* makeHarness()
      yield* readyWith(h, 0, 3)
      yield* h.advance(6_000) // clear of the identify bucket's 5 s
      const stored = yield* h.store.load(0)
      expect(stored?.sessionId).toBe(h.discord.peers[0]!.session!.id)
      const at = h.discord.now()
      h.discord.live(0)!.deliver({ op: 9, d: false })
      yield* h.until(() => h.discord.identifies.length === 2, "a second IDENTIFY")
      const gap = h.discord.identifies[1]!.at - at
      expect(gap).toBeGreaterThanOrEqual(1_000)
      expect(gap).toBeLessThanOrEqual(5_100)
      expect(h.discord.resumes.length).toBe(0)
      yield* h.until(() => h.discord.live(0) !== undefined, "READY again")
      yield* h.advance(100)
      expect((yield* h.store.load(0))?.sessionId).toBe(h.discord.live(0)!.session!.id)
    }))

  it.effect("answers op 1 at once with the last sequence number", () =>
    Effect.gen(function*() {
      const h = yield* makeHarness()
      yield* readyWith(h, 0, 4)
      const peer = h.discord.live(0)!
      const before = peer.sent.length
      peer.deliver({ op: 1, d: null })
      expect(peer.sent.length).toBe(before + 1)
      expect(peer.sent.at(-1)).toMatchObject({ op: 1, d: peer.session!.seq })
    }))
})

describe("heartbeats, in-process", () => {
  it.effect("beats after a jittered first wait, then every interval, with the last sequence", () =>
    Effect.gen(function*() {
      const h = yield* makeHarness({ discord: { heartbeatIntervalMs: 10_000 } })
      yield* readyWith(h, 0, 2)
      yield* h.advance(45_000)
      const beats = h.discord.live(0)!.sent.filter((s) => s.op === 1)
      expect(beats.length).toBeGreaterThanOrEqual(4)
      expect(beats.length).toBeLessThanOrEqual(5)
      for (let i = 1; i < beats.length; i++) expect(beats[i]!.at - beats[i - 1]!.at).toBe(10_000)
      expect(beats.at(-1)!.d).toBe(3)
    }))

  it.effect("a zombie (no ACK, nothing else heard) is closed with a non-1000/1001 code, dropped, and resumed", () =>
    Effect.gen(function*() {
      const h = yield* makeHarness({ discord: { heartbeatIntervalMs: 5_000 } })
      yield* readyWith(h, 0, 2)
      h.discord.ack = false
      yield* h.until(() => h.discord.peers.length === 2, "a new connection", 30_000)
      const zombie = h.discord.peers[0]!
      expect(zombie.clientClose?.aborted).toBe(true)
      expect([1000, 1001]).not.toContain(zombie.clientClose?.code)
      h.discord.ack = true
      yield* h.until(() => h.discord.resumes.length === 1, "a RESUME")
    }))

  it.effect("a busy connection whose ACK is late is not a zombie", () =>
    Effect.gen(function*() {
      const h = yield* makeHarness({ discord: { heartbeatIntervalMs: 5_000 } })
      yield* readyWith(h, 0, 1)
      h.discord.ack = false
      for (let i = 0; i < 40; i++) {
        h.discord.dispatch(0, "MESSAGE_CREATE", { m: `busy-${i}` })
        yield* h.advance(1_000)
      }
      expect(h.discord.peers.length).toBe(1)
    }))

  it.effect("a socket paused for backpressure is not judged a zombie; delivery restarts when the outbox drains", () =>
    Effect.gen(function*() {
      const h = yield* makeHarness({ discord: { heartbeatIntervalMs: 5_000 }, bufferSize: 10, drain: false })
      yield* h.until(() => h.discord.live(0) !== undefined, "READY")
      for (let i = 0; i < 30; i++) h.discord.dispatch(0, "MESSAGE_CREATE", { m: `held-${i}` })
      expect(h.discord.live(0)!.paused).toBe(true)
      // Four minutes with the socket paused: ACKs wait unread behind the events.
      yield* h.advance(240_000, 1_000)
      expect(h.discord.peers.length).toBe(1)
      expect(h.outbox.size()).toBeLessThanOrEqual(10)
      yield* Effect.forkScoped(h.drain)
      yield* h.until(() => h.markers(0).length === 30, "all 30 events", 2_000)
      expect(h.discord.peers.length).toBe(1)
    }))

  it.effect("the outbox never holds more than its capacity: what the socket had buffered waits in the shard, in order, even across a reconnect", () =>
    Effect.gen(function*() {
      const h = yield* makeHarness({ bufferSize: 10, drain: false })
      h.discord.readAhead = 5
      yield* h.until(() => h.discord.live(0) !== undefined, "READY")
      let peak = 0
      for (let i = 0; i < 40; i++) {
        h.discord.dispatch(0, "MESSAGE_CREATE", { m: `e-${i}` })
        peak = Math.max(peak, h.outbox.size())
      }
      expect(peak).toBe(10)
      // The connection ends while events wait in the shard: they are not lost, nor read twice.
      h.discord.live(0)!.close(4000, "")
      yield* h.advance(5_000)
      yield* Effect.forkScoped(h.drain)
      yield* h.until(() => h.markers(0).length >= 40, "all 40 events", 10_000)
      expect(h.markers(0)).toEqual(Array.from({ length: 40 }, (_, i) => `e-${i}`))
      expect(h.discord.resumes.length).toBe(1)
    }))

  it.effect("HELLO intervals out of range are clamped (1 ms beats every second, 1e12 every five minutes)", () =>
    Effect.gen(function*() {
      const fast = yield* makeHarness({ discord: { heartbeatIntervalMs: 1 } })
      yield* fast.until(() => fast.discord.live(0) !== undefined, "READY")
      yield* fast.advance(10_000)
      const beats = fast.discord.live(0)!.sent.filter((s) => s.op === 1).length
      expect(beats).toBeGreaterThanOrEqual(9)
      expect(beats).toBeLessThanOrEqual(11)
      const slow = yield* makeHarness({ discord: { heartbeatIntervalMs: 1e12 } })
      yield* slow.until(() => slow.discord.live(0) !== undefined, "READY")
      yield* slow.advance(600_000, 1_000)
      expect(slow.discord.live(0)!.sent.filter((s) => s.op === 1).length).toBeGreaterThanOrEqual(2)
    }))

  it.effect("no HELLO within 30 s: the connection is dropped and dialled again", () =>
    Effect.gen(function*() {
      const h = yield* makeHarness({ discord: { hello: false } })
      yield* h.until(() => h.discord.peers.length === 1, "a connection")
      yield* h.advance(29_000)
      expect(h.discord.peers[0]!.open).toBe(true)
      h.discord.hello = true
      yield* h.until(() => h.discord.peers.length === 2, "a second connection", 5_000)
      expect(h.discord.peers[0]!.clientClose?.aborted).toBe(true)
      yield* h.until(() => h.discord.live(0) !== undefined, "READY")
    }))
})

describe("resume urls and dialling, in-process", () => {
  it.effect("resumes through the main url when the resume url cannot be reached", () =>
    Effect.gen(function*() {
      const h = yield* makeHarness()
      yield* readyWith(h, 0, 3)
      h.discord.unreachable.add("ws://resume-0.discord.test/")
      h.discord.live(0)!.close(4000, "")
      h.discord.dispatch(0, "MESSAGE_CREATE", { m: "gap" })
      yield* h.until(() => h.discord.resumes.length === 1, "a RESUME", 130_000)
      expect(h.discord.resumes[0]!.url.startsWith(h.discord.mainUrl)).toBe(true)
      yield* h.until(() => h.markers(0).includes("gap"), "the replayed event")
      expectNothingLost(h, 0)
    }))

  it.effect("a dial that never opens is given up after 15 s and tried again", () =>
    Effect.gen(function*() {
      const h = yield* makeHarness()
      h.discord.hang = true
      yield* h.advance(14_000)
      expect(h.discord.peers.length).toBe(0)
      h.discord.hang = false
      yield* h.until(() => h.discord.live(0) !== undefined, "READY after the hung dial", 10_000)
    }))

  it.effect("a sequence number that is not a safe whole number ends the connection as undecodable; the session goes on", () =>
    Effect.gen(function*() {
      const h = yield* makeHarness()
      yield* readyWith(h, 0, 2)
      const peer = h.discord.live(0)!
      peer.deliver({ op: 0, t: "MESSAGE_CREATE", s: 1e300, d: { m: "huge" } })
      yield* h.until(() => h.discord.peers.length === 2 && h.discord.live(0) !== undefined, "a resumed connection")
      expect(h.discord.resumes.length).toBe(1)
      h.discord.dispatch(0, "MESSAGE_CREATE", { m: "next" })
      yield* h.until(() => h.markers(0).includes("next"), "the next event")
      h.discord.live(0)!.deliver({ op: 0, t: "MESSAGE_CREATE", s: 2.5, d: { m: "fraction" } })
      yield* h.until(() => h.discord.peers.length === 3, "another connection")
      expect(h.markers(0)).not.toContain("huge")
      expect(h.markers(0)).not.toContain("fraction")
    }))
})

describe("identify buckets, in-process", () => {
  it.effect("one IDENTIFY per 5 s per bucket (shard % max_concurrency), buckets in parallel", () =>
    Effect.gen(function*() {
      const h = yield* makeHarness({ shardIds: [0, 1, 2, 3, 4, 5], maxConcurrency: 2 })
      yield* h.until(() => h.discord.identifies.length === 6, "6 identifies")
      const byBucket = new Map<number, Array<number>>()
      for (const { shard, at } of h.discord.identifies) byBucket.set(shard % 2, [...(byBucket.get(shard % 2) ?? []), at])
      for (const times of byBucket.values()) {
        for (let i = 1; i < times.length; i++) expect(times[i]! - times[i - 1]!).toBeGreaterThanOrEqual(5_000)
      }
      // Both buckets start at once.
      expect(Math.abs(byBucket.get(0)![0]! - byBucket.get(1)![0]!)).toBeLessThan(1_000)
      // Three rounds: about 10.8 s (5.4 s spacing), not 6 x 5 s.
      expect(Math.max(...h.discord.identifies.map((i) => i.at))).toBeLessThan(12_000)
    }))
})

describe("commands, in-process", () => {
  it.effect("300 commands to one shard: all sent in order, never more than 120 payloads in any 60 s", () =>
    Effect.gen(function*() {
      const h = yield* makeHarness()
      yield* h.until(() => h.discord.live(0) !== undefined, "READY")
      let acked = 0
      for (let i = 0; i < 300; i++) {
        h.commands.offer(0, { payload: JSON.stringify({ op: 3, d: { i } }), sent: Effect.sync(() => void acked++) })
      }
      yield* h.until(() => acked === 300, "300 commands sent", 400_000, 500)
      const sent = h.discord.sentBy(0)
      const presences = sent.filter((s) => s.op === 3).map((s) => s.d.i as number)
      expect(presences).toEqual(Array.from({ length: 300 }, (_, i) => i))
      // A sliding 60 s window over everything the connection sent (heartbeats and identify included).
      const times = sent.map((s) => s.at)
      for (let i = 0; i < times.length; i++) {
        const inWindow = times.filter((t) => t >= times[i]! && t < times[i]! + 60_000).length
        expect(inWindow).toBeLessThanOrEqual(120)
      }
      expect(h.discord.peers.length).toBe(1)
    }))

  it.effect("a command waiting while the shard reconnects is sent once, on the next connection", () =>
    Effect.gen(function*() {
      const h = yield* makeHarness()
      yield* h.until(() => h.discord.live(0) !== undefined, "READY")
      h.discord.live(0)!.close(4000, "")
      let acked = 0
      h.commands.offer(0, { payload: JSON.stringify({ op: 3, d: { once: true } }), sent: Effect.sync(() => void acked++) })
      yield* h.until(() => acked === 1, "the command sent", 10_000)
      expect(opsSent(h, 0).filter((op) => op === 3).length).toBe(1)
      expect(h.discord.peers[1]!.sent.map((s) => s.op)).toContain(3)
    }))
})

describe("supervision, in-process", () => {
  it.effect("a shard whose fiber dies of a defect is restarted alone; the other shards keep delivering", () =>
    Effect.gen(function*() {
      let loads = 0
      const h = yield* makeHarness({
        shardIds: [0, 1],
        maxConcurrency: 2,
        sharder: true,
        // Shard 1's session start reads the store (after the Sharder's budget check read it once):
        // that read is a bug (a defect), not an error the store reports.
        wrapStore: (store) => ({
          ...store,
          load: (shard) => shard === 1 && ++loads === 2 ? Effect.die(new Error("injected defect")) : store.load(shard)
        })
      })
      yield* readyWith(h, 0, 5, "zero")
      yield* h.until(() => h.discord.live(1) !== undefined, "shard 1 READY after its restart", 10_000)
      for (let i = 0; i < 5; i++) h.discord.dispatch(1, "MESSAGE_CREATE", { m: `one-${i}` })
      yield* h.until(() => h.markers(1).length === 5, "shard 1's events")
      expect(loads).toBe(3)
      expectNothingLost(h, 0)
      expectNothingLost(h, 1)
      expect(h.fibers.get(-1)!.pollUnsafe()).toBeUndefined()
    }))

  it.effect("a defect inside a live connection (a socket callback) restarts that shard, which resumes", () =>
    Effect.gen(function*() {
      const h = yield* makeHarness({ shardIds: [0, 1], maxConcurrency: 2, sharder: true })
      yield* readyWith(h, 0, 3, "zero")
      yield* readyWith(h, 1, 3, "one")
      // A receipt that throws is a bug on the delivery side; here it stands for any defect on the hot path.
      const peer = h.discord.live(1)!
      const original = h.outbox.offer
      let thrown = 0
      ;(h.outbox as { offer: typeof original }).offer = (event) => {
        if (event.shard === 1 && thrown++ === 0) throw new Error("injected defect in a socket callback")
        return original(event)
      }
      h.discord.dispatch(1, "MESSAGE_CREATE", { m: "one-boom" })
      h.discord.dispatch(0, "MESSAGE_CREATE", { m: "zero-during" })
      yield* h.until(() => h.markers(0).includes("zero-during"), "shard 0 keeps delivering")
      yield* h.until(() => h.discord.resumes.some((r) => r.shard === 1), "shard 1 resumes after its restart", 10_000)
      yield* h.until(() => h.markers(1).includes("one-boom"), "the event replayed by the resume")
      expect(peer.open).toBe(false)
      // Restarted from the stored checkpoint: nothing lost; what came after it is delivered again.
      const sent = [...h.discord.sessions.values()].filter((s) => s.shard === 1).flatMap((s) => s.events.map((e) => (e.d as { m: string }).m))
      expect(new Set(h.markers(1))).toEqual(new Set(sent))
    }))
})

describe("leases, in-process", () => {
  it.effect("a shard whose lease lapsed stops reading and sending at once, and resumes only once it holds the lease again", () =>
    Effect.gen(function*() {
      const cell: LeaseCell = { until: Number.POSITIVE_INFINITY, epoch: 0 }
      const leases = Layer.succeed(ShardLeases, ShardLeases.of({
        owner: "test",
        tryClaim: () => Effect.succeed(cell),
        claim: () => Effect.succeed(cell),
        release: () => Effect.void,
        lost: () => Effect.never,
        awaitHeld: () => Effect.gen(function*() {
          while (cell.until <= 0) yield* Effect.sleep("100 millis")
        }),
        holders: (shards) => Effect.succeed(shards.map(() => undefined))
      }))
      const h = yield* makeHarness({ leases })
      yield* readyWith(h, 0, 3)
      yield* h.advance(2_000) // let the checkpoint catch up
      const checkpointed = (yield* h.store.load(0))?.seq
      const peer = h.discord.live(0)!
      const sentBefore = peer.sent.length
      // The lease lapses (Redis unreachable, or this process was paused): nothing more may happen.
      cell.until = 0
      h.discord.dispatch(0, "MESSAGE_CREATE", { m: "after-lapse" })
      let acked = 0
      h.commands.offer(0, { payload: JSON.stringify({ op: 3, d: {} }), sent: Effect.sync(() => void acked++) })
      yield* h.advance(120_000, 500)
      expect(h.markers(0)).not.toContain("after-lapse")
      expect(peer.sent.length).toBe(sentBefore)
      expect(peer.open).toBe(false)
      expect(h.discord.peers.length).toBe(1)
      expect(acked).toBe(0)
      expect((yield* h.store.load(0))?.seq).toBe(checkpointed)
      // Held again: the shard resumes and what it had not read is replayed; the command goes out.
      cell.until = Number.POSITIVE_INFINITY
      yield* h.until(() => h.markers(0).includes("after-lapse") && acked === 1, "the resumed shard", 10_000)
      expect(h.discord.resumes.length).toBe(1)
    }))
})

describe("what the operator reads, in-process", () => {
  it.effect("a close repeated on every attempt is logged once, then with its count, not once per attempt; the server's reason is shown as given", () =>
    Effect.gen(function*() {
      const h = yield* makeHarness()
      h.discord.closeOnConnect = { code: 4002, reason: "Missing User-Agent" }
      yield* h.until(() => h.discord.peers.length >= 12, "12 refused connections", 1_200_000, 500)
      // Twelve endings, two warnings (the first, and the tenth with its count); the rest at debug.
      const warnings = h.logs.filter((l) => l.message.startsWith("connection ended") && l.level === "Warn")
      expect(warnings.length).toBe(2)
      expect(warnings[0]!.message).toContain('4002 "Missing User-Agent": decode error')
      expect(warnings[0]!.message).not.toContain("gateway bug")
      expect(warnings[1]!.message).toContain("(10 times in a row)")
    }))
})
