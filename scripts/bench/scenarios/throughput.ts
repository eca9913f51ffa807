// Throughput: K events of the realistic mix over S shards (zlib-stream unless told), sent as fast
// as each client reads. Measured between the first byte blasted and the moment the client has consumed
// (ours-redis: Redis has acknowledged) the last event.
import { startClient } from "../clients.ts"
import type { ClientKind } from "../clients.ts"
import { FakeProcess } from "../fake-process.ts"
import { cpuMicros, memory, sleep, systemCpu, waitQuiet } from "../proc.ts"

export interface ThroughputConfig {
  readonly events: number
  readonly shards: number
  readonly repeat: number
  /** A GUILD_CREATE every this many events per shard. */
  readonly guildCreateEvery: number
  readonly guildCreateBytes: number
  readonly clients: ReadonlyArray<ClientKind>
  /** Transport compression; zlib-stream by default (the peers support nothing else). */
  readonly compress?: "zlib-stream" | "zstd-stream"
}

export interface ThroughputSample {
  readonly kind: ClientKind
  readonly events: number
  readonly seconds: number
  readonly eventsPerSec: number
  /** CPU of the client process, µs per event. */
  readonly cpuPerEvent: number
  readonly helpers: ReadonlyArray<{ readonly name: string; readonly cpuPerEvent: number }>
  readonly fakeCpuPerEvent: number
  readonly peakRss: number
  /** Events counted beyond the target shortly after it was reached (duplicates would show here). */
  readonly extra: number
  /** CPU used meanwhile by processes outside this run (the machine is shared), in cores. */
  readonly otherCores: number
  /** CPU the hypervisor took from this VM meanwhile, in cores. */
  readonly stealCores: number
  readonly byType: Record<string, { count: number; bytes: number }>
  /** The measured window on the machine's monotonic clock, µs (the clock V8 CPU profiles use). */
  readonly window: readonly [number, number]
}

const monotonicMicros = (): number => Number(process.hrtime.bigint() / 1000n)

/** One run: fresh fake and client, blast, measure, stop. */
export async function runThroughput(kind: ClientKind, config: ThroughputConfig, log: (line: string) => void, nodeArgs: ReadonlyArray<string> = []): Promise<ThroughputSample> {
  const S = config.shards
  const eventsPerShard = Math.ceil(config.events / S)
  const events = eventsPerShard * S
  const fake = await FakeProcess.start({ shardCount: S, maxConcurrency: S, guildsPerShard: 0, sessionStartLimit: { total: 100_000 } })
  let client: Awaited<ReturnType<typeof startClient>> | undefined
  try {
    client = await startClient(kind, fake, { shardCount: S, compress: config.compress ?? "zlib-stream", nodeArgs })
    await client.guard(fake.waitReady(S, 60_000))
    // READY may be forwarded as an event too: let it land before taking the baseline.
    await sleep(1_000)
    const prepared = await fake.prepareMix({ shardCount: S, eventsPerShard, guildCreateEvery: config.guildCreateEvery, guildCreateBytes: config.guildCreateBytes, seed: 1 })
    if (prepared.events !== events) throw new Error(`the fake prepared ${prepared.events} events for ${prepared.shards} ready shards, expected ${events}`)
    await client.guard(waitQuiet(log))
    const baseline = await client.count()
    const pids = [client.pid, ...client.helpers.map((h) => h.pid), fake.pid]
    const before = pids.map(cpuMicros)
    const systemBefore = systemCpu()
    const benchBefore = process.cpuUsage()
    const timeoutMs = 60_000 + events // 1 ms per event on top of a minute: generous, but bounded
    const started = performance.now()
    const windowStart = monotonicMicros()
    const blast = fake.blastMix(timeoutMs)
    blast.catch(() => undefined) // awaited below; a failure is reported from there
    await client.waitFor(baseline + events, timeoutMs)
    const seconds = (performance.now() - started) / 1000
    const windowEnd = monotonicMicros()
    const after = pids.map(cpuMicros)
    const systemAfter = systemCpu()
    const bench = process.cpuUsage(benchBefore)
    const ours = after.reduce((sum, a, i) => sum + a - before[i]!, 0) + bench.user + bench.system
    const peakRss = memory(client.pid).hwm
    const blasted = await blast
    await sleep(200)
    const extra = (await client.count()) - baseline - events
    const perEvent = (i: number): number => (after[i]! - before[i]!) / events
    return {
      kind,
      events,
      seconds,
      eventsPerSec: events / seconds,
      cpuPerEvent: perEvent(0),
      helpers: client.helpers.map((h, i) => ({ name: h.name, cpuPerEvent: perEvent(i + 1) })),
      fakeCpuPerEvent: perEvent(pids.length - 1),
      peakRss,
      extra,
      otherCores: Math.max(0, systemAfter.busy - systemBefore.busy - ours) / 1e6 / seconds,
      stealCores: (systemAfter.steal - systemBefore.steal) / 1e6 / seconds,
      byType: blasted.byType,
      window: [windowStart, windowEnd]
    }
  } finally {
    await client?.stop()
    await fake.close()
  }
}

export interface ThroughputResult {
  readonly kind: ClientKind
  readonly shards: number
  readonly compress: "zlib-stream" | "zstd-stream"
  /** The sample with the median events/s; undefined when every run failed. */
  readonly median: ThroughputSample | undefined
  readonly samples: ReadonlyArray<ThroughputSample>
  readonly errors: ReadonlyArray<string>
}

export async function throughputScenario(config: ThroughputConfig, log: (line: string) => void): Promise<Array<ThroughputResult>> {
  const samples = new Map<ClientKind, Array<ThroughputSample>>()
  const errors = new Map<ClientKind, Array<string>>()
  // Clients take turns within each repetition, so a slow phase of the machine hits all of them.
  for (let r = 0; r < config.repeat; r++) {
    for (const kind of config.clients) {
      log(`throughput: ${kind}, run ${r + 1}/${config.repeat}: ${config.events} events over ${config.shards} shard(s), ${config.compress ?? "zlib-stream"}`)
      let sample: ThroughputSample
      try {
        sample = await runThroughput(kind, config, log)
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error)
        log(`  ${kind} failed: ${message}`)
        errors.set(kind, [...(errors.get(kind) ?? []), message])
        continue
      }
      log(`  ${Math.round(sample.eventsPerSec)} events/s, ${sample.cpuPerEvent.toFixed(1)} µs CPU/event, peak RSS ${(sample.peakRss / 2 ** 20).toFixed(0)} MiB; other load ${sample.otherCores.toFixed(2)} cores, steal ${sample.stealCores.toFixed(2)}`)
      const list = samples.get(kind) ?? []
      list.push(sample)
      samples.set(kind, list)
    }
  }
  return config.clients.map((kind) => {
    const list = samples.get(kind) ?? []
    const sorted = [...list].sort((a, b) => a.eventsPerSec - b.eventsPerSec)
    return { kind, shards: config.shards, compress: config.compress ?? "zlib-stream", median: sorted[Math.floor((sorted.length - 1) / 2)], samples: list, errors: errors.get(kind) ?? [] }
  })
}
