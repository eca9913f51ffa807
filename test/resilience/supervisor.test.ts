// The supervisor: a worker that dies of a defect is restarted (and the cause logged); one that
// keeps dying makes /healthz fail and the supervisor fail; typed failures are not retried.
import { assert, describe, it } from "@effect/vitest"
import { Cause, Deferred, Effect, Exit, Fiber, Layer } from "effect"
import { TestClock } from "effect/testing"
import { makeCommandSources } from "../../src/Commands/CommandSources.ts"
import { Readiness, makeReadiness } from "../../src/Resilience/Readiness.ts"
import { Supervision, supervise } from "../../src/Resilience/Supervisor.ts"
import { collectLogs } from "../support/logs.ts"

/** Restarts after 1 ms: the tests count restarts, they do not wait for them. */
const fast = { baseMs: 1, capMs: 1 }

const setup = () => {
  const readiness = makeReadiness()
  const logs = collectLogs()
  return { readiness, logs, layer: Layer.merge(Layer.succeed(Readiness, readiness), logs.layer) }
}

describe("supervise", () => {
  it.live("restarts a worker that died of a defect, logs the cause, and returns its result", () =>
    Effect.gen(function*() {
      const { readiness, logs, layer } = setup()
      let runs = 0
      const worker = Effect.suspend(() => {
        runs++
        return runs < 3 ? Effect.die(new Error(`boom ${runs}`)) : Effect.succeed("done")
      })
      let hooks = 0
      const onRestart = () => Effect.sync(() => void hooks++)
      const result = yield* supervise(worker, { name: "worker", backoff: fast, onRestart }).pipe(Effect.provide(layer))
      assert.strictEqual(result, "done")
      assert.strictEqual(runs, 3)
      assert.strictEqual(hooks, 2)
      const restarts = logs.lines.filter((l) => l.startsWith("Error: worker died (boom"))
      assert.strictEqual(restarts.length, 2, logs.lines.join("\n"))
      assert.include(restarts[0]!, "boom 1")
      assert.deepStrictEqual(readiness.brokenParts(), [])
    }))

  it.live("a worker that always dies is reported broken (/healthz) and the supervisor fails", () =>
    Effect.gen(function*() {
      const { readiness, layer } = setup()
      let runs = 0
      const worker = Effect.suspend(() => {
        runs++
        return Effect.die(new Error("always"))
      })
      const exit = yield* Effect.exit(supervise(worker, { name: "doomed", maxRestarts: 3, windowMs: 60_000, backoff: fast }).pipe(Effect.provide(layer)))
      assert.isTrue(Exit.isFailure(exit))
      const error = Exit.isFailure(exit) ? Cause.findErrorOption(exit.cause) : undefined
      assert.strictEqual(error?._tag === "Some" ? error.value._tag : undefined, "WorkerBroken")
      assert.strictEqual(runs, 4, "three restarts, then the fourth death is final")
      assert.strictEqual(readiness.brokenParts().length, 1)
      assert.match(readiness.brokenParts()[0]!, /^doomed: doomed died 4 times within 60s .*always/)
    }))

  it.live("a typed failure is not a defect: it passes through without a restart", () =>
    Effect.gen(function*() {
      const { readiness, layer } = setup()
      let runs = 0
      const worker = Effect.suspend(() => {
        runs++
        return Effect.fail("fatal close code" as const)
      })
      const exit = yield* Effect.exit(supervise(worker, { name: "shard 0", backoff: fast }).pipe(Effect.provide(layer)))
      assert.deepStrictEqual(exit, Exit.fail("fatal close code"))
      assert.strictEqual(runs, 1)
      assert.deepStrictEqual(readiness.brokenParts(), [])
    }))

  it.live("deaths spread wider than the window never make the worker broken", () =>
    Effect.gen(function*() {
      const { readiness, layer } = setup()
      let runs = 0
      // Window 0: no earlier restart ever counts, so ten deaths are ten restarts.
      const worker = Effect.suspend(() => (++runs <= 10 ? Effect.die("flaky") : Effect.void))
      yield* supervise(worker, { name: "flaky", maxRestarts: 1, windowMs: 0, backoff: fast }).pipe(Effect.provide(layer))
      assert.strictEqual(runs, 11)
      assert.deepStrictEqual(readiness.brokenParts(), [])
    }))
})

describe("supervised command sources", () => {
  it.effect("a source that keeps dying is restarted with backoff, then stops the gateway through Supervision", () =>
    Effect.gen(function*() {
      const readiness = makeReadiness()
      const logs = collectLogs()
      let runs = 0
      const source = { name: "redis", run: Effect.suspend(() => (runs++, Effect.die(new Error("reader defect")))) }
      const { supervision, error } = yield* Effect.gen(function*() {
        const supervision = yield* Supervision
        const sources = yield* makeCommandSources([source])
        yield* sources.start
        const waiting = yield* Effect.forkChild(Effect.flip(Deferred.await(supervision.broken)))
        // Default policy: restarts after ~1, 2, 4, 8, 16 s; the sixth death within 60 s is final.
        for (let second = 0; second < 120 && !Deferred.isDoneUnsafe(supervision.broken); second++) yield* TestClock.adjust("1 second")
        return { supervision, error: yield* Fiber.join(waiting) }
      }).pipe(Effect.scoped, Effect.provide(Layer.mergeAll(Layer.succeed(Readiness, readiness), Supervision.layer, logs.layer)))
      assert.isTrue(Deferred.isDoneUnsafe(supervision.broken))
      assert.strictEqual(error._tag, "WorkerBroken")
      assert.strictEqual(runs, 6)
      assert.match(readiness.brokenParts()[0]!, /^command source redis: command source redis died 6 times within 60s .*reader defect/)
      assert.strictEqual(logs.lines.filter((l) => l.startsWith("Error: command source redis died (reader defect); restarting it")).length, 5)
    }))
})
