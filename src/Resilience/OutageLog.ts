// Logs a recurring failure once when it starts and once when it ends, not on every retry.
import { Clock, Effect } from "effect"

export const outageLog = (what: string) => {
  let since: number | undefined
  return {
    failed: (reason: string) =>
      Effect.gen(function*() {
        if (since !== undefined) return yield* Effect.logDebug(`${what} still failing: ${reason}`)
        since = yield* Clock.currentTimeMillis
        yield* Effect.logWarning(`${what} failed: ${reason}; retrying`)
      }),
    succeeded: Effect.suspend(() => {
      if (since === undefined) return Effect.void
      const started = since
      since = undefined
      return Effect.flatMap(Clock.currentTimeMillis, (now) => Effect.logInfo(`${what} works again after ${((now - started) / 1000).toFixed(1)}s`))
    })
  }
}

/** The message of anything thrown (its name when the message is empty). */
export const errorText = (cause: unknown): string => (cause instanceof Error ? cause.message || cause.name : String(cause))
