// Where our gateway's memory goes (stdout broker, started with --inspect so the bench can look
// inside): (1) N idle shards after READY and one GUILD_CREATE each: process.memoryUsage(), V8's
// heap spaces and a heap snapshot summarised by kind of object and what holds it; (2) the
// throughput burst: the memory figures at the highest RSS seen (polled every 100 ms) and a
// sampling heap profile of everything allocated meanwhile, collected or not (garbage included:
// that is what fills the young generation), by allocating function and module.
import { startClient } from "../clients.ts"
import { FakeProcess } from "../fake-process.ts"
import { summariseSampling, summariseSnapshot } from "../heap.ts"
import type { SamplingSummary, SnapshotSummary } from "../heap.ts"
import { Inspector } from "../inspector.ts"
import type { MemoryReading } from "../inspector.ts"
import { sleep, waitQuiet } from "../proc.ts"
import type { ThroughputConfig } from "./throughput.ts"

export interface HeapConfig {
  readonly idleShards: number
  readonly burst: ThroughputConfig
}

export interface IdleHeap {
  readonly shards: number
  readonly memory: MemoryReading
  readonly snapshot: SnapshotSummary
}

export interface HeapResult {
  /** One shard (the fixed cost) and N shards: the difference is the cost per shard. */
  readonly one: IdleHeap
  readonly idle: IdleHeap
  readonly burst: {
    readonly shards: number
    readonly events: number
    readonly before: MemoryReading
    readonly peak: MemoryReading
    readonly allocated: SamplingSummary
  }
}

const INSPECT = ["--inspect=127.0.0.1:0"]

async function idle(shards: number, log: (line: string) => void): Promise<IdleHeap> {
  const fake = await FakeProcess.start({ shardCount: shards, maxConcurrency: shards, guildsPerShard: 1, sessionStartLimit: { total: 100_000 } })
  let client: Awaited<ReturnType<typeof startClient>> | undefined
  let inspector: Inspector | undefined
  try {
    client = await startClient("ours", fake, { shardCount: shards, compress: "zlib-stream", nodeArgs: INSPECT })
    await client.guard(fake.waitReady(shards, 60_000 + shards * 200))
    await sleep(3_000)
    inspector = await Inspector.attach(client.stderr!)
    const memory = await inspector.memory()
    log(`heap: ${shards} idle shards: RSS ${(memory.rss / 2 ** 20).toFixed(1)} MiB, V8 heap used ${(memory.heapUsed / 2 ** 20).toFixed(1)} MiB; taking a heap snapshot`)
    const snapshot = summariseSnapshot(await inspector.heapSnapshot(), 200)
    return { shards, memory, snapshot }
  } finally {
    inspector?.close()
    await client?.stop()
    await fake.close()
  }
}

async function burst(config: ThroughputConfig, log: (line: string) => void): Promise<HeapResult["burst"]> {
  const S = config.shards
  const eventsPerShard = Math.ceil(config.events / S)
  const fake = await FakeProcess.start({ shardCount: S, maxConcurrency: S, guildsPerShard: 0, sessionStartLimit: { total: 100_000 } })
  let client: Awaited<ReturnType<typeof startClient>> | undefined
  let inspector: Inspector | undefined
  try {
    client = await startClient("ours", fake, { shardCount: S, compress: "zlib-stream", nodeArgs: INSPECT })
    await client.guard(fake.waitReady(S, 60_000))
    await sleep(1_000)
    const prepared = await fake.prepareMix({ shardCount: S, eventsPerShard, guildCreateEvery: config.guildCreateEvery, guildCreateBytes: config.guildCreateBytes, seed: 1 })
    await client.guard(waitQuiet(log))
    inspector = await Inspector.attach(client.stderr!)
    const ins = inspector
    const before = await ins.memory()
    const baseline = await client.count()
    await ins.call("HeapProfiler.enable")
    // 16 KiB sampling; objects already collected stay in the profile: it is the allocation volume.
    await ins.call("HeapProfiler.startSampling", { samplingInterval: 16_384, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true })
    let peak = before
    let polling = true
    const poll = (async () => {
      while (polling) {
        const reading = await ins.memory().catch(() => undefined)
        if (reading !== undefined && reading.rss > peak.rss) peak = reading
        await sleep(100)
      }
    })()
    const timeoutMs = 60_000 + prepared.events
    const blast = fake.blastMix(timeoutMs)
    blast.catch(() => undefined)
    await client.waitFor(baseline + prepared.events, timeoutMs)
    polling = false
    await poll
    await blast
    const profile = await ins.call<{ profile: { head: Parameters<typeof summariseSampling>[0] } }>("HeapProfiler.stopSampling")
    const allocated = summariseSampling(profile.profile.head)
    log(`heap: burst of ${prepared.events} events: peak RSS ${(peak.rss / 2 ** 20).toFixed(1)} MiB, ${(allocated.totalBytes / prepared.events).toFixed(0)} bytes allocated per event (sampled)`)
    return { shards: S, events: prepared.events, before, peak, allocated }
  } finally {
    inspector?.close()
    await client?.stop()
    await fake.close()
  }
}

export async function heapScenario(config: HeapConfig, log: (line: string) => void): Promise<HeapResult> {
  log(`heap: our gateway with 1 and with ${config.idleShards} idle shards, under the inspector`)
  const oneResult = await idle(1, log)
  const idleResult = await idle(config.idleShards, log)
  log(`heap: our gateway through a burst of ${config.burst.events} events over ${config.burst.shards} shards, under the inspector`)
  const burstResult = await burst(config.burst, log)
  return { one: oneResult, idle: idleResult, burst: burstResult }
}
