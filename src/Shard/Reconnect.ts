// The loop around a shard's connections: whatever ended the last one, wait as long as it calls
// for, then connect again. Timing lives here, on Effect's Clock, so tests drive it with TestClock.
import { Clock, Duration, Effect, Random } from "effect"

/** How a connection ended and what the next one must do. */
export interface Ending {
  readonly next: "resume" | "identify"
  readonly reason: string
  /** Fixed wait before the next connection (op 9: 1-5 s); otherwise the backoff decides. */
  readonly waitMs?: number
  /** The peer cannot be trusted to finish a close handshake. */
  readonly terminate?: boolean
  /** The connection reached READY or RESUMED before it ended. */
  readonly established?: boolean
}

/** A session that lasted this long counts as healthy: the reconnect backoff starts over. */
export const HEALTHY_AFTER_MS = 10_000
const BACKOFF_BASE_MS = 1_000
const BACKOFF_CAP_MS = 60_000

/** Delay before reconnect attempt number `failures` (0 after a healthy session: at once). */
export const reconnectDelay = (failures: number, random: number): number => {
  if (failures <= 0) return 0
  const ceiling = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** (failures - 1))
  // "Equal jitter": at least half the ceiling, so a storm of shards spreads without racing.
  return Math.round(ceiling / 2 + (ceiling / 2) * random)
}

export const reconnectForever = <E, R, R2>(
  connect: Effect.Effect<Ending, E, R>,
  /** Runs after each ending (state changes); returns what the next connection will do, for the log. */
  afterEnding: (ending: Ending) => Effect.Effect<string, never, R2>
): Effect.Effect<never, E, R | R2> =>
  Effect.gen(function*() {
    let failures = 0
    for (;;) {
      const startedAt = yield* Clock.currentTimeMillis
      const ending = yield* connect
      const lasted = (yield* Clock.currentTimeMillis) - startedAt
      const next = yield* afterEnding(ending)
      // A long healthy session starts the backoff over; one that got READY but ended soon after
      // waits a little; connections that never get there back off further each time.
      failures = lasted >= HEALTHY_AFTER_MS ? 0 : ending.established ? 1 : failures + 1
      const waitMs = ending.waitMs ?? reconnectDelay(failures, yield* Random.next)
      yield* Effect.logWarning(`connection ended: ${ending.reason}; ${next} in ${(waitMs / 1000).toFixed(1)}s`)
      if (waitMs > 0) yield* Effect.sleep(Duration.millis(waitMs))
    }
  })
