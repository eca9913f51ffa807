// Discord closes a connection that sends more than 120 payloads in 60 s (4008), heartbeats
// included. This is a true sliding window: the timestamps of the sends of the last 60 s.
export const SEND_LIMIT = 120
export const SEND_WINDOW_MS = 60_000
/** Discord counts arrivals, we count departures: keep this much clear of the window's edge. */
const EDGE_MARGIN_MS = 1_000

export class SendWindow {
  private readonly stamps: Array<number> = []
  private head = 0
  private readonly limit: number
  private readonly windowMs: number

  constructor(limit = SEND_LIMIT, windowMs = SEND_WINDOW_MS) {
    this.limit = limit
    this.windowMs = windowMs
  }

  private expire(now: number) {
    while (this.head < this.stamps.length && this.stamps[this.head]! <= now - this.windowMs) this.head++
    if (this.head > 256 && this.head * 2 > this.stamps.length) {
      this.stamps.splice(0, this.head)
      this.head = 0
    }
  }

  /** Sends in the current window. */
  used(now: number): number {
    this.expire(now)
    return this.stamps.length - this.head
  }

  record(now: number): void {
    this.stamps.push(now)
  }

  /**
   * Milliseconds until a send fits while keeping `reserve` slots free (for heartbeats), or 0.
   */
  waitFor(now: number, reserve: number): number {
    this.expire(now)
    const allowed = this.limit - reserve
    const used = this.stamps.length - this.head
    if (used < allowed) return 0
    // The send that frees a slot is the (used - allowed + 1)th oldest in the window.
    const oldest = this.stamps[this.head + (used - allowed)]!
    return Math.max(1, oldest + this.windowMs - now + EDGE_MARGIN_MS)
  }
}
