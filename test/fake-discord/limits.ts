// Identify limits of /gateway/bot (DISCORD_GATEWAY.md §9): the daily session-start budget and
// the max_concurrency buckets (key = shard_id % max_concurrency, one IDENTIFY per key per window).

export interface SessionStartLimit {
  readonly total: number
  readonly remaining: number
  /** Milliseconds until `remaining` resets to `total`. */
  readonly resetAfter: number
}

export class IdentifyLimiter {
  maxConcurrency: number
  readonly intervalMs: number
  #total: number
  #remaining: number
  #resetAt: number
  #resetAfter: number
  /** Time of the last accepted IDENTIFY per bucket. */
  readonly #lastByBucket = new Map<number, number>()

  constructor(limit: SessionStartLimit, maxConcurrency: number, intervalMs: number) {
    this.maxConcurrency = Math.max(1, maxConcurrency)
    this.intervalMs = intervalMs
    this.#total = limit.total
    this.#remaining = limit.remaining
    this.#resetAfter = limit.resetAfter
    this.#resetAt = Date.now() + limit.resetAfter
  }

  set(limit: Partial<SessionStartLimit>): void {
    if (limit.total !== undefined) this.#total = limit.total
    if (limit.remaining !== undefined) this.#remaining = limit.remaining
    if (limit.resetAfter !== undefined) {
      this.#resetAfter = limit.resetAfter
      this.#resetAt = Date.now() + limit.resetAfter
    }
  }

  #refresh(now: number): void {
    if (now < this.#resetAt) return
    this.#remaining = this.#total
    this.#resetAt = now + Math.max(1, this.#resetAfter)
  }

  snapshot(now = Date.now()): SessionStartLimit {
    this.#refresh(now)
    return { total: this.#total, remaining: this.#remaining, resetAfter: Math.max(0, this.#resetAt - now) }
  }

  bucketOf(shardId: number): number {
    return shardId % this.maxConcurrency
  }

  /** The previous accepted identify of this bucket when it is closer than the window. */
  tooSoon(bucket: number, now: number): number | undefined {
    const last = this.#lastByBucket.get(bucket)
    return last !== undefined && now - last < this.intervalMs ? last : undefined
  }

  hasSessionStart(now: number): boolean {
    this.#refresh(now)
    return this.#remaining > 0
  }

  /** Records an accepted identify: consumes a session start and occupies the bucket. */
  accept(bucket: number, now: number): void {
    this.#refresh(now)
    this.#remaining = Math.max(0, this.#remaining - 1)
    this.#lastByBucket.set(bucket, now)
  }
}
