// When a shard's next connection starts: a Schedule over how each connection ended. A connection
// that stayed healthy long enough reconnects at once; one that reached READY but ended soon after
// waits a little; connections that never get there back off further each time (Backoffs.reconnect).
// op 9 without a session asks for its own random 1-5 s. Also decides what the log says: an ending
// that repeats attempt after attempt (say 4002 at once after every connect) is logged once, then
// with its count, not once per attempt.
import { Duration, Effect, Random, Schedule } from "effect"
import { backoffDelayMs, type BackoffPolicy, Backoffs } from "../Resilience/Backoff.ts"
import { describeEnding, type Ending, endingLabel, fixedWaitRange } from "./Ending.ts"

/** A session that lasted this long counts as healthy: the reconnect backoff starts over. */
export const HEALTHY_AFTER_MS = 10_000

/** One connection's outcome, what the schedule reads. */
export interface Attempt {
  readonly ending: Ending
  /** Milliseconds from dial to ending. */
  readonly lastedMs: number
  /** The connection reached READY or RESUMED. */
  readonly established: boolean
  /** What the next connection does, for the log ("resuming" / "identifying"). */
  readonly next: string
}

/** Failed attempts in a row after this one (0: reconnect at once). */
export const failuresAfter = (previous: number, attempt: Pick<Attempt, "lastedMs" | "established">): number =>
  attempt.lastedMs >= HEALTHY_AFTER_MS ? 0 : attempt.established ? 1 : previous + 1

/** Logged at warning level on these repeats of one ending in a row; at debug in between. */
const isMilestone = (streak: number) => streak === 1 || streak === 10 || streak === 100 || streak % 1_000 === 0

export const reconnectSchedule = (policy: BackoffPolicy = Backoffs.reconnect): Schedule.Schedule<number, Attempt> =>
  Schedule.fromStep(Effect.sync(() => {
    let failures = 0
    let lastLabel = ""
    let streak = 0
    return (_now: number, attempt: Attempt) =>
      Effect.gen(function*() {
        failures = failuresAfter(failures, attempt)
        const random = yield* Random.next
        const range = fixedWaitRange(attempt.ending)
        const waitMs = range === undefined
          ? backoffDelayMs(policy, failures, random)
          : Math.round(range[0] + (range[1] - range[0]) * random)
        const label = endingLabel(attempt.ending)
        streak = label === lastLabel && !attempt.established ? streak + 1 : 1
        lastLabel = label
        const line = `connection ended: ${describeEnding(attempt.ending)}${streak > 1 ? ` (${streak} times in a row)` : ""}; ` +
          `${attempt.next} in ${(waitMs / 1000).toFixed(1)}s`
        yield* isMilestone(streak) ? Effect.logWarning(line) : Effect.logDebug(line)
        return [waitMs, Duration.millis(waitMs)] as [number, Duration.Duration]
      })
  }))
