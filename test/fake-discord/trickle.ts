// A steady trickle of realistic events spread over every shard with a live connection, each
// about a guild the receiving shard owns (so the gateway's routing assumptions hold) and, like
// Discord, sent to every session owning that guild (both generations during a reshard).
import { makeGuildCreate, makeRandomEvent } from "./events.ts"
import { deliver } from "./gateway.ts"
import type { FakeContext } from "./options.ts"
import { guildIdForShard } from "./snowflake.ts"

const TICK_MS = 50
/** Share of trickled events that are a GUILD_CREATE for a newly joined guild. */
const GUILD_JOIN_SHARE = 0.01

export interface Trickle {
  start(ratePerSec: number): void
  stop(): void
  readonly rate: number
}

export function createTrickle(ctx: FakeContext, rng: () => number): Trickle {
  let timer: ReturnType<typeof setInterval> | undefined
  let rate = 0
  let due = 0
  let last = 0
  let n = 0

  const tick = (): void => {
    const now = performance.now()
    // Cap catch-up to one second of events so an event-loop stall does not cause a burst.
    due = Math.min(due + (rate * (now - last)) / 1000, Math.max(1, rate))
    last = now
    if (due < 1) return
    const live = ctx.sessions.everySession().filter((s) => s.connection?.writable === true && s.guildIds.length > 0)
    if (live.length === 0) {
      due = 0
      return
    }
    for (; due >= 1; due--) {
      const session = live[Math.floor(rng() * live.length)]!
      n++
      if (rng() < GUILD_JOIN_SHARE) {
        const guildId = guildIdForShard(session.shardId, session.shardCount, session.guildIds.length)
        const dJson = JSON.stringify(makeGuildCreate(guildId, { members: 10 + Math.floor(rng() * 200) }))
        for (const owner of ctx.sessions.owning(guildId)) {
          owner.guildIds.push(guildId)
          deliver(ctx, owner, "GUILD_CREATE", dJson)
        }
        continue
      }
      const guildId = session.guildIds[Math.floor(rng() * session.guildIds.length)]!
      const event = makeRandomEvent(guildId, n, rng)
      const dJson = JSON.stringify(event.d)
      for (const owner of ctx.sessions.owning(guildId)) deliver(ctx, owner, event.t, dJson)
    }
    ctx.notify()
  }

  return {
    get rate() {
      return rate
    },
    start(ratePerSec) {
      rate = Math.max(0, ratePerSec)
      if (timer !== undefined) return
      last = performance.now()
      due = 0
      timer = setInterval(tick, TICK_MS)
      timer.unref()
    },
    stop() {
      if (timer !== undefined) clearInterval(timer)
      timer = undefined
      rate = 0
    }
  }
}
