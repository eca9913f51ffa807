// Memory per idle shard: resident memory of a client holding N connected, READY, idle shards
// (one small GUILD_CREATE each, then heartbeats only), for several N. Per shard at N =
// (RSS at N − RSS at 1) / (N − 1).
import { startClient } from "../clients.ts"
import type { ClientKind } from "../clients.ts"
import { FakeProcess } from "../fake-process.ts"
import { memory, sleep } from "../proc.ts"

export interface MemoryConfig {
  readonly counts: ReadonlyArray<number>
  readonly clients: ReadonlyArray<ClientKind>
  /** Time left after the last READY before reading RSS, so startup garbage can be collected. */
  readonly settleMs: number
}

export interface MemorySample {
  readonly kind: ClientKind
  readonly shards: number
  readonly rss: number
  readonly peakRss: number
  /** Seconds from start to all READY (for context; identifies are not paced here). */
  readonly readySeconds: number
  /** Set when the client failed; the figures are then NaN. */
  readonly error?: string
}

export async function memorySample(kind: ClientKind, shards: number, settleMs: number): Promise<MemorySample> {
  // max_concurrency = shard count: all identify at once, so 1000 shards start in seconds.
  const fake = await FakeProcess.start({
    shardCount: shards,
    maxConcurrency: shards,
    guildsPerShard: 1,
    sessionStartLimit: { total: 100_000 }
  })
  let client: Awaited<ReturnType<typeof startClient>> | undefined
  try {
    const started = performance.now()
    client = await startClient(kind, fake, { shardCount: shards, compress: "zlib-stream" })
    await client.guard(fake.waitReady(shards, 60_000 + shards * 200))
    const readySeconds = (performance.now() - started) / 1000
    await client.guard(sleep(settleMs))
    const mem = memory(client.pid)
    return { kind, shards, rss: mem.rss, peakRss: mem.hwm, readySeconds }
  } finally {
    await client?.stop()
    await fake.close()
  }
}

export async function memoryScenario(config: MemoryConfig, log: (line: string) => void): Promise<Array<MemorySample>> {
  const samples: Array<MemorySample> = []
  for (const kind of config.clients) {
    for (const shards of config.counts) {
      log(`memory: ${kind} with ${shards} idle shards`)
      try {
        const sample = await memorySample(kind, shards, config.settleMs)
        log(`  RSS ${(sample.rss / 2 ** 20).toFixed(1)} MiB (all READY after ${sample.readySeconds.toFixed(1)} s)`)
        samples.push(sample)
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error)
        log(`  ${kind} failed: ${message}`)
        samples.push({ kind, shards, rss: Number.NaN, peakRss: Number.NaN, readySeconds: Number.NaN, error: message })
      }
    }
  }
  return samples
}
