// Startup: N shards with max_concurrency M, identify window 5 s. Discord allows M identifies per
// 5 s (one per bucket shard_id % M), so all READY cannot come sooner than (ceil(N/M) − 1) × 5 s;
// the target (issue 9) is that minimum plus 5 % plus 1 s, timed from process spawn. Identify-limit
// violations seen by the fake are reported (they must be 0).
import { startClient } from "../clients.ts"
import type { ClientKind } from "../clients.ts"
import { FakeProcess } from "../fake-process.ts"
import { waitQuiet } from "../proc.ts"

export interface StartupCase {
  readonly shards: number
  readonly maxConcurrency: number
}

export interface StartupConfig {
  readonly cases: ReadonlyArray<StartupCase>
  readonly clients: ReadonlyArray<ClientKind>
  /** Runs of a case that needs one wave only (a second or so, so noisy): the median is kept. */
  readonly repeatSingleWave: number
}

export interface StartupSample extends StartupCase {
  readonly kind: ClientKind
  readonly seconds: number
  readonly identifies: number
  readonly violations: number
  readonly closestViolationMs: number | null
  /** Every run's seconds when the case was run several times (seconds is their median). */
  readonly runs?: ReadonlyArray<number>
  /** Set when the client failed (crashed or timed out); the other fields are then meaningless. */
  readonly error?: string
}

export const IDENTIFY_WINDOW_MS = 5_000

/** Discord's own minimum for N shards at max_concurrency M, in seconds. */
export const minimumSeconds = (c: StartupCase): number => ((Math.ceil(c.shards / c.maxConcurrency) - 1) * IDENTIFY_WINDOW_MS) / 1000
/** Issue 9's target: the minimum plus 5 % plus 1 s. */
export const targetSeconds = (c: StartupCase): number => minimumSeconds(c) * 1.05 + 1

export async function startupSample(kind: ClientKind, c: StartupCase, log: (line: string) => void): Promise<StartupSample> {
  const waves = Math.ceil(c.shards / c.maxConcurrency)
  const fake = await FakeProcess.start({
    shardCount: c.shards,
    maxConcurrency: c.maxConcurrency,
    identifyIntervalMs: IDENTIFY_WINDOW_MS,
    guildsPerShard: 1,
    sessionStartLimit: { total: 100_000 }
  })
  let client: Awaited<ReturnType<typeof startClient>> | undefined
  try {
    await waitQuiet(log)
    const started = performance.now()
    client = await startClient(kind, fake, { shardCount: c.shards, compress: "zlib-stream", maxConcurrency: c.maxConcurrency })
    await client.guard(fake.waitReady(c.shards, waves * IDENTIFY_WINDOW_MS + 60_000))
    const seconds = (performance.now() - started) / 1000
    const stats = await fake.stats()
    return { ...c, kind, seconds, identifies: stats.identifies, violations: stats.violations, closestViolationMs: stats.closestViolationMs }
  } finally {
    await client?.stop()
    await fake.close()
  }
}

export async function startupScenario(config: StartupConfig, log: (line: string) => void): Promise<Array<StartupSample>> {
  const samples: Array<StartupSample> = []
  for (const c of config.cases) {
    for (const kind of config.clients) {
      log(`startup: ${kind}, ${c.shards} shards, max_concurrency ${c.maxConcurrency} (target ${targetSeconds(c).toFixed(2)} s)`)
      try {
        const runs: Array<StartupSample> = []
        const repeat = Math.ceil(c.shards / c.maxConcurrency) === 1 ? config.repeatSingleWave : 1
        for (let i = 0; i < repeat; i++) {
          const sample = await startupSample(kind, c, log)
          log(`  all READY after ${sample.seconds.toFixed(2)} s, ${sample.identifies} identifies, ${sample.violations} violations`)
          runs.push(sample)
        }
        runs.sort((a, b) => a.seconds - b.seconds)
        const median = runs[Math.floor((runs.length - 1) / 2)]!
        samples.push({ ...median, runs: runs.map((r) => r.seconds), violations: Math.max(...runs.map((r) => r.violations)) })
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error)
        log(`  ${kind} failed: ${message}`)
        samples.push({ ...c, kind, seconds: Number.NaN, identifies: 0, violations: 0, closestViolationMs: null, error: message })
      }
    }
  }
  return samples
}
