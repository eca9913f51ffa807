// The fake Discord in its own process, driven by the bench over IPC, so the CPU it spends
// serializing, compressing and writing is never charged to the client being measured.
// Started by the bench with fork(); not meant to be run by hand.
import type { FakeDiscord, FakeDiscordOptions } from "../../test/fake-discord/FakeDiscord.ts"
import { startFakeDiscord } from "../../test/fake-discord/FakeDiscord.ts"
import { makeGuildCreate } from "../../test/fake-discord/events.ts"
import { guildIdForShard } from "../../test/fake-discord/snowflake.ts"
import { makeMix } from "./mix.ts"
import type { Mix } from "./mix.ts"
import { serve } from "./rpc.ts"

export interface BlastMixParams {
  readonly shardCount: number
  readonly eventsPerShard: number
  readonly guildCreateEvery: number
  readonly guildCreateBytes: number
  readonly seed: number
}

export interface BlastMixResult {
  readonly events: number
  readonly ms: number
  readonly byType: Record<string, { count: number; bytes: number }>
}

export interface BlastLargeParams {
  readonly shardId: number
  readonly shardCount: number
  readonly targetBytes: number
}

let fake: FakeDiscord | undefined
const current = (): FakeDiscord => {
  if (fake === undefined) throw new Error("fake Discord not started")
  return fake
}
// The same GUILD_CREATE object for repeated sends of one size, so blast compresses it once.
const largePayloads = new Map<number, { d: object; bytes: number }>()
let prepared: Array<{ shardId: number; mix: Mix }> | undefined

serve({
  start: async (options: FakeDiscordOptions) => {
    if (fake !== undefined) await fake.close()
    fake = await startFakeDiscord(options)
    return { host: fake.host, url: fake.url, gatewayUrl: fake.gatewayUrl }
  },

  ready: () => current().readyShards().length,

  waitReady: async (params: { n: number; timeoutMs: number }) => {
    const f = current()
    await f.waitFor(() => f.readyShards().length >= params.n, params.timeoutMs, `${params.n} shards READY`)
  },

  stats: () => {
    const f = current()
    // The closest two identifies of one bucket came: tells a pacing bug (≈0 ms) from lag (≈5 s).
    const closestViolationMs = f.violations.reduce((min, v) => Math.min(min, v.sinceMs), Number.POSITIVE_INFINITY)
    return {
      identifies: f.identifies.length,
      resumes: f.resumes.length,
      violations: f.violations.length,
      closestViolationMs: Number.isFinite(closestViolationMs) ? closestViolationMs : null,
      connections: f.connections,
      closes: f.closes.length
    }
  },

  // Builds the shards' event streams ahead of the measured blast, so generating them is not timed.
  prepareMix: (params: BlastMixParams) => {
    const f = current()
    const shards = f.readyShards()
    prepared = shards.map((shardId) => ({
      shardId,
      mix: makeMix({ shardId, shardCount: params.shardCount, events: params.eventsPerShard, guildCreateEvery: params.guildCreateEvery, guildCreateBytes: params.guildCreateBytes, seed: params.seed })
    }))
    return { shards: shards.length, events: shards.length * params.eventsPerShard }
  },

  blastMix: async (): Promise<BlastMixResult> => {
    const f = current()
    const mixes = prepared
    if (mixes === undefined) throw new Error("blastMix without prepareMix")
    prepared = undefined
    const byType: Record<string, { count: number; bytes: number }> = {}
    let events = 0
    for (const { mix } of mixes) {
      for (const [t, entry] of mix.bytesByType) {
        const total = (byType[t] ??= { count: 0, bytes: 0 })
        total.count += entry.count
        total.bytes += entry.bytes
        events += entry.count
      }
    }
    const started = performance.now()
    await Promise.all(mixes.map(({ shardId, mix }) => f.blast(shardId, mix.payloads)))
    return { events, ms: performance.now() - started, byType }
  },

  blastLarge: async (params: BlastLargeParams) => {
    let payload = largePayloads.get(params.targetBytes)
    if (payload === undefined) {
      const d = makeGuildCreate(guildIdForShard(params.shardId, params.shardCount, 7), { targetBytes: params.targetBytes })
      payload = { d, bytes: Buffer.byteLength(JSON.stringify(d)) }
      largePayloads.set(params.targetBytes, payload)
    }
    const started = performance.now()
    await current().blast(params.shardId, [{ t: "GUILD_CREATE", d: payload.d }])
    return { ms: performance.now() - started, bytes: payload.bytes }
  },

  close: async () => {
    await fake?.close()
    fake = undefined
  }
})
