// The throughput scenario's event stream for one shard: the fake's realistic mix (messages of
// 1-2 KB, presences, typing, reactions, member updates) with, now and then, a GUILD_CREATE of a
// few hundred KB. Payloads come from a small pool of objects reused in turn: blast() serializes
// and compresses each object once, so the fake spends its CPU on sending, not on generating.
import type { BlastPayload } from "../../test/fake-discord/FakeDiscord.ts"
import { createRng, makeGuildCreate, makeRandomEvent } from "../../test/fake-discord/events.ts"
import { guildIdForShard } from "../../test/fake-discord/snowflake.ts"

export interface MixOptions {
  readonly shardId: number
  readonly shardCount: number
  readonly events: number
  /** A GUILD_CREATE every this many events (the first one halfway through the first period); 0 never. */
  readonly guildCreateEvery: number
  readonly guildCreateBytes: number
  readonly seed: number
}

const POOL_SIZE = 512

export interface Mix {
  readonly payloads: Iterable<BlastPayload>
  /** JSON bytes of every `d` the iterable yields, by event name: for the report. */
  readonly bytesByType: Map<string, { count: number; bytes: number }>
}

export function makeMix(options: MixOptions): Mix {
  const guildId = guildIdForShard(options.shardId, options.shardCount, 0)
  const rng = createRng(options.seed + options.shardId)
  const pool = Array.from({ length: POOL_SIZE }, (_, n) => makeRandomEvent(guildId, n + 1, rng))
  const poolBytes = pool.map((p) => Buffer.byteLength(JSON.stringify(p.d)))
  const guildCreate = { t: "GUILD_CREATE", d: makeGuildCreate(guildIdForShard(options.shardId, options.shardCount, 1), { targetBytes: options.guildCreateBytes }) }
  const guildCreateBytes = Buffer.byteLength(JSON.stringify(guildCreate.d))
  const every = options.guildCreateEvery
  const isGuildCreate = (i: number): boolean => every > 0 && i % every === Math.floor(every / 2)

  const bytesByType = new Map<string, { count: number; bytes: number }>()
  const account = (t: string, bytes: number): void => {
    const entry = bytesByType.get(t) ?? { count: 0, bytes: 0 }
    entry.count++
    entry.bytes += bytes
    bytesByType.set(t, entry)
  }
  for (let i = 0; i < options.events; i++) {
    if (isGuildCreate(i)) account("GUILD_CREATE", guildCreateBytes)
    else account(pool[i % POOL_SIZE]!.t, poolBytes[i % POOL_SIZE]!)
  }

  function* payloads(): Generator<BlastPayload> {
    for (let i = 0; i < options.events; i++) yield isGuildCreate(i) ? guildCreate : pool[i % POOL_SIZE]!
  }
  return { payloads: payloads(), bytesByType }
}
