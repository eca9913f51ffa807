// Runs a long-lived worker fiber (the publisher, the checkpointer, a command source, a shard) and
// restarts it when it dies of a defect, with backoff, logging the cause. A worker that keeps dying
// (more than `maxRestarts` restarts within `windowMs`) is reported broken, so /healthz fails, and
// the supervisor then fails with WorkerBroken so the process exits non-zero instead of running on
// without it. Typed failures and interruption are not defects: they pass through untouched (a
// fatal Discord close code must stop the process, not be retried).
import { Cause, Clock, Context, Data, Deferred, Duration, Effect, Exit, Layer, Random } from "effect"
import { type BackoffPolicy, Backoffs, backoffDelayMs } from "./Backoff.ts"
import { errorText } from "./OutageLog.ts"
import { Readiness } from "./Readiness.ts"

export class WorkerBroken extends Data.TaggedError("WorkerBroken")<{
  readonly worker: string
  readonly deaths: number
  readonly windowMs: number
  /** The last defect, in a line. */
  readonly reason: string
}> {
  override get message() {
    return `${this.worker} died ${this.deaths} times within ${this.windowMs / 1000}s and is not restarted again (last: ${this.reason})`
  }
}

export interface SuperviseOptions {
  /** For logs and /healthz: "publisher", "checkpointer", "shard 3". */
  readonly name: string
  /** Restarts allowed within `windowMs`; one more death makes the worker broken. Default 5. */
  readonly maxRestarts?: number
  /** Default 60 s. */
  readonly windowMs?: number
  /** Delay before restart n (n = restarts within the window). Default Backoffs.restart. */
  readonly backoff?: BackoffPolicy
  /** Runs before each restart (a metric, say). */
  readonly onRestart?: (cause: Cause.Cause<unknown>) => Effect.Effect<void>
}

/** A defect, and nothing that says someone meant it to stop (a typed failure, an interruption). */
const isDefect = <E>(cause: Cause.Cause<E>): boolean =>
  Cause.hasDies(cause) && !Cause.hasFails(cause) && !Cause.hasInterrupts(cause)

/**
 * `worker` run under supervision: its success is the result, a defect restarts it, and the
 * `maxRestarts + 1`-th defect within `windowMs` ends in `Readiness.broken(name)` and WorkerBroken.
 * A restarted worker starts from scratch: it must pick up its state from where it is kept (the
 * outbox keeps the chunk a dead publisher held, the store keeps checkpoints).
 */
export const supervise = <A, E, R>(
  worker: Effect.Effect<A, E, R>,
  options: SuperviseOptions
): Effect.Effect<A, E | WorkerBroken, R | Readiness> =>
  Effect.gen(function*() {
    const readiness = yield* Readiness
    const maxRestarts = options.maxRestarts ?? 5
    const windowMs = options.windowMs ?? 60_000
    const policy = options.backoff ?? Backoffs.restart
    // When each restart within the window happened.
    const restarts: Array<number> = []
    for (;;) {
      const exit = yield* Effect.exit(worker)
      if (Exit.isSuccess(exit)) return exit.value
      if (!isDefect(exit.cause)) return yield* Effect.failCause(exit.cause)
      const reason = errorText(Cause.squash(exit.cause))
      const now = yield* Clock.currentTimeMillis
      while (restarts.length > 0 && restarts[0]! <= now - windowMs) restarts.shift()
      if (restarts.length >= maxRestarts) {
        const broken = new WorkerBroken({ worker: options.name, deaths: restarts.length + 1, windowMs, reason })
        readiness.broken(options.name, broken.message)
        yield* Effect.logError(`${broken.message}; stopping the gateway: ${Cause.pretty(exit.cause)}`)
        return yield* broken
      }
      restarts.push(now)
      const delayMs = backoffDelayMs(policy, restarts.length, yield* Random.next)
      yield* Effect.logError(
        `${options.name} died (${reason}); restarting it in ${delayMs} ms ` +
          `(restart ${restarts.length} of ${maxRestarts} allowed within ${windowMs / 1000}s): ${Cause.pretty(exit.cause)}`
      )
      if (options.onRestart) yield* options.onRestart(exit.cause)
      yield* Effect.sleep(Duration.millis(delayMs))
    }
  })

/**
 * The process's one "a worker could not be kept running" signal. Workers forked where nobody
 * joins them (in a layer, in a FiberSet) report there; the gateway's run waits on it and fails
 * with it, so the process exits non-zero.
 */
export class Supervision extends Context.Service<Supervision, {
  readonly broken: Deferred.Deferred<never, WorkerBroken>
}>()("gateway/Supervision") {
  static readonly layer = Layer.effect(Supervision, Effect.map(Deferred.make<never, WorkerBroken>(), (broken) => ({ broken })))
}

/**
 * `supervise` for a fiber nobody joins: the worker's result is dropped, and giving up fails
 * `Supervision.broken` (after Readiness.broken) instead of this effect. Other failures still
 * end the fiber as they are (a worker with typed errors should handle them itself).
 */
export const supervised = <A, E, R>(
  worker: Effect.Effect<A, E, R>,
  options: SuperviseOptions
): Effect.Effect<void, Exclude<E, WorkerBroken>, R | Readiness | Supervision> =>
  Effect.gen(function*() {
    const { broken } = yield* Supervision
    yield* supervise(worker, options).pipe(
      Effect.asVoid,
      Effect.catchIf(
        (error): error is WorkerBroken => error instanceof WorkerBroken,
        (error) => Effect.asVoid(Deferred.fail(broken, error))
      )
    ) as Effect.Effect<void, Exclude<E, WorkerBroken>, R | Readiness>
  })

/** `supervised`, forked into the current scope (a drop-in for `Effect.forkScoped(loop)`). */
export const forkSupervised = <A, E, R>(worker: Effect.Effect<A, E, R>, options: SuperviseOptions) =>
  Effect.forkScoped(supervised(worker, options))
