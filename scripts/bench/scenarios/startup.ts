// Startup: N shards with max_concurrency M, identify window 5 s. Discord allows M identifies per
// 5 s, so all READY cannot come sooner than (ceil(N/M) − 1) × 5 s; the brief's yardstick is
// ceil(N/M) × 5 s. Identify-limit violations seen by the fake are reported (they must be 0).
import { startClient } from "../clients.ts"
import type { ClientKind } from "../clients.ts"
import { FakeProcess } from "../fake-process.ts"
import { waitQuiet } from "../proc.ts"

export interface StartupConfig {
  readonly shards: number
  readonly maxConcurrency: number
  readonly clients: ReadonlyArray<ClientKind>
}

export interface StartupSample {
  readonly kind: ClientKind
  readonly seconds: number
  readonly identifies: number
  readonly violations: number
  readonly closestViolationMs: number | null
  /** Set when the client failed (crashed or timed out); the other fields are then meaningless. */
  readonly error?: string
}

export const IDENTIFY_WINDOW_MS = 5_000

export async function startupSample(kind: ClientKind, config: StartupConfig, log: (line: string) => void): Promise<StartupSample> {
  const buckets = Math.ceil(config.shards / config.maxConcurrency)
  const fake = await FakeProcess.start({
    shardCount: config.shards,
    maxConcurrency: config.maxConcurrency,
    identifyIntervalMs: IDENTIFY_WINDOW_MS,
    guildsPerShard: 1,
    sessionStartLimit: { total: 100_000 }
  })
  let client: Awaited<ReturnType<typeof startClient>> | undefined
  try {
    await waitQuiet(log)
    const started = performance.now()
    client = await startClient(kind, fake, { shardCount: config.shards, compress: "zlib-stream" })
    await client.guard(fake.waitReady(config.shards, buckets * IDENTIFY_WINDOW_MS + 60_000))
    const seconds = (performance.now() - started) / 1000
    const stats = await fake.stats()
    return { kind, seconds, identifies: stats.identifies, violations: stats.violations, closestViolationMs: stats.closestViolationMs }
  } finally {
    await client?.stop()
    await fake.close()
  }
}

export async function startupScenario(config: StartupConfig, log: (line: string) => void): Promise<Array<StartupSample>> {
  const samples: Array<StartupSample> = []
  for (const kind of config.clients) {
    log(`startup: ${kind}, ${config.shards} shards, max_concurrency ${config.maxConcurrency}`)
    try {
      const sample = await startupSample(kind, config, log)
      log(`  all READY after ${sample.seconds.toFixed(1)} s, ${sample.identifies} identifies, ${sample.violations} violations`)
      samples.push(sample)
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error)
      log(`  ${kind} failed: ${message}`)
      samples.push({ kind, seconds: Number.NaN, identifies: 0, violations: 0, closestViolationMs: null, error: message })
    }
  }
  return samples
}
