// The elastic cluster end to end: identical processes with no shard ids share the shards through
// a Redis of the test's own (a single server, then a three-node Redis Cluster), take over a dead process's shards, rebalance by live handoff when a
// process joins, and survive a rolling restart; every event carries a unique marker, and the
// broker output is checked for every one of them.
import type { Cluster, Redis } from "ioredis"
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest"
import { type FakeDiscord, startFakeDiscord } from "../fake-discord/FakeDiscord.ts"
import { type GatewayProcess, reaper, spawnGateway } from "../support/gateway.ts"
import { redisBackends, type TestRedis } from "../support/testRedis.ts"
import { arrivals, guildOn, membersD } from "../commands/support.ts"

const SHARDS = 12
const TOKEN = "elastic-token"
const PREFIX = "el:"
const LEASE_TTL_S = 10
const procs = reaper()

let backend: TestRedis
let client: Redis | Cluster

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const until = async (what: string, check: () => boolean | Promise<boolean>, timeoutMs = 30_000) => {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await check()) return
    await sleep(100)
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
}

const env = (fake: FakeDiscord, extra: Record<string, string> = {}) => ({
  DISCORD_TOKEN: TOKEN,
  DISCORD_EVENTS: "MESSAGE_CREATE",
  DISCORD_API_PROTOCOL: "http",
  DISCORD_API_HOST: fake.host,
  BROKER_TYPE: "redis",
  SHARD_STORE_TYPE: "redis",
  SHARD_STORE_PREFIX: PREFIX,
  CHECKPOINT_INTERVAL: "200ms",
  REDIS_URL: backend.url,
  LOG_LEVEL: "info",
  ...extra
})

/** Shard ids whose lease names the process, by pid. */
const ownedBy = async (procsByPid: ReadonlyArray<GatewayProcess>) => {
  const values = await Promise.all(Array.from({ length: SHARDS }, (_, s) => client.get(`${PREFIX}lease:${s}`)))
  return procsByPid.map((p) => values.flatMap((v, shard) => (v !== null && v.includes(`:${p.child.pid}:`) ? [shard] : [])))
}

/** Commands (op 8, one marker each) added to SEND round-robin over every shard until stopped. */
const commandLoad = (perSecond = 20) => {
  const expected: Array<string> = []
  let n = 0
  const timer = setInterval(() => {
    const shard = n % SHARDS
    const nonce = `c-${n}`
    void client.xadd("SEND", "*", "data", JSON.stringify({ op: 8, shard_id: shard, d: membersD(guildOn(shard, SHARDS, n), nonce) }))
    expected.push(`${nonce}@${shard}`)
    n++
  }, 1000 / perSecond)
  return { expected, stop: () => clearInterval(timer) }
}

/** Markers dispatched round-robin over every shard until stopped. */
const load = (fake: FakeDiscord, perSecond = 100) => {
  const sent: Array<string> = []
  let n = 0
  const timer = setInterval(() => {
    for (let i = 0; i < perSecond / 20; i++) {
      const marker = `m-${n}`
      fake.dispatch(n % SHARDS, "MESSAGE_CREATE", { marker })
      sent.push(marker)
      n++
    }
  }, 50)
  return { sent, stop: () => clearInterval(timer) }
}

const published = async () => {
  const entries = await client.xrange("MESSAGE_CREATE", "-", "+")
  return entries.map(([, fields]) => (JSON.parse(fields[fields.indexOf("data") + 1]!) as { marker: string }).marker)
}

const allDelivered = async (sent: ReadonlyArray<string>, timeoutMs = 30_000) => {
  let got: Array<string> = []
  await until("every marker in the stream", async () => {
    got = await published()
    const seen = new Set(got)
    return sent.every((m) => seen.has(m))
  }, timeoutMs).catch(() => undefined)
  const seen = new Set(got)
  const lost = sent.filter((m) => !seen.has(m))
  return { lost, duplicates: got.length - seen.size }
}

const startCluster = async (fake: FakeDiscord, count: number) => {
  const started = Array.from({ length: count }, () => procs.track(spawnGateway({ env: env(fake) })))
  await until("every shard READY", () => fake.readyShards().length === SHARDS, 60_000)
  return started
}

const balanced = (owned: ReadonlyArray<ReadonlyArray<number>>, each: number) =>
  owned.every((s) => s.length === each) && new Set(owned.flat()).size === SHARDS

describe.each(redisBackends)("an elastic cluster of identical processes, on $name", ({ start }) => {
  beforeAll(async () => {
    backend = await start()
    client = backend.client
  }, 60_000)
  afterAll(async () => {
    await procs.killAll()
    await backend?.stop()
  })
  afterEach(async () => {
    await procs.killAll()
    await backend.flush()
  })

  it("three processes split 12 shards 4/4/4 with none run twice; a SIGKILLed one's shards RESUME elsewhere within the lease TTL + 5 s with nothing lost", async () => {
    const fake = await startFakeDiscord({ token: TOKEN, shardCount: SHARDS, maxConcurrency: 4 })
    try {
      const gateways = await startCluster(fake, 3)
      await until("an even split", async () => balanced(await ownedBy(gateways), 4), 30_000)
      expect(fake.overlaps).toEqual([])
      expect(fake.violations).toEqual([])
      const identifiesBefore = fake.identifies.length
      expect(identifiesBefore).toBe(SHARDS)

      const traffic = load(fake)
      await sleep(1_000)
      const victim = gateways[0]!
      const orphans = (await ownedBy([victim]))[0]!
      const killedAt = Date.now()
      await victim.kill("SIGKILL")
      const survivors = gateways.slice(1)
      await until("the orphans run again", async () => {
        const owned = (await ownedBy(survivors)).flat()
        return orphans.every((s) => owned.includes(s)) && fake.readyShards().length === SHARDS
      }, (LEASE_TTL_S + 15) * 1000)
      const takeoverMs = Date.now() - killedAt
      await sleep(1_000)
      traffic.stop()

      const { lost, duplicates } = await allDelivered(traffic.sent)
      expect(lost).toEqual([])
      // RESUMEd from the shard store: no identify spent on the orphans.
      expect(fake.identifies.length).toBe(identifiesBefore)
      expect(fake.overlaps).toEqual([])
      expect(takeoverMs).toBeLessThan((LEASE_TTL_S + 5) * 1000)
      console.log(`takeover of ${orphans.length} shards: ${takeoverMs} ms after SIGKILL; ${duplicates} duplicate(s) of ${traffic.sent.length}`)
    } finally {
      await fake.close()
    }
  }, 120_000)

  it("a fourth process joining under load gets 3 shards by live handoff (0 lost, 0 identifies); a rolling restart of all four loses nothing and identifies nothing", async () => {
    const fake = await startFakeDiscord({ token: TOKEN, shardCount: SHARDS, maxConcurrency: 4 })
    try {
      const gateways = await startCluster(fake, 3)
      await until("an even split", async () => balanced(await ownedBy(gateways), 4), 30_000)
      const identifies = fake.identifies.length
      const traffic = load(fake)
      const commands = commandLoad()
      await sleep(500)

      const joinedAt = Date.now()
      gateways.push(procs.track(spawnGateway({ env: env(fake) })))
      await until("3 shards each", async () => balanced(await ownedBy(gateways), 3), 60_000)
      const rebalanceMs = Date.now() - joinedAt
      await until("every shard READY", () => fake.readyShards().length === SHARDS)
      expect(fake.identifies.length).toBe(identifies)

      // Rolling restart: one by one, SIGTERM then start again, waiting for the cluster to settle.
      const rollingStart = Date.now()
      for (let i = 0; i < gateways.length; i++) {
        const exit = await gateways[i]!.kill("SIGTERM")
        expect(exit.code).toBe(0)
        gateways[i] = procs.track(spawnGateway({ env: env(fake) }))
        await until("3 shards each after a restart", async () => balanced(await ownedBy(gateways), 3), 60_000)
      }
      const rollingMs = Date.now() - rollingStart
      await until("every shard READY", () => fake.readyShards().length === SHARDS)
      await sleep(1_000)
      traffic.stop()
      commands.stop()

      const { lost, duplicates } = await allDelivered(traffic.sent)
      expect(lost).toEqual([])
      expect(fake.identifies.length).toBe(identifies)
      expect(fake.overlaps).toEqual([])
      expect(fake.violations).toEqual([])
      // Commands follow their shard through every handoff: each reaches Discord once, on its shard.
      await until("every command sent", () => arrivals(fake, "c-").length >= commands.expected.length, 30_000).catch(() => undefined)
      expect(arrivals(fake, "c-")).toEqual([...commands.expected].sort())
      console.log(
        `join: 3 handoffs in ${rebalanceMs} ms; rolling restart of 4: ${rollingMs} ms; ` +
          `${fake.resumes.length} resumes; ${duplicates} duplicate(s) of ${traffic.sent.length}; ${commands.expected.length} commands each sent once`
      )
    } finally {
      await fake.close()
    }
  }, 240_000)

  it("a member frozen (SIGSTOP) for twice the lease TTL: its shards move, no two connections of a shard ever run at once, and it publishes nothing after it lost its leases", async () => {
    // A short heartbeat, so the fake (like Discord) stops counting a frozen process's sockets as live.
    const fake = await startFakeDiscord({ token: TOKEN, shardCount: SHARDS, maxConcurrency: 4, heartbeatIntervalMs: 2_000 })
    try {
      const gateways = await startCluster(fake, 3)
      await until("an even split", async () => balanced(await ownedBy(gateways), 4), 30_000)
      const frozen = gateways[0]!
      const itsShards = (await ownedBy([frozen]))[0]!
      // Which connection each marker went to: the frozen process's own are the ones to watch.
      const itsConnections = new Set(itsShards.map((s) => fake.sessionOf(s)?.connectionId))
      const sentTo = new Map<string, number | undefined>()
      const traffic = load(fake)
      const watch = setInterval(() => {
        for (const m of traffic.sent) if (!sentTo.has(m)) sentTo.set(m, fake.sessionOf(Number(m.slice(2)) % SHARDS)?.connectionId)
      }, 5)
      await sleep(1_000)
      frozen.child.kill("SIGSTOP")
      const stoppedAt = Date.now()
      await until("the others run every shard", async () => {
        const owned = (await ownedBy(gateways.slice(1))).flat()
        return new Set(owned).size === SHARDS && fake.readyShards().length === SHARDS
      }, (LEASE_TTL_S + 20) * 1000)
      await sleep(Math.max(0, 2 * LEASE_TTL_S * 1000 - (Date.now() - stoppedAt)))
      const wokeAt = (await client.time())[0]
      frozen.child.kill("SIGCONT")
      // It finds its leases gone, stays a member, and gets its share back by handoff.
      await until("an even split again", async () => balanced(await ownedBy(gateways), 4), 60_000)
      await sleep(1_000)
      traffic.stop()
      clearInterval(watch)

      expect(fake.overlaps).toEqual([])
      // Entries Redis took after the wake-up that carry markers read by the frozen process's old
      // connections: only it could have published those then (the new owners replayed them long before).
      const entries = await client.xrange("MESSAGE_CREATE", "-", "+")
      const stale = entries.filter(([id, fields]) => {
        const marker = (JSON.parse(fields[fields.indexOf("data") + 1]!) as { marker: string }).marker
        return Number(id.split("-")[0]) >= Number(wokeAt) * 1000 && itsConnections.has(sentTo.get(marker))
      })
      expect(stale).toEqual([])
      // The shards it never ran lost nothing.
      const others = traffic.sent.filter((m) => !itsShards.includes(Number(m.slice(2)) % SHARDS))
      const { lost } = await allDelivered(others)
      expect(lost).toEqual([])
      expect(frozen.child.exitCode).toBe(null)
      console.log(`sigstop: ${traffic.sent.length} markers, ${stale.length} stale publishes, 0 overlaps; ${itsShards.length} shards moved and came back`)
    } finally {
      await fake.close()
    }
  }, 180_000)
})
