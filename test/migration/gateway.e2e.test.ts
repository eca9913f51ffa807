// Migration from the original Go gateway, end to end: the built daemon run the way its users run
// it (its README's config file and environment, verbatim, and its flags) against the fake Discord,
// and a consumer built on @spectacles/brokers (the npm package those users' bots are written
// with) receiving events from Redis and from AMQP and sending commands in the Go shape.
import * as amqp from "amqplib"
import { writeFileSync } from "node:fs"
import { createRequire } from "node:module"
import { join } from "node:path"
import { Redis } from "ioredis"
import { afterEach, beforeEach, describe, expect, it } from "vitest"
import { Amqp as SpectaclesAmqp, Redis as SpectaclesRedis } from "@spectacles/brokers"
import { inboxQueue, sendQueue } from "../../src/Commands/AmqpCommandLink.ts"
import { inboxStream, SEND_STREAM } from "../../src/Commands/RedisNames.ts"
import { type FakeDiscord, startFakeDiscord } from "../fake-discord/FakeDiscord.ts"
import { AMQP_URL, freePort, REDIS_URL, serviceAvailable, unique } from "../brokers/support.ts"
import { arrivals, guildOn, logLines, membersD, pollUntil, presenceD, redisDatabase, sleep } from "../commands/support.ts"
import { freshDir, reaper, spawnGateway } from "../support/gateway.ts"
import { GO_CONFIG_FILE, GO_DOCKER_ENV, GO_PRESENCE_EXAMPLE } from "./goDocs.ts"
import { goRaw, goStdoutEvent } from "./goWire.ts"

const redisUp = await serviceAvailable("Redis", REDIS_URL)
const amqpUp = await serviceAvailable("RabbitMQ", AMQP_URL)

// A Redis database of its own: the SEND stream is shared by every group in a database, and other
// tests' gateways would route this file's commands (and this file's gateways theirs).
const DB = 9
const redisUrl = new URL(redisDatabase(REDIS_URL, DB))
/** The Go documentation's form: host:port/db, no scheme. */
const SCHEMELESS_REDIS = `${redisUrl.host}${redisUrl.pathname}`

// @spectacles/brokers brings its own ioredis (4.x); its Redis broker is built on that.
const brokersRequire = createRequire(createRequire(import.meta.url).resolve("@spectacles/brokers"))
const SpectaclesIORedis = brokersRequire("ioredis") as new(url: string) => { disconnect: () => void; quit: () => Promise<unknown> }

const procs = reaper()
let fake: FakeDiscord
let group: string
const cleanups: Array<() => Promise<unknown>> = []

beforeEach(async () => {
  fake = await startFakeDiscord({ token: "migration-e2e-token", shardCount: 2, maxConcurrency: 2, guildsPerShard: 2 })
  group = unique("migration")
})
afterEach(async () => {
  await procs.killAll()
  await fake.close()
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined)
})

/** What the Go README's Docker example and every test share: the fake Discord's address and token. */
const fakeEnv = () => ({ DISCORD_TOKEN: fake.token, DISCORD_API_PROTOCOL: "http", DISCORD_API_HOST: fake.host })

const marker = (text: string) => ({ id: text, content: text, channel_id: "1", author: { id: "2", username: "go" } })

describe("the Go gateway's documented examples, against the fake Discord", () => {
  it("its Docker environment: GUILD,GUILD_MESSAGES identifies with 513 and MESSAGE_CREATE reaches stdout", async () => {
    const gateway = procs.track(spawnGateway({ env: { ...GO_DOCKER_ENV, ...fakeEnv(), DISCORD_SHARD_COUNT: "2" } }))
    await fake.waitFor(() => fake.readyShards().length === 2, 30_000, "2 shards ready")
    expect(fake.identifies.map((i) => i.intents)).toEqual([513, 513])
    fake.dispatch(1, "MESSAGE_CREATE", marker("docker-env"))
    fake.dispatch(1, "TYPING_START", { channel_id: "1" }) // not in DISCORD_EVENTS
    await gateway.waitForLines((lines) => lines.some((l) => l.includes("docker-env")))
    expect(gateway.lines.map((l) => JSON.parse(l) as { event: string }).map((e) => e.event)).toEqual(["MESSAGE_CREATE"])
    expect(logLines(gateway).filter((l) => l.level === "WARN").map((l) => l.message)).toEqual([
      `DISCORD_INTENTS: "GUILD" is an old name for the intent GUILDS; it is read as GUILDS (write GUILDS to silence this warning)`
    ])
    // A command on stdin in the Go gateway's framing: MessagePack {event: "SEND", data: <JSON text>}.
    const send = JSON.stringify({ guild_id: guildOn(1, 2, 3), packet: { op: 8, d: membersD(guildOn(1, 2, 3), "go-stdin") } })
    gateway.child.stdin!.write(goStdoutEvent("SEND", send))
    await fake.waitFor(() => arrivals(fake, "go-stdin").length >= 1, 15_000, "the stdin command")
    expect(arrivals(fake, "go-stdin")).toEqual(["go-stdin@1"])
    expect((await gateway.kill("SIGTERM")).code).toBe(0)
  })

  it.skipIf(!redisUp)("its config file, by -config and -loglevel, with the token and events from the environment", async () => {
    const cwd = freshDir()
    writeFileSync(join(cwd, "spectacles.toml"), GO_CONFIG_FILE)
    const metricsPort = await freePort()
    const redis = new Redis(redisUrl.toString(), { maxRetriesPerRequest: 1 })
    cleanups.push(() => redis.quit())
    const start = await redis.time()
    const since = `${Number(start[0]) * 1000 + Math.floor(Number(start[1]) / 1000)}-0`
    const gateway = procs.track(spawnGateway({
      cwd,
      args: ["-config", "spectacles.toml", "-loglevel", "info"],
      env: {
        ...fakeEnv(),
        DISCORD_EVENTS: "GUILD_CREATE,MESSAGE_CREATE",
        // The file's own addresses point at production services: these few are this machine's.
        PROMETHEUS_ADDRESS: `127.0.0.1:${metricsPort}`,
        REDIS_URL: SCHEMELESS_REDIS,
        BROKER_GROUP: group,
        SHARD_STORE_PREFIX: `${group}:`
      }
    }))
    cleanups.push(() => redis.del(`${group}:0`, `${group}:1`))
    await fake.waitFor(() => fake.readyShards().length === 2, 30_000, "2 shards ready")
    // intents = [] sends none; [shards] count = 2, ids = [0, 1]; [presence] is empty.
    expect(fake.identifies.map((i) => [i.shardId, i.shardCount, i.intents]).sort()).toEqual([[0, 2, 0], [1, 2, 0]])
    expect(fake.identifies.every((i) => i.presence === undefined || i.presence === null)).toBe(true)
    fake.dispatch(0, "MESSAGE_CREATE", marker(`${group}-file`))
    // Events land on the Redis streams named after them (the file's broker), as JSON text.
    await pollUntil("MESSAGE_CREATE on Redis", async () => {
      const entries = await redis.xrange("MESSAGE_CREATE", since, "+")
      return entries.some(([, fields]) => fields[1]?.includes(`${group}-file`) === true)
    }, 15_000)
    const guildCreates = await redis.xrange("GUILD_CREATE", since, "+")
    expect(guildCreates.length).toBeGreaterThanOrEqual(4)
    const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text()
    expect(metrics).toContain("gateway_events_published_total")
    expect(logLines(gateway).filter((l) => l.level === "WARN")).toEqual([])
    expect((await gateway.kill("SIGTERM")).code).toBe(0)
  })

  it("its example presence: [presence.game] is sent as the activity", async () => {
    const cwd = freshDir()
    writeFileSync(join(cwd, "gateway.toml"), GO_PRESENCE_EXAMPLE)
    const gateway = procs.track(spawnGateway({ cwd, env: { ...fakeEnv(), DISCORD_EVENTS: "MESSAGE_CREATE", DISCORD_SHARD_COUNT: "1" } }))
    await fake.waitFor(() => fake.readyShards().length === 1, 30_000, "1 shard ready")
    expect(fake.identifies[0]!.presence).toEqual({ since: null, activities: [{ name: "test", type: 0 }], status: "online", afk: false })
    await gateway.waitForLog(/is the old spelling of one activity/)
    expect((await gateway.kill("SIGTERM")).code).toBe(0)
  })
})

/** Its SEND packet, as a Go client wrote it: MessagePack raw of json.Marshal({guild_id, packet}). */
const goClientBytes = (guildId: string, op: number, d: unknown) => goRaw(JSON.stringify({ guild_id: guildId, packet: { op, d } }))

describe.skipIf(!redisUp)("a @spectacles/brokers consumer on Redis", () => {
  it("receives events as objects (msgpack) and sends Go-shaped commands that reach Discord", async () => {
    const gateway = procs.track(spawnGateway({
      env: {
        ...fakeEnv(),
        DISCORD_EVENTS: "MESSAGE_CREATE",
        DISCORD_SHARD_COUNT: "2",
        BROKER_TYPE: "redis",
        BROKER_ENCODING: "msgpack",
        REDIS_URL: SCHEMELESS_REDIS,
        BROKER_GROUP: group,
        SHARD_STORE_PREFIX: `${group}:`
      }
    }))
    const plain = new Redis(redisUrl.toString(), { maxRetriesPerRequest: 1 })
    cleanups.push(() => plain.quit())
    cleanups.push(async () => {
      await plain.xgroup("DESTROY", SEND_STREAM, group)
      await plain.xgroup("DESTROY", "MESSAGE_CREATE", group)
      await plain.del(inboxStream(group, 0), inboxStream(group, 1))
    })
    await fake.waitFor(() => fake.readyShards().length === 2, 30_000, "2 shards ready")
    await gateway.waitForLog(/reading commands from Redis stream SEND/)

    // The consumer group starts at the stream's end: older entries in this database may be JSON
    // from other tests, which a MessagePack consumer cannot read. (Its own XGROUP CREATE then
    // finds the group and goes on.)
    await plain.xgroup("CREATE", "MESSAGE_CREATE", group, "$", "MKSTREAM")
    const connection = new SpectaclesIORedis(redisUrl.toString())
    const bot = new SpectaclesRedis(group, connection as never, { blockInterval: 500 })
    cleanups.push(async () => bot.disconnect())
    const errors: Array<unknown> = []
    bot.on("error", (error: unknown) => void errors.push(error))
    const received: Array<unknown> = []
    bot.on("MESSAGE_CREATE", (data: unknown, options: { ack: () => Promise<void> }) => {
      received.push(data)
      void options.ack()
    })
    await bot.subscribe(["MESSAGE_CREATE"])
    fake.dispatch(0, "MESSAGE_CREATE", marker(`${group}-r0`))
    fake.dispatch(1, "MESSAGE_CREATE", marker(`${group}-r1`))
    await pollUntil("both events at the consumer", () =>
      [`${group}-r0`, `${group}-r1`].every((id) => received.some((d) => (d as { id?: string }).id === id)), 15_000)
    expect(received.find((d) => (d as { id?: string }).id === `${group}-r1`)).toEqual(marker(`${group}-r1`))
    expect(errors).toEqual([])

    // Commands on SEND: the Go client's bytes, and the same command as a @spectacles/brokers object.
    await bot.publish("SEND", goClientBytes(guildOn(1, 2, 5), 8, membersD(guildOn(1, 2, 5), "go-redis-bytes")))
    await bot.publish("SEND", { guild_id: guildOn(0, 2, 6), packet: { op: 8, d: membersD(guildOn(0, 2, 6), "go-redis-object") } })
    await bot.publish("SEND", { packet: { op: 3, d: presenceD("go-redis-all") } })
    const expected = ["go-redis-bytes@1", "go-redis-object@0", "go-redis-all@0", "go-redis-all@1"].sort()
    await fake.waitFor(() => arrivals(fake, "go-redis").length >= expected.length, 15_000, "the commands")
    await sleep(300)
    expect(arrivals(fake, "go-redis")).toEqual(expected)
    expect((await gateway.kill("SIGTERM")).code).toBe(0)
  })
})

describe.skipIf(!amqpUp)("a @spectacles/brokers consumer on AMQP", () => {
  it("receives the Go gateway's exact bodies (msgpack-json) and sends Go-shaped commands that reach Discord", async () => {
    const admin = await amqp.connect(AMQP_URL)
    const channel = await admin.createChannel()
    cleanups.push(() => admin.close())
    cleanups.push(async () => {
      for (const queue of [sendQueue(group), inboxQueue(group, 0), inboxQueue(group, 1), `${group}:MESSAGE_CREATE`]) await channel.deleteQueue(queue)
      await channel.deleteExchange(group)
    })
    const gateway = procs.track(spawnGateway({
      env: {
        ...fakeEnv(),
        DISCORD_EVENTS: "MESSAGE_CREATE",
        DISCORD_SHARD_COUNT: "2",
        BROKER_TYPE: "amqp",
        BROKER_ENCODING: "msgpack-json",
        AMQP_URL,
        BROKER_GROUP: group
      }
    }))
    await fake.waitFor(() => fake.readyShards().length === 2, 30_000, "2 shards ready")
    await gateway.waitForLog(/reading commands from AMQP queue/)
    // A queue of the test's own on the same key, to see the raw bodies.
    const tap = (await channel.assertQueue("", { exclusive: true })).queue
    await channel.bindQueue(tap, group, "MESSAGE_CREATE")

    const bot = new SpectaclesAmqp(group)
    // Its connect() takes the address without the scheme and adds amqp:// itself.
    const connection = await bot.connect(AMQP_URL.replace(/^amqp:\/\//, ""))
    cleanups.push(() => (connection as unknown as { close: () => Promise<void> }).close())
    const received: Array<unknown> = []
    bot.on("MESSAGE_CREATE", (data: unknown, options: { ack: () => void }) => {
      received.push(data)
      options.ack()
    })
    await bot.subscribe(["MESSAGE_CREATE"])
    fake.dispatch(0, "MESSAGE_CREATE", marker(`${group}-a0`))
    fake.dispatch(1, "MESSAGE_CREATE", marker(`${group}-a1`))
    await pollUntil("both events at the consumer", () => received.length >= 2, 15_000)
    // As from the Go gateway: the body decodes to the JSON text of d, which the bot parses.
    expect(received.every((d) => typeof d === "string")).toBe(true)
    const parsed = received.map((d) => JSON.parse(d as string) as { id: string })
    expect(parsed.sort((a, b) => a.id.localeCompare(b.id))).toEqual([marker(`${group}-a0`), marker(`${group}-a1`)])
    // Byte for byte what the Go gateway published: the old-spec raw (str16 here) of Discord's JSON text.
    const bodies: Array<Buffer> = []
    await pollUntil("the raw bodies", async () => {
      const message = await channel.get(tap, { noAck: true })
      if (message !== false) bodies.push(message.content)
      return bodies.length >= 2
    }, 10_000)
    const sent = [`${group}-a0`, `${group}-a1`].map((id) => goRaw(JSON.stringify(marker(id))))
    expect(bodies.map((b) => b.toString("hex")).sort()).toEqual(sent.map((b) => b.toString("hex")).sort())
    expect(bodies.every((b) => b[0] === 0xda)).toBe(true)

    bot.publish("SEND", goClientBytes(guildOn(1, 2, 7), 8, membersD(guildOn(1, 2, 7), "go-amqp-bytes")))
    bot.publish("SEND", { guild_id: guildOn(0, 2, 8), packet: { op: 8, d: membersD(guildOn(0, 2, 8), "go-amqp-object") } })
    const expected = ["go-amqp-bytes@1", "go-amqp-object@0"]
    await fake.waitFor(() => arrivals(fake, "go-amqp").length >= expected.length, 15_000, "the commands")
    await sleep(300)
    expect(arrivals(fake, "go-amqp")).toEqual(expected)
    expect((await gateway.kill("SIGTERM")).code).toBe(0)
  })

  it("uses an exchange the old Go gateway declared (auto_delete) as it is, with one warning, instead of stopping", async () => {
    const admin = await amqp.connect(AMQP_URL)
    const channel = await admin.createChannel()
    cleanups.push(() => admin.close())
    cleanups.push(async () => {
      for (const queue of [sendQueue(group), inboxQueue(group, 0), inboxQueue(group, 1), `${group}:MESSAGE_CREATE`]) await channel.deleteQueue(queue)
      await channel.deleteExchange(group)
    })
    // What spec-tacles/go's AMQP broker declared before March 2022: durable, auto-delete.
    await channel.assertExchange(group, "direct", { durable: true, autoDelete: true })
    const gateway = procs.track(spawnGateway({
      env: { ...fakeEnv(), DISCORD_EVENTS: "MESSAGE_CREATE", DISCORD_SHARD_COUNT: "2", BROKER_TYPE: "amqp", AMQP_URL, BROKER_GROUP: group }
    }))
    await fake.waitFor(() => fake.readyShards().length === 2, 30_000, "2 shards ready")
    await gateway.waitForLog(/reading commands from AMQP queue/)
    fake.dispatch(1, "MESSAGE_CREATE", marker(`${group}-old`))
    let body: Buffer | undefined
    await pollUntil("the event in its queue", async () => {
      const message = await channel.get(`${group}:MESSAGE_CREATE`, { noAck: true })
      if (message !== false) body = message.content
      return body !== undefined
    }, 15_000)
    expect(JSON.parse(body!.toString())).toEqual(marker(`${group}-old`))
    // Commands still flow through the same exchange.
    channel.publish(group, "SEND", Buffer.from(JSON.stringify({ guild_id: guildOn(1, 2, 9), packet: { op: 3, d: presenceD("go-old-exchange") } })))
    await fake.waitFor(() => arrivals(fake, "go-old-exchange").length >= 1, 15_000, "the command")
    // Still the old exchange, untouched; the difference was logged once for both connections.
    expect(await channel.checkExchange(group)).toBeDefined()
    const warnings = logLines(gateway).filter((l) => l.level === "WARN").map((l) => l.message)
    expect(warnings).toEqual([expect.stringContaining(`RabbitMQ exchange "${group}" already exists with other settings`)])
    expect(warnings[0]).toContain("inequivalent arg 'auto_delete'")
    expect((await gateway.kill("SIGTERM")).code).toBe(0)
  })
})
