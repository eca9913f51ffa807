// The one backoff of the code base: every retry loop (reconnects, broker outages, REST, Redis and
// AMQP redials, command forwarding) waits base x 2^(attempt-1), capped, with "equal jitter" (at
// least half the step, so a crowd of retries spreads out without ever retrying at once).
import { Duration, Effect, Random, Schedule } from "effect"

export interface BackoffPolicy {
  /** The first delay's ceiling. */
  readonly baseMs: number
  /** No delay is longer than this. */
  readonly capMs: number
}

/** Delay before retry number `attempt` (1-based; 0 or less: no wait), for `random` in [0, 1). */
export const backoffDelayMs = (policy: BackoffPolicy, attempt: number, random: number): number => {
  if (attempt <= 0) return 0
  const ceiling = Math.min(policy.capMs, policy.baseMs * 2 ** Math.min(attempt - 1, 30))
  return Math.round(ceiling / 2 + (ceiling / 2) * random)
}

/** The same delays as a Schedule (for `Effect.retry` / `Effect.repeat`), on Effect's Clock and Random. */
export const backoffSchedule = (policy: BackoffPolicy): Schedule.Schedule<number> =>
  Schedule.forever.pipe(
    Schedule.modifyDelay(({ attempt }) =>
      Effect.map(Random.next, (random) => Duration.millis(backoffDelayMs(policy, attempt, random)))
    )
  )

/** Shared policies: one place to read how patient each part of the gateway is. */
export const Backoffs = {
  /** A shard's next connection after failed ones (DISCORD_GATEWAY.md: never hammer the gateway). */
  reconnect: { baseMs: 1_000, capMs: 60_000 },
  /**
   * A broker that refuses publishes: events wait in the outbox meanwhile. Capped low (a failed
   * attempt while disconnected costs nothing) so that delivery restarts within about 2 s of the
   * broker's return (this cap plus the redial's), however long the outage was.
   */
  brokerOutage: { baseMs: 100, capMs: 1_000 },
  /** Redialling Redis or RabbitMQ: one connection attempt a second at most, for the same reason. */
  redial: { baseMs: 100, capMs: 1_000 },
  /** Restarting a supervised worker (publisher, checkpointer, command source, shard) after a defect. */
  restart: { baseMs: 1_000, capMs: 30_000 },
  /** `/gateway/bot` on 5xx and network errors. */
  rest: { baseMs: 500, capMs: 30_000 }
} as const satisfies Record<string, BackoffPolicy>
