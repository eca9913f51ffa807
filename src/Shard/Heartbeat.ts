// Heartbeat timing (DISCORD_GATEWAY.md §5): the first beat after interval x random [0, 1), then one
// every interval on a Schedule. What a beat means (send op 1, or call the connection a zombie) is
// the shard machine's decision; this only says when.
import { Duration, Effect, Random, Schedule } from "effect"

export const runHeartbeat = (intervalMs: number, beat: Effect.Effect<void>): Effect.Effect<void> =>
  Effect.gen(function*() {
    const jitter = yield* Random.next
    yield* Effect.sleep(Duration.millis(Math.floor(intervalMs * jitter)))
    yield* Effect.repeat(beat, Schedule.spaced(Duration.millis(intervalMs)))
  })
