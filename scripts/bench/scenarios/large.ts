// Large payloads: one GUILD_CREATE of 1, 2.5 and 5 MB (JSON) at a time through zlib-stream and
// zstd-stream, into our gateway (stdout broker). A fresh gateway per case, so its peak RSS
// belongs to that size. Time = blast start to the line read from the gateway's stdout.
import { startClient } from "../clients.ts"
import { FakeProcess } from "../fake-process.ts"
import { cpuMicros, memory, sleep, waitQuiet } from "../proc.ts"

export type Compression = "zlib-stream" | "zstd-stream"

export interface LargeConfig {
  /** Target JSON sizes in bytes. */
  readonly sizes: ReadonlyArray<number>
  readonly compressions: ReadonlyArray<Compression>
  /** Payloads sent per case (one at a time); the time is their median. */
  readonly repeat: number
}

export interface LargeSample {
  readonly compress: Compression
  readonly targetBytes: number
  /** Actual JSON size of the `d` sent. */
  readonly bytes: number
  /** Median ms from blast start to the event leaving the gateway. */
  readonly ms: number
  /** Gateway CPU per payload (all threads), ms; clock-tick resolution. */
  readonly cpuMs: number
  readonly rssBefore: number
  readonly peakRss: number
}

export async function largeSample(compress: Compression, targetBytes: number, repeat: number, log: (line: string) => void): Promise<LargeSample> {
  const fake = await FakeProcess.start({ shardCount: 1, maxConcurrency: 1, guildsPerShard: 0 })
  let client: Awaited<ReturnType<typeof startClient>> | undefined
  try {
    client = await startClient("ours", fake, { shardCount: 1, compress })
    await client.guard(fake.waitReady(1, 30_000))
    await sleep(1_000)
    await client.guard(waitQuiet(log))
    const baseline = await client.count()
    const rssBefore = memory(client.pid).rss
    const times: Array<number> = []
    let bytes = 0
    const cpuBefore = cpuMicros(client.pid)
    for (let i = 1; i <= repeat; i++) {
      const started = performance.now()
      const sent = await client.guard(fake.blastLarge({ shardId: 0, shardCount: 1, targetBytes }, 60_000))
      await client.waitFor(baseline + i, 60_000)
      times.push(performance.now() - started)
      bytes = sent.bytes
    }
    const cpuMs = (cpuMicros(client.pid) - cpuBefore) / 1000 / repeat
    times.sort((a, b) => a - b)
    return { compress, targetBytes, bytes, ms: times[Math.floor((times.length - 1) / 2)]!, cpuMs, rssBefore, peakRss: memory(client.pid).hwm }
  } finally {
    await client?.stop()
    await fake.close()
  }
}

export async function largeScenario(config: LargeConfig, log: (line: string) => void): Promise<Array<LargeSample>> {
  const samples: Array<LargeSample> = []
  for (const compress of config.compressions) {
    for (const size of config.sizes) {
      log(`large: ${compress}, GUILD_CREATE of ${(size / 1e6).toFixed(1)} MB × ${config.repeat}`)
      const sample = await largeSample(compress, size, config.repeat, log)
      log(`  ${sample.ms.toFixed(0)} ms each (gateway CPU ${sample.cpuMs.toFixed(0)} ms), peak RSS ${(sample.peakRss / 2 ** 20).toFixed(1)} MiB (before: ${(sample.rssBefore / 2 ** 20).toFixed(1)} MiB)`)
      samples.push(sample)
    }
  }
  return samples
}

/**
 * How a cost grows with size: the per-MB figure of the largest case over that of the smallest.
 * ≈1 is linear; clearly above, superlinear; clearly below, a fixed cost dominates.
 */
export function growth(points: ReadonlyArray<{ readonly x: number; readonly y: number }>): { readonly factor: number; readonly verdict: string } {
  const sorted = [...points].sort((a, b) => a.x - b.x)
  const first = sorted[0]
  const last = sorted.at(-1)
  if (first === undefined || last === undefined || first === last || first.y <= 0) return { factor: Number.NaN, verdict: "n/a" }
  const factor = last.y / last.x / (first.y / first.x)
  const verdict = factor > 1.5 ? "superlinear" : factor < 0.67 ? "sublinear, a fixed cost dominates" : "linear"
  return { factor, verdict }
}
