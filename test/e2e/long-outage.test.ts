// A long broker outage under load (issue: backpressure looked like a zombie). The shards pause
// their sockets once the buffer is full; a paused socket is not a dead one, so no connection is
// dropped however long the outage lasts (here 45 heartbeat intervals); the buffer never exceeds
// broker.buffer_size; and delivery restarts within about 2 s of the broker's return, with nothing
// lost. The broker is RabbitMQ, cut off by a TCP proxy: with Redis as the broker, its leases
// would stop the shards on purpose after 8 s (test/e2e/leases.test.ts).
import * as amqp from "amqplib"
import { afterEach, describe, expect, it } from "vitest"
import { type FakeDiscord, startFakeDiscord } from "../fake-discord/FakeDiscord.ts"
import { freePort, startTcpProxy } from "../brokers/support.ts"
import { reaper, spawnGateway } from "../support/gateway.ts"
import { sampleOutboxPeak } from "../support/outboxPeak.ts"
import { AMQP_URL, amqpAvailable } from "../support/services.ts"

const procs = reaper()
const cleanups: Array<() => Promise<void>> = []
let fake: FakeDiscord | undefined
afterEach(async () => {
  await procs.killAll()
  for (const c of cleanups.splice(0).reverse()) await c()
  await fake?.close()
  fake = undefined
})

const BUFFER = 100
const HEARTBEAT_MS = 1_000
const OUTAGE_MS = 45_000

describe.skipIf(!amqpAvailable)("a long broker outage", () => {
  it("drops no connection, holds at most the buffer, and delivers again within ~2 s of the broker's return", async () => {
    const proxy = await startTcpProxy({ host: "127.0.0.1", port: Number(new URL(AMQP_URL).port || 5672) })
    cleanups.push(() => proxy.close())
    const group = `long_outage_${Date.now()}`
    const url = new URL(AMQP_URL)
    url.host = `127.0.0.1:${proxy.port}`
    fake = await startFakeDiscord({ token: "long-outage", shardCount: 2, maxConcurrency: 2, heartbeatIntervalMs: HEARTBEAT_MS })
    const metricsPort = await freePort()
    const gateway = procs.track(spawnGateway({
      env: {
        DISCORD_TOKEN: "long-outage",
        DISCORD_EVENTS: "MESSAGE_CREATE",
        DISCORD_API_PROTOCOL: "http",
        DISCORD_API_HOST: fake.host,
        BROKER_TYPE: "amqp",
        BROKER_GROUP: group,
        AMQP_URL: url.toString(),
        BROKER_BUFFER_SIZE: String(BUFFER),
        PROMETHEUS_ADDRESS: `127.0.0.1:${metricsPort}`,
        LOG_LEVEL: "info"
      }
    }))
    await fake.waitFor(() => fake!.readyShards().length === 2, 20_000, "ready")
    const connectionsBefore = fake.counters.connections
    const connection = await amqp.connect(AMQP_URL)
    const channel = await connection.createChannel()
    cleanups.push(async () => {
      await channel.deleteQueue(`${group}:MESSAGE_CREATE`).catch(() => undefined)
      await channel.deleteExchange(group).catch(() => undefined)
      await connection.close().catch(() => undefined)
    })
    const markers = new Set<string>()
    let lastArrival = 0
    await channel.consume(`${group}:MESSAGE_CREATE`, (msg) => {
      if (msg === null) return
      markers.add((JSON.parse(msg.content.toString()) as { m: string }).m)
      lastArrival = Date.now()
    }, { noAck: true })

    // A steady load for the whole test: 40 events/s per shard.
    const sent: Array<string> = []
    let n = 0
    const loader = setInterval(() => {
      for (const shard of [0, 1]) {
        const m = `lo-${shard}-${n}`
        sent.push(m)
        fake!.dispatch(shard, "MESSAGE_CREATE", { m })
      }
      n++
    }, 25)
    const sampler = sampleOutboxPeak(metricsPort, 50)
    try {
      await new Promise((r) => setTimeout(r, 2_000))
      await proxy.cut()
      const cutAt = Date.now()
      await new Promise((r) => setTimeout(r, OUTAGE_MS))
      expect(fake.counters.connections).toBe(connectionsBefore)
      await proxy.restore()
      const back = Date.now()
      expect(lastArrival).toBeLessThan(cutAt + 1_000)
      let restartedAfterMs = Number.NaN
      while (Date.now() - back < 15_000) {
        if (lastArrival > back) {
          restartedAfterMs = lastArrival - back
          break
        }
        await new Promise((r) => setTimeout(r, 20))
      }
      await new Promise((r) => setTimeout(r, 2_000))
      clearInterval(loader)
      const deadline = Date.now() + 30_000
      while (Date.now() < deadline && !sent.every((m) => markers.has(m))) await new Promise((r) => setTimeout(r, 200))
      const peak = await sampler.stop()
      console.log(`long outage: ${OUTAGE_MS / 1000}s, ${sent.length} events, outbox peak ${peak} (buffer ${BUFFER}), delivery restarted ${restartedAfterMs} ms after the broker's return, connections ${fake.counters.connections - connectionsBefore} new`)
      expect(sent.filter((m) => !markers.has(m))).toEqual([])
      expect(peak).toBeLessThanOrEqual(BUFFER)
      expect(restartedAfterMs).toBeLessThan(2_500)
      // No zombie verdict and no reconnect, however many heartbeat intervals the pause lasted.
      expect(fake.counters.connections).toBe(connectionsBefore)
      expect(gateway.stderr()).not.toMatch(/zombie/)
    } finally {
      clearInterval(loader)
      await sampler.stop()
    }
  }, 150_000)
})
