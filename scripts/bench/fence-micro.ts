// Microbench: the Redis broker's plain pipeline (events without a lease, epoch 0) against the fenced
// script path (epoch > 0), on a private redis-server. Reports redis-server CPU per event (INFO cpu)
// and this process's CPU per event, alternating the two paths over several rounds.
//
//   node scripts/bench/fence-micro.ts [--events 100000] [--rounds 5] [--streams 8]
import { spawn } from "node:child_process"
import { createServer } from "node:net"
import { parseArgs } from "node:util"
import { Effect, Redacted } from "effect"
import { Redis } from "ioredis"
import type { DispatchEvent } from "../../src/Broker/DispatchEvent.ts"
import { MAX_CHUNK } from "../../src/Broker/Outbox.ts"
import { makeRedisBroker } from "../../src/Broker/RedisBroker.ts"
import { makeRedisClient } from "../../src/Redis/RedisClient.ts"

const { values } = parseArgs({ options: { events: { type: "string" }, rounds: { type: "string" }, streams: { type: "string" } } })
const EVENTS = Number(values.events ?? 100_000)
const ROUNDS = Number(values.rounds ?? 5)
const STREAMS = Number(values.streams ?? 8)

const freePort = () =>
  new Promise<number>((resolve) => {
    const server = createServer().listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })

const port = await freePort()
const server = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], { stdio: "ignore" })
process.on("exit", () => server.kill("SIGKILL"))
const admin = new Redis({ port, maxRetriesPerRequest: 5, retryStrategy: (n) => (n > 50 ? null : 100) })
await admin.ping()

const redisCpuSeconds = async (): Promise<number> => {
  const info = await admin.info("cpu")
  const field = (name: string) => Number(new RegExp(`${name}:([0-9.]+)`).exec(info)![1])
  return field("used_cpu_user") + field("used_cpu_sys")
}

// About the size of a typical MESSAGE_CREATE `d`.
const data = Buffer.from(JSON.stringify({ id: "1", channel_id: "2", guild_id: "3", content: "x".repeat(300), author: { id: "4", username: "someone", avatar: null }, mentions: [], attachments: [], embeds: [] }))
const names = Array.from({ length: STREAMS }, (_, i) => `BENCH_${i}`)
const batch = (epoch: number, from: number): Array<DispatchEvent> =>
  Array.from({ length: MAX_CHUNK }, (_, i) => ({
    t: names[(from + i) % names.length]!,
    shard: (from + i) % 4,
    seq: from + i,
    epoch,
    data,
    receipt: { accepted: () => {}, current: () => true }
  }))

const run = (epoch: number) =>
  Effect.scoped(Effect.gen(function*() {
    const redis = yield* makeRedisClient([Redacted.make(`redis://127.0.0.1:${port}`)])
    const broker = makeRedisBroker(redis, { encoding: "json", messageTimeoutMs: 120_000, maxLength: 100_000 })
    yield* broker.publish(batch(epoch, 0)) // warm-up: script cache, first ids for MINID
    const batches = Array.from({ length: Math.ceil(EVENTS / MAX_CHUNK) }, (_, i) => batch(epoch, (i + 1) * MAX_CHUNK))
    const redisBefore = yield* Effect.promise(redisCpuSeconds)
    const ownBefore = process.cpuUsage()
    const started = performance.now()
    for (const b of batches) yield* broker.publish(b)
    const wallMs = performance.now() - started
    const own = process.cpuUsage(ownBefore)
    const redisCpu = (yield* Effect.promise(redisCpuSeconds)) - redisBefore
    const n = batches.length * MAX_CHUNK
    yield* Effect.promise(() => admin.flushall())
    return { redisUs: (redisCpu * 1e6) / n, clientUs: (own.user + own.system) / n, eventsPerSec: n / (wallMs / 1000) }
  }))

const results: Record<"plain" | "fenced", Array<{ redisUs: number; clientUs: number; eventsPerSec: number }>> = { plain: [], fenced: [] }
for (let round = 0; round < ROUNDS; round++) {
  for (const [label, epoch] of (round % 2 === 0 ? [["plain", 0], ["fenced", 7]] : [["fenced", 7], ["plain", 0]]) as Array<["plain" | "fenced", number]>) {
    const r = await Effect.runPromise(run(epoch))
    results[label].push(r)
    process.stderr.write(`round ${round + 1} ${label}: redis ${r.redisUs.toFixed(2)} µs/event, client ${r.clientUs.toFixed(2)} µs/event, ${Math.round(r.eventsPerSec)} events/s\n`)
  }
}
const median = (xs: Array<number>) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
for (const label of ["plain", "fenced"] as const) {
  const rs = results[label]
  console.log(`${label.padEnd(6)}  redis-server ${median(rs.map((r) => r.redisUs)).toFixed(2)} µs/event  client ${median(rs.map((r) => r.clientUs)).toFixed(2)} µs/event  ${Math.round(median(rs.map((r) => r.eventsPerSec)))} events/s  (median of ${rs.length}, ${EVENTS} events, ${STREAMS} streams, batches of ${MAX_CHUNK})`)
}
admin.disconnect()
server.kill("SIGKILL")
process.exit(0)
