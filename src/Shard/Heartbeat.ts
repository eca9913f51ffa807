// Heartbeats (DISCORD_GATEWAY.md §5): the first after interval x random [0,1), then every
// interval. A beat that finds the previous one unacknowledged AND nothing else received since
// means the connection is a zombie; a busy connection whose ACK is merely late is not.
import { Data, Duration, Effect, Random } from "effect"

export class ZombieConnection extends Data.TaggedError("ZombieConnection")<{ readonly intervalMs: number }> {
  override get message() {
    return `no heartbeat ACK and nothing else received for ${this.intervalMs} ms`
  }
}

export interface HeartbeatPort {
  /** Sends op 1 with the last sequence number. */
  readonly beat: Effect.Effect<void>
  /** True when the last beat was acknowledged. */
  readonly acked: () => boolean
  /** Frames received since the last beat (any frame proves the peer alive). */
  readonly framesSinceBeat: () => number
}

export const heartbeatLoop = (intervalMs: number, port: HeartbeatPort): Effect.Effect<never, ZombieConnection> =>
  Effect.gen(function*() {
    const jitter = yield* Random.next
    yield* Effect.sleep(Duration.millis(Math.floor(intervalMs * jitter)))
    let first = true
    for (;;) {
      if (!first && !port.acked() && port.framesSinceBeat() === 0) {
        return yield* new ZombieConnection({ intervalMs })
      }
      first = false
      yield* port.beat
      yield* Effect.sleep(Duration.millis(intervalMs))
    }
  })
