// Protocol behaviour of the fake Discord, exercised with a raw `ws` client.
import { Buffer } from "node:buffer"
import { spawn } from "node:child_process"
import zlib from "node:zlib"
import { afterEach, describe, expect, it } from "vitest"
import WebSocket from "ws"
import { FakeDiscord, startFakeDiscord } from "./fake-discord/FakeDiscord.ts"
import type { FakeDiscordOptions } from "./fake-discord/FakeDiscord.ts"
import { tagFrame } from "./fake-discord/delivery.ts"
import { frameText } from "./fake-discord/protocol.ts"
import { pidOfLocalPort } from "./support/socketOwner.ts"
import { makeGuildCreate, makeMessageCreate } from "./fake-discord/events.ts"
import { guildIdForShard, shardOf } from "./fake-discord/snowflake.ts"

interface Payload {
  readonly op: number
  readonly d: any
  readonly s: number | null
  readonly t: string | null
}

const TOKEN = "fake-token"
const SYNC_TAIL = Buffer.from([0x00, 0x00, 0xff, 0xff])

/** Minimal gateway client: decodes (and decompresses) every message in order. */
class Client {
  readonly ws: WebSocket
  readonly messages: Array<Payload> = []
  readonly texts: Array<string> = []
  readonly binaryFrames: Array<Buffer> = []
  readonly closed: Promise<{ code: number; reason: string }>
  #cursor = 0
  #listeners = new Set<() => void>()
  #chain: Promise<void> = Promise.resolve()
  #pending: Array<Buffer> = []
  #inflate: zlib.Inflate | zlib.ZstdDecompress | undefined
  #out: Array<Buffer> = []
  #closeInfo: { code: number; reason: string } | undefined

  constructor(url: string, compress?: "zlib-stream" | "zstd-stream") {
    this.ws = new WebSocket(url)
    this.ws.on("error", () => {})
    if (compress === "zlib-stream") this.#inflate = zlib.createInflate({ flush: zlib.constants.Z_SYNC_FLUSH })
    if (compress === "zstd-stream") this.#inflate = zlib.createZstdDecompress()
    this.#inflate?.on("data", (chunk: Buffer) => this.#out.push(chunk))
    this.ws.on("message", (data: Buffer, isBinary: boolean) => {
      if (!isBinary) return this.#push(data.toString())
      this.binaryFrames.push(data)
      this.#chain = this.#chain.then(() => this.#decode(compress!, data))
    })
    this.closed = new Promise((resolve) => {
      this.ws.on("close", (code, reason) => {
        // Let pending decompression finish so messages before the close are observable.
        void this.#chain.then(() => {
          this.#closeInfo = { code, reason: reason.toString() }
          resolve(this.#closeInfo)
          this.#notify()
        })
      })
    })
  }

  static async open(fake: FakeDiscord, query = "?v=10&encoding=json", compress?: "zlib-stream" | "zstd-stream", base?: string): Promise<Client> {
    const client = new Client(`${base ?? fake.gatewayUrl}/${query}${compress ? `&compress=${compress}` : ""}`, compress)
    await new Promise<void>((resolve, reject) => {
      client.ws.once("open", () => resolve())
      client.ws.once("error", reject)
    })
    return client
  }

  async #decode(kind: "zlib-stream" | "zstd-stream", frame: Buffer): Promise<void> {
    const inflate = this.#inflate!
    if (kind === "zlib-stream") {
      this.#pending.push(frame)
      if (!frame.subarray(-4).equals(SYNC_TAIL)) return
    } else this.#pending.push(frame)
    const input = Buffer.concat(this.#pending)
    this.#pending = []
    await new Promise<void>((resolve) => inflate.write(input, () => resolve()))
    await new Promise<void>((resolve) => setImmediate(resolve))
    const text = Buffer.concat(this.#out).toString()
    this.#out = []
    this.#push(text)
  }

  #push(text: string): void {
    this.texts.push(text)
    this.messages.push(JSON.parse(text) as Payload)
    this.#notify()
  }

  #notify(): void {
    for (const listener of [...this.#listeners]) listener()
  }

  send(op: number, d: unknown): void {
    this.ws.send(JSON.stringify({ op, d }))
  }

  identify(shard: [number, number] = [0, 1], extra: Record<string, unknown> = {}): void {
    this.send(2, { token: TOKEN, properties: { os: "linux", browser: "test", device: "test" }, intents: 513, shard, ...extra })
  }

  /** Next message (after the previous `next` result) matching `match`. */
  next(match: (p: Payload) => boolean = () => true, timeoutMs = 5000): Promise<Payload> {
    return new Promise((resolve, reject) => {
      const check = (): boolean => {
        while (this.#cursor < this.messages.length) {
          const message = this.messages[this.#cursor++]!
          if (match(message)) {
            this.#listeners.delete(check)
            clearTimeout(timer)
            resolve(message)
            return true
          }
        }
        if (this.#closeInfo !== undefined) {
          this.#listeners.delete(check)
          clearTimeout(timer)
          reject(new Error(`closed ${this.#closeInfo.code} ${this.#closeInfo.reason} while waiting`))
          return true
        }
        return false
      }
      const timer = setTimeout(() => {
        this.#listeners.delete(check)
        reject(new Error("timed out waiting for a message"))
      }, timeoutMs)
      if (!check()) this.#listeners.add(check)
    })
  }

  dispatch(t: string, timeoutMs?: number): Promise<Payload> {
    return this.next((p) => p.op === 0 && p.t === t, timeoutMs)
  }

  /** Identify and wait for READY plus every initial GUILD_CREATE. */
  async ready(shard: [number, number] = [0, 1], guilds = 2): Promise<Payload> {
    await this.next((p) => p.op === 10)
    this.identify(shard)
    const ready = await this.dispatch("READY")
    for (let i = 0; i < guilds; i++) await this.dispatch("GUILD_CREATE")
    return ready
  }

  get lastSeq(): number | null {
    let seq: number | null = null
    for (const m of this.messages) if (m.s !== null) seq = m.s
    return seq
  }
}

const fakes: Array<FakeDiscord> = []
const clients: Array<Client> = []
async function start(options: FakeDiscordOptions = {}): Promise<FakeDiscord> {
  const fake = await startFakeDiscord(options)
  fakes.push(fake)
  return fake
}
async function open(fake: FakeDiscord, query?: string, compress?: "zlib-stream" | "zstd-stream", base?: string): Promise<Client> {
  const client = await Client.open(fake, query, compress, base)
  clients.push(client)
  return client
}

afterEach(async () => {
  for (const client of clients.splice(0)) client.ws.terminate()
  for (const fake of fakes.splice(0)) await fake.close()
})

const getJson = async (url: string, token?: string): Promise<{ status: number; body: any; headers: Headers }> => {
  const res = await fetch(url, token === undefined ? {} : { headers: { authorization: `Bot ${token}` } })
  return { status: res.status, body: await res.json(), headers: res.headers }
}

describe("REST", () => {
  it("serves /gateway/bot with auth, /gateway without, and records calls", async () => {
    const fake = await start({ shardCount: 3, maxConcurrency: 2 })
    const unauthorized = await getJson(`${fake.url}/api/v10/gateway/bot`)
    expect(unauthorized.status).toBe(401)
    expect(unauthorized.body).toEqual({ message: "401: Unauthorized", code: 0 })
    expect((await getJson(`${fake.url}/api/v10/gateway/bot`, "wrong")).status).toBe(401)

    const ok = await getJson(`${fake.url}/api/v9/gateway/bot`, TOKEN)
    expect(ok.status).toBe(200)
    expect(ok.body.url).toBe(fake.gatewayUrl)
    expect(ok.body.shards).toBe(3)
    expect(ok.body.session_start_limit).toMatchObject({ total: 1000, remaining: 1000, max_concurrency: 2 })
    expect(ok.body.session_start_limit.reset_after).toBeGreaterThan(86_000_000)

    expect((await getJson(`${fake.url}/api/v10/gateway`)).body).toEqual({ url: fake.gatewayUrl })
    expect((await getJson(`${fake.url}/api/v10/users/@me`, TOKEN)).status).toBe(404)
    expect(fake.restCalls.map((c) => [c.path, c.version, c.status, c.authorized])).toEqual([
      ["/api/v10/gateway/bot", 10, 401, false],
      ["/api/v10/gateway/bot", 10, 401, false],
      ["/api/v9/gateway/bot", 9, 200, true],
      ["/api/v10/gateway", 10, 200, false],
      ["/api/v10/users/@me", 10, 404, true]
    ])
  })

  it("injects 429 and 5xx failures a given number of times", async () => {
    const fake = await start({ restFailures: { status: 429, times: 2, retryAfterSec: 1.5 } })
    const limited = await getJson(`${fake.url}/api/v10/gateway/bot`, TOKEN)
    expect(limited.status).toBe(429)
    expect(limited.body).toEqual({ message: "You are being rate limited.", retry_after: 1.5, global: false })
    expect(limited.headers.get("retry-after")).toBe("2")
    expect((await getJson(`${fake.url}/api/v10/gateway/bot`, TOKEN)).status).toBe(429)
    expect((await getJson(`${fake.url}/api/v10/gateway/bot`, TOKEN)).status).toBe(200)
    fake.setRestFailures({ status: 502, times: 1 })
    expect((await getJson(`${fake.url}/api/v10/gateway/bot`, TOKEN)).status).toBe(502)
    expect((await getJson(`${fake.url}/api/v10/gateway/bot`, TOKEN)).status).toBe(200)
  })

  it("decrements session_start_limit.remaining per identify", async () => {
    const fake = await start({ sessionStartLimit: { total: 5, remaining: 3 } })
    const client = await open(fake)
    await client.ready()
    const body = (await getJson(`${fake.url}/api/v10/gateway/bot`, TOKEN)).body
    expect(body.session_start_limit).toMatchObject({ total: 5, remaining: 2 })
  })
})

describe("handshake", () => {
  it("sends HELLO first, ACKs heartbeats and uses Discord's key order", async () => {
    const fake = await start({ heartbeatIntervalMs: 45_000 })
    const client = await open(fake)
    const hello = await client.next()
    expect(hello.op).toBe(10)
    expect(hello.d.heartbeat_interval).toBe(45_000)
    expect(client.texts[0]).toMatch(/^\{"t":null,"s":null,"op":10,"d":\{/)
    client.send(1, null)
    expect((await client.next()).op).toBe(11)
    expect(client.texts[1]).toBe('{"t":null,"s":null,"op":11,"d":null}')
    await fake.waitFor(() => fake.heartbeats.length === 1)
    expect(fake.heartbeats[0]).toMatchObject({ d: null, shardId: undefined, acked: true })
  })

  it("identifies: READY, then one GUILD_CREATE per guild routed to the shard", async () => {
    const fake = await start({ shardCount: 4, maxConcurrency: 4, guildsPerShard: 3 })
    const client = await open(fake)
    await client.next()
    client.identify([2, 4], { presence: { status: "idle", since: null, activities: [], afk: false } })
    const ready = await client.dispatch("READY")
    expect(ready.s).toBe(1)
    expect(client.texts.find((text) => text.includes('"READY"'))).toMatch(/^\{"t":"READY","s":1,"op":0,"d":\{/)
    expect(ready.d).toMatchObject({ v: 10, user: { username: "fake-bot", bot: true }, shard: [2, 4], application: { flags: 0 } })
    expect(ready.d.session_id).toMatch(/^[0-9a-f]{32}$/)
    expect(ready.d.resume_gateway_url).not.toBe(fake.gatewayUrl)
    expect(ready.d.guilds).toHaveLength(3)
    for (const guild of ready.d.guilds) {
      expect(guild.unavailable).toBe(true)
      expect(Number((BigInt(guild.id) >> 22n) % 4n)).toBe(2)
    }
    for (let i = 0; i < 3; i++) {
      const create = await client.dispatch("GUILD_CREATE")
      expect(create.s).toBe(2 + i)
      expect(create.d.id).toBe(ready.d.guilds[i].id)
      expect(create.d.channels.length).toBeGreaterThan(0)
      expect(create.d.members.length).toBe(25)
      expect(create.d.roles[0].id).toBe(create.d.id)
    }
    expect(fake.identifies).toHaveLength(1)
    expect(fake.identifies[0]).toMatchObject({ shardId: 2, shardCount: 4, bucket: 2, intents: 513, outcome: "ready", presence: { status: "idle" } })
    expect(fake.counters.identifies).toBe(1)
    expect(fake.readyShards()).toEqual([2])
    expect(fake.sessionOf(2)).toMatchObject({ sessionId: ready.d.session_id, seq: 4, connected: true })
  })

  const closeCases: Array<[string, (c: Client) => void, number, FakeDiscordOptions?]> = [
    ["bad token", (c) => c.send(2, { token: "nope", properties: {}, intents: 1 }), 4004],
    ["invalid shard", (c) => c.identify([3, 3]), 4010],
    ["invalid shard shape", (c) => c.identify([1] as unknown as [number, number]), 4010],
    ["undocumented intent bit", (c) => c.identify([0, 1], { intents: 1 << 18 }), 4013],
    ["missing intents", (c) => c.send(2, { token: TOKEN, properties: {} }), 4013],
    ["disallowed privileged intent", (c) => c.identify([0, 1], { intents: 513 | 32768 }), 4014, { allowedPrivilegedIntents: 2 }],
    ["command before identify", (c) => c.send(3, { since: null, activities: [], status: "online", afk: false }), 4003],
    ["unknown opcode", (c) => c.send(5, null), 4001],
    ["invalid JSON", (c) => c.ws.send("{nope"), 4002],
    ["payload over 4096 bytes", (c) => c.send(1, "x".repeat(4100)), 4002]
  ]
  for (const [name, act, code, options] of closeCases) {
    it(`closes with ${code} on ${name}`, async () => {
      const fake = await start(options)
      const client = await open(fake)
      await client.next()
      act(client)
      expect((await client.closed).code).toBe(code)
      expect(fake.closes).toEqual([expect.objectContaining({ by: "server", code })])
    })
  }

  it("closes with 4005 on a second identify", async () => {
    const fake = await start({ enforceIdentifyLimit: false })
    const client = await open(fake)
    await client.ready()
    client.identify()
    expect((await client.closed).code).toBe(4005)
  })

  it("rejects bad query parameters", async () => {
    const fake = await start()
    expect((await (await open(fake, "?v=8&encoding=json")).closed).code).toBe(4012)
    expect((await (await open(fake, "?encoding=json")).closed).code).toBe(4012)
    expect((await (await open(fake, "?v=10&encoding=etf")).closed).code).toBe(4002)
    expect((await (await open(fake, "?v=10&encoding=json&compress=brotli")).closed).code).toBe(4002)
    expect(fake.counters.connections).toBe(4)
  })

  it("closes with 4008 after 120 payloads within a minute, counting heartbeats", async () => {
    const fake = await start()
    const client = await open(fake)
    await client.next()
    for (let i = 0; i < 121; i++) client.send(1, null)
    expect((await client.closed).code).toBe(4008)
    expect(fake.counters.rateLimitCloses).toBe(1)
    expect(fake.heartbeats).toHaveLength(120)
  })

  it("closes with 4009 when heartbeats stop, and the session cannot be resumed", async () => {
    const fake = await start({ heartbeatIntervalMs: 300 })
    const client = await open(fake)
    const ready = await client.ready()
    expect((await client.closed).code).toBe(4009)
    const again = await open(fake)
    await again.next()
    again.send(6, { token: TOKEN, session_id: ready.d.session_id, seq: 3 })
    expect((await again.next()).op).toBe(9)
    expect(fake.resumes.at(-1)?.outcome).toBe("unknown-session")
  })
})

describe("identify limits", () => {
  it("records a bucket violation and answers op 9 false", async () => {
    const fake = await start({ shardCount: 2, maxConcurrency: 1 })
    const a = await open(fake)
    await a.ready([0, 2])
    const b = await open(fake)
    await b.next()
    b.identify([1, 2])
    const invalid = await b.next()
    expect(invalid).toEqual({ t: null, s: null, op: 9, d: false })
    expect(fake.violations).toHaveLength(1)
    expect(fake.violations[0]).toMatchObject({ shardId: 1, bucket: 0, enforced: true })
    expect(fake.violations[0]!.sinceMs).toBeLessThan(5000)
    expect(fake.identifies.map((i) => i.outcome)).toEqual(["ready", "rate-limited"])
    expect(fake.counters.identifies).toBe(1)
  })

  it("lets different buckets identify together and honours the interval", async () => {
    const fake = await start({ shardCount: 4, maxConcurrency: 2, identifyIntervalMs: 300 })
    const c0 = await open(fake)
    const c1 = await open(fake)
    await Promise.all([c0.ready([0, 4]), c1.ready([1, 4])])
    await new Promise((r) => setTimeout(r, 350))
    const c2 = await open(fake)
    await c2.ready([2, 4])
    expect(fake.violations).toEqual([])
    expect(fake.readyShards()).toEqual([0, 1, 2])
  })

  it("only records violations when enforcement is off", async () => {
    const fake = await start({ shardCount: 2, enforceIdentifyLimit: false })
    const a = await open(fake)
    const b = await open(fake)
    await a.ready([0, 2])
    await b.ready([1, 2])
    expect(fake.violations).toHaveLength(1)
    expect(fake.violations[0]!.enforced).toBe(false)
  })

  it("refuses identifies once no session starts remain", async () => {
    const fake = await start({ sessionStartLimit: { total: 1000, remaining: 0 } })
    const client = await open(fake)
    await client.next()
    client.identify()
    expect(await client.next()).toMatchObject({ op: 9, d: false })
    expect(fake.identifies[0]!.outcome).toBe("session-limit")
    fake.setSessionStartLimit({ remaining: 1 })
    client.identify()
    expect((await client.dispatch("READY")).s).toBe(1)
  })
})

describe("resume", () => {
  it("replays missed dispatches in order, then RESUMED, via the resume URL", async () => {
    const fake = await start()
    const first = await open(fake)
    const ready = await first.ready()
    fake.dispatch(0, "MESSAGE_CREATE", { n: 1 })
    await first.dispatch("MESSAGE_CREATE")
    const seq = first.lastSeq!
    first.ws.terminate()
    await fake.waitFor(() => fake.readyShards().length === 0)
    expect(fake.dispatch(0, "MESSAGE_CREATE", { n: 2 })).toBe(seq + 1)
    expect(fake.dispatch(0, "MESSAGE_CREATE", { n: 3 })).toBe(seq + 2)

    const second = await open(fake, "?v=10&encoding=json", undefined, ready.d.resume_gateway_url)
    await second.next()
    second.send(6, { token: TOKEN, session_id: ready.d.session_id, seq })
    const replayed = [await second.dispatch("MESSAGE_CREATE"), await second.dispatch("MESSAGE_CREATE")]
    expect(replayed.map((p) => [p.s, p.d.n])).toEqual([[seq + 1, 2], [seq + 2, 3]])
    const resumed = await second.next()
    expect(resumed).toMatchObject({ t: "RESUMED", s: seq + 3, op: 0 })
    expect(fake.resumes).toEqual([
      expect.objectContaining({ shardId: 0, sessionId: ready.d.session_id, seq, outcome: "resumed", viaResumeUrl: true, replayed: 2 })
    ])
    expect(fake.resumes[0]!.url).toMatch(/^\/resume\/?\?v=10/)
    expect(fake.counters.resumes).toBe(1)
    expect(fake.readyShards()).toEqual([0])
    expect(fake.closes).toEqual([expect.objectContaining({ by: "client", code: 1006 })])
  })

  it("answers op 9 false for unknown sessions and 4007 for a seq from the future", async () => {
    const fake = await start()
    const first = await open(fake)
    const ready = await first.ready()
    first.ws.close(4000)
    await first.closed
    const unknown = await open(fake)
    await unknown.next()
    unknown.send(6, { token: TOKEN, session_id: "0".repeat(32), seq: 1 })
    expect(await unknown.next()).toMatchObject({ op: 9, d: false })
    const future = await open(fake)
    await future.next()
    future.send(6, { token: TOKEN, session_id: ready.d.session_id, seq: 999 })
    expect((await future.closed).code).toBe(4007)
    expect(fake.sessionOf(0)).toBeUndefined()
    expect(fake.resumes.map((r) => r.outcome)).toEqual(["unknown-session", "invalid-seq"])
  })

  it("ends the session when the client closes with 1000", async () => {
    const fake = await start()
    const first = await open(fake)
    const ready = await first.ready()
    first.ws.close(1000)
    await first.closed
    await fake.waitFor(() => fake.closes.length === 1)
    expect(fake.closes[0]).toMatchObject({ by: "client", code: 1000, shardId: 0 })
    expect(fake.sessionOf(0)).toBeUndefined()
    const second = await open(fake)
    await second.next()
    second.send(6, { token: TOKEN, session_id: ready.d.session_id, seq: 3 })
    expect(await second.next()).toMatchObject({ op: 9, d: false })
  })

  it("expires sessions after sessionTimeoutMs and replays nothing beyond replayLimit", async () => {
    const fake = await start({ sessionTimeoutMs: 100, replayLimit: 3, identifyIntervalMs: 0 })
    const first = await open(fake)
    const ready = await first.ready()
    first.ws.terminate()
    await fake.waitFor(() => fake.sessionOf(0) === undefined, 2000)

    const other = await open(fake)
    const ready2 = await other.ready()
    for (let i = 0; i < 5; i++) fake.dispatch(0, "TYPING_START", { i })
    await other.dispatch("TYPING_START")
    other.ws.terminate()
    const late = await open(fake)
    await late.next()
    late.send(6, { token: TOKEN, session_id: ready2.d.session_id, seq: 3 })
    expect(await late.next()).toMatchObject({ op: 9, d: false })
    expect(fake.resumes.at(-1)?.outcome).toBe("replay-gap")
    expect(ready.d.session_id).not.toBe(ready2.d.session_id)
  })

  it("closeShard(4009) invalidates the session, closeShard(4000) keeps it", async () => {
    const fake = await start()
    const first = await open(fake)
    const ready = await first.ready()
    expect(fake.closeShard(0, 4000, "test")).toBe(true)
    expect(await first.closed).toEqual({ code: 4000, reason: "test" })
    const second = await open(fake, "?v=10&encoding=json", undefined, ready.d.resume_gateway_url)
    await second.next()
    second.send(6, { token: TOKEN, session_id: ready.d.session_id, seq: 3 })
    await second.dispatch("RESUMED")
    fake.closeShard(0, 4009)
    expect((await second.closed).code).toBe(4009)
    const third = await open(fake)
    await third.next()
    third.send(6, { token: TOKEN, session_id: ready.d.session_id, seq: 4 })
    expect(await third.next()).toMatchObject({ op: 9, d: false })
  })
})

describe("control API", () => {
  it("sends op 7, op 9 and op 1 on request", async () => {
    const fake = await start()
    const client = await open(fake)
    await client.ready()
    fake.sendReconnect(0)
    expect(await client.next()).toEqual({ t: null, s: null, op: 7, d: null })
    fake.requestHeartbeat(0)
    expect(await client.next()).toMatchObject({ op: 1 })
    fake.invalidateSession(0, true)
    expect(await client.next()).toMatchObject({ op: 9, d: true })
    expect(fake.sessionOf(0)).toBeDefined()
    fake.invalidateSession(0, false)
    expect(await client.next()).toMatchObject({ op: 9, d: false })
    expect(fake.sessionOf(0)).toBeUndefined()
    expect(fake.sendReconnect(5)).toBe(false)
  })

  it("dropShard cuts TCP without a close frame and keeps the session", async () => {
    const fake = await start()
    const client = await open(fake)
    await client.ready()
    fake.dropShard(0)
    expect((await client.closed).code).toBe(1006)
    expect(fake.closes).toEqual([expect.objectContaining({ by: "server", code: 1006 })])
    expect(fake.sessionOf(0)?.connected).toBe(false)
  })

  it("zombie mode stops all writes but keeps TCP open; missed dispatches replay on resume", async () => {
    const fake = await start()
    const client = await open(fake)
    const ready = await client.ready()
    fake.setZombie(0, true)
    client.send(1, 3)
    fake.dispatch(0, "MESSAGE_CREATE", { zombie: true })
    await fake.waitFor(() => fake.heartbeats.length === 1)
    await new Promise((r) => setTimeout(r, 150))
    expect(fake.heartbeats[0]).toMatchObject({ d: 3, acked: false, shardId: 0 })
    expect(client.messages).toHaveLength(4)
    expect(client.ws.readyState).toBe(WebSocket.OPEN)
    // The client gives up on the zombie: no close reply will come, so it terminates.
    client.ws.close(4000)
    await new Promise((r) => setTimeout(r, 100))
    expect(client.ws.readyState).toBe(WebSocket.CLOSING)
    client.ws.terminate()
    const again = await open(fake, "?v=10&encoding=json", undefined, ready.d.resume_gateway_url)
    await again.next()
    again.send(6, { token: TOKEN, session_id: ready.d.session_id, seq: 3 })
    expect(await again.dispatch("MESSAGE_CREATE")).toMatchObject({ s: 4, d: { zombie: true } })
    await again.dispatch("RESUMED")
  })

  it("silent mode drops ACKs but keeps dispatches flowing", async () => {
    const fake = await start()
    const client = await open(fake)
    await client.ready()
    fake.setSilent(0, true)
    client.send(1, 3)
    fake.dispatch(0, "TYPING_START", {})
    await client.dispatch("TYPING_START")
    await new Promise((r) => setTimeout(r, 50))
    expect(client.messages.some((m) => m.op === 11)).toBe(false)
    expect(fake.heartbeats[0]!.acked).toBe(false)
  })

  it("routes dispatchGuild by (guild_id >> 22) % shardCount and queues dispatches for shards without a session", async () => {
    const fake = await start({ shardCount: 2, maxConcurrency: 2 })
    expect(fake.dispatch(1, "EARLY", { hello: 1 })).toBe(-1)
    const c0 = await open(fake)
    const c1 = await open(fake)
    await c0.ready([0, 2])
    await c1.ready([1, 2])
    expect(await c1.dispatch("EARLY")).toMatchObject({ s: 4, d: { hello: 1 } })
    const guild = guildIdForShard(1, 2, 7)
    expect(fake.shardForGuild(guild)).toBe(1)
    const seq = fake.dispatchGuild(guild, "MESSAGE_CREATE", makeMessageCreate(guild, 1))
    expect(await c1.dispatch("MESSAGE_CREATE")).toMatchObject({ s: seq, d: { guild_id: guild } })
    const seqs = fake.broadcast("USER_UPDATE", { id: "1" })
    expect([...seqs.keys()].sort()).toEqual([0, 1])
    await c0.dispatch("USER_UPDATE")
    await c1.dispatch("USER_UPDATE")
  })

  it("answers op 8 with a members chunk, op 4 with VOICE_STATE_UPDATE, and rate limits all-member requests", async () => {
    const fake = await start()
    const client = await open(fake)
    const ready = await client.ready()
    const guildId = ready.d.guilds[0].id
    client.send(8, { guild_id: guildId, query: "", limit: 0, nonce: "abc" })
    const chunk = await client.dispatch("GUILD_MEMBERS_CHUNK")
    expect(chunk.d).toMatchObject({ guild_id: guildId, nonce: "abc", chunk_index: 0, chunk_count: 1 })
    client.send(8, { guild_id: guildId, user_ids: ["42", "43"], nonce: "ids" })
    expect((await client.dispatch("GUILD_MEMBERS_CHUNK")).d.members.map((m: any) => m.user.id)).toEqual(["42", "43"])
    client.send(8, { guild_id: guildId, query: "", limit: 0, nonce: "again" })
    expect((await client.dispatch("RATE_LIMITED")).d).toMatchObject({ opcode: 8, meta: { guild_id: guildId, nonce: "again" } })
    client.send(4, { guild_id: guildId, channel_id: "1", self_mute: true, self_deaf: false })
    expect((await client.dispatch("VOICE_STATE_UPDATE")).d).toMatchObject({ guild_id: guildId, channel_id: "1", self_mute: true })
    await client.dispatch("VOICE_SERVER_UPDATE")
    client.send(3, { since: null, activities: [], status: "dnd", afk: false })
    await fake.waitFor(() => fake.received.find((r) => r.op === 3))
    expect(fake.received.map((r) => r.op)).toEqual([2, 8, 8, 8, 4, 3])
    expect(fake.received.every((r) => r.shardId === 0)).toBe(true)
  })

  it("waitFor rejects on timeout", async () => {
    const fake = await start()
    await expect(fake.waitFor(() => false, 50, "never")).rejects.toThrow(/never/)
  })
})

describe("compression", () => {
  for (const engine of ["auto", "stream"] as const) {
    it(`zlib-stream (${engine}): every message ends with 00 00 ff ff, big ones span frames`, async () => {
      const fake = await start({ splitFramesOver: 1024, compressionEngine: engine, guildCreateMembers: 200 })
      const client = await open(fake, "?v=10&encoding=json", "zlib-stream")
      await client.ready()
      const guild = makeGuildCreate(guildIdForShard(0, 1, 9), { members: 500 })
      fake.dispatch(0, "GUILD_CREATE", guild)
      expect((await client.dispatch("GUILD_CREATE")).d).toEqual(guild)
      expect(client.binaryFrames.length).toBeGreaterThan(client.messages.length)
      expect(client.binaryFrames.every((f) => f.length <= 1024)).toBe(true)
      expect(client.binaryFrames.at(-1)!.subarray(-4).equals(SYNC_TAIL)).toBe(true)
      expect(client.texts.at(-1)).toMatch(/^\{"t":"GUILD_CREATE","s":4,"op":0,"d":/)
    })

    it(`zstd-stream (${engine}): one message per frame`, async () => {
      const fake = await start({ compressionEngine: engine })
      const client = await open(fake, "?v=10&encoding=json", "zstd-stream")
      await client.ready()
      for (let i = 0; i < 20; i++) fake.dispatch(0, "MESSAGE_CREATE", makeMessageCreate("1", i))
      for (let i = 0; i < 20; i++) expect((await client.dispatch("MESSAGE_CREATE")).d.content).toBe(makeMessageCreate("1", i).content)
      expect(client.binaryFrames.length).toBe(client.messages.length)
    })
  }

  it("delivers a close frame only after queued compressed messages", async () => {
    const fake = await start({ compressionEngine: "stream" })
    const client = await open(fake, "?v=10&encoding=json", "zlib-stream")
    await client.ready()
    for (let i = 0; i < 50; i++) fake.dispatch(0, "TYPING_START", { i })
    fake.closeShard(0, 4000)
    expect((await client.closed).code).toBe(4000)
    expect(client.messages.filter((m) => m.t === "TYPING_START")).toHaveLength(50)
  })
})

describe("load", () => {
  const blastModes: Array<[string, "zlib-stream" | "zstd-stream" | undefined, FakeDiscordOptions]> = [
    ["uncompressed", undefined, {}],
    ["zlib-stream", "zlib-stream", {}],
    ["zlib-stream, stream engine", "zlib-stream", { compressionEngine: "stream" }],
    ["zstd-stream", "zstd-stream", {}]
  ]
  for (const [name, compress, options] of blastModes) {
    it(`blast (${name}) delivers every payload in order, interleaved with live traffic`, async () => {
      const fake = await start(options)
      const client = await open(fake, "?v=10&encoding=json", compress)
      await client.ready()
      const distinct = Array.from({ length: 40 }, (_, i) => makeMessageCreate("81344012929875968", i))
      const count = 4000
      const payloads = Array.from({ length: count }, (_, i) => ({ t: "MESSAGE_CREATE", d: distinct[i % distinct.length] }))
      const blasting = fake.blast(0, payloads)
      for (let i = 0; i < 3; i++) {
        client.send(1, i)
        await new Promise((r) => setTimeout(r, 5))
      }
      const last = await blasting
      expect(last).toBe(3 + count)
      fake.dispatch(0, "TYPING_START", { after: true })
      client.send(1, 99)
      await client.next((p) => p.t === "TYPING_START", 20_000)
      await client.next((p) => p.op === 11)
      const messages = client.messages.filter((m) => m.t === "MESSAGE_CREATE")
      expect(messages.map((m) => m.s)).toEqual(Array.from({ length: count }, (_, i) => 4 + i))
      messages.forEach((m, i) => expect(m.d.id).toBe(distinct[i % distinct.length]!.id))
      expect(messages[count - 1]!.d).toEqual(distinct[(count - 1) % distinct.length])
      expect(client.messages.filter((m) => m.op === 11).length).toBeGreaterThanOrEqual(1)
    })
  }

  it("blast waits for a resume when the shard drops mid-way", async () => {
    const fake = await start()
    const client = await open(fake)
    const ready = await client.ready()
    const payloads = Array.from({ length: 3000 }, (_, i) => ({ t: "MESSAGE_CREATE", d: { i } }))
    const blasting = fake.blast(0, payloads)
    await client.next((p) => p.t === "MESSAGE_CREATE")
    client.ws.terminate()
    await fake.waitFor(() => fake.readyShards().length === 0)
    const seq = client.lastSeq!
    const again = await open(fake, "?v=10&encoding=json", undefined, ready.d.resume_gateway_url)
    await again.next()
    again.send(6, { token: TOKEN, session_id: ready.d.session_id, seq })
    const last = await blasting
    await again.next((p) => p.s === last, 20_000)
    const seqs = again.messages.filter((m) => m.t === "MESSAGE_CREATE").map((m) => m.s)
    const resumedSeq = again.messages.find((m) => m.t === "RESUMED")!.s
    const expected = Array.from({ length: last - seq }, (_, i) => seq + 1 + i).filter((s) => s !== resumedSeq)
    expect(seqs).toEqual(expected)
    expect(seqs.at(-1)).toBe(last)
  })

  it("trickles realistic events routed to the right shard", async () => {
    const fake = await start({ shardCount: 2, maxConcurrency: 2 })
    const c0 = await open(fake)
    const c1 = await open(fake)
    await c0.ready([0, 2])
    await c1.ready([1, 2])
    fake.startTrickle(200)
    await fake.waitFor(() => c0.messages.length + c1.messages.length > 60, 5000)
    fake.stopTrickle()
    for (const [shardId, client] of [[0, c0], [1, c1]] as const) {
      for (const m of client.messages.filter((p) => p.op === 0 && p.d?.guild_id !== undefined)) {
        expect(shardOf(m.d.guild_id, 2)).toBe(shardId)
      }
    }
    const types = new Set([...c0.messages, ...c1.messages].map((m) => m.t))
    expect(types.has("MESSAGE_CREATE")).toBe(true)
  })

  it("can generate a ~5 MB GUILD_CREATE", () => {
    const size = JSON.stringify(makeGuildCreate(guildIdForShard(0, 1, 0), { targetBytes: 5_000_000 })).length
    expect(size).toBeGreaterThan(4_500_000)
    expect(size).toBeLessThan(5_500_000)
  })
})

describe("cluster support", () => {
  const noBuckets: FakeDiscordOptions = { shardCount: 4, maxConcurrency: 16, enforceIdentifyLimit: false }

  it("counts overlaps and concurrency per (shard id, shard count): a reshard's two generations are not an overlap", async () => {
    const fake = await start(noBuckets)
    const old = await open(fake)
    await old.ready([1, 4])
    const next = await open(fake)
    await next.ready([1, 8])
    expect(fake.overlaps).toEqual([])
    expect([fake.maxConcurrent(1, 4), fake.maxConcurrent(1, 8), fake.maxConcurrent(2, 4)]).toEqual([1, 1, 0])
    const twin = await open(fake)
    await twin.ready([1, 4])
    expect(fake.overlaps).toEqual([expect.objectContaining({ shardId: 1, shardCount: 4, how: "identify" })])
    expect([fake.maxConcurrent(1, 4), fake.maxConcurrent(1, 8), fake.maxConcurrent(1)]).toEqual([2, 1, 2])
    expect([fake.identifiesOf(1), fake.identifiesOf(1, 4), fake.identifiesOf(1, 8), fake.identifiesOf(0)]).toEqual([3, 2, 1, 0])
    expect(fake.readyShards(8)).toEqual([1])
    expect(fake.sessions().map((s) => [s.shardId, s.shardCount, s.connected])).toEqual([[1, 4, true], [1, 4, true], [1, 8, true]])
  })

  it("answers the recommended shard count set at run time and accepts any identify count", async () => {
    const fake = await start({ shardCount: 4 })
    expect((await getJson(`${fake.url}/api/v10/gateway/bot`, TOKEN)).body.shards).toBe(4)
    fake.setShardCount(8)
    expect(fake.recommendedShardCount).toBe(8)
    expect((await getJson(`${fake.url}/api/v10/gateway/bot`, TOKEN)).body.shards).toBe(8)
    expect(() => fake.setShardCount(0)).toThrow(RangeError)
    const client = await open(fake)
    expect((await client.ready([2, 3])).d.shard).toEqual([2, 3])
  })

  it("sends a guild's event to every session owning it: both generations during a reshard", async () => {
    const fake = await start(noBuckets)
    const old = await open(fake)
    await old.ready([1, 4])
    const next = await open(fake)
    await next.ready([1, 8])
    const shared = guildIdForShard(1, 8, 5)
    const deliveries = fake.dispatchGuildAll(shared, "MESSAGE_CREATE", { guild_id: shared, n: 1 })
    expect(deliveries.map((d) => [d.shardId, d.shardCount, d.seq, d.connectionId])).toEqual([[1, 4, 4, fake.sessionOf(1, 4)!.connectionId], [1, 8, 4, fake.sessionOf(1, 8)!.connectionId]])
    expect((await old.dispatch("MESSAGE_CREATE")).d).toEqual({ guild_id: shared, n: 1 })
    expect((await next.dispatch("MESSAGE_CREATE")).d).toEqual({ guild_id: shared, n: 1 })
    // Shard 5 of 8 owns this one but does not run: only the old generation gets it.
    const oldOnly = guildIdForShard(5, 8, 0)
    expect(fake.dispatchGuildAll(oldOnly, "TYPING_START", { guild_id: oldOnly }).map((d) => d.shardCount)).toEqual([4])
    expect((await old.dispatch("TYPING_START")).d.guild_id).toBe(oldOnly)
    // dispatchGuild returns the newest generation's seq; a guild nobody runs is queued (-1).
    expect(fake.dispatchGuild(shared, "TYPING_START", { guild_id: shared })).toBe(5)
    expect(fake.dispatchGuildAll(guildIdForShard(2, 4, 0), "TYPING_START", {})).toEqual([])
    expect(next.messages.filter((m) => m.t === "TYPING_START").map((m) => m.s)).toEqual([])
    expect((await next.dispatch("TYPING_START")).s).toBe(5)
  })

  it("trickles each event to both generations of the guild's shard", async () => {
    const fake = await start({ ...noBuckets, guildsPerShard: 4 })
    const old = await open(fake)
    await old.ready([1, 4], 4)
    const next = await open(fake)
    await next.ready([1, 8], 4)
    fake.startTrickle(400)
    await fake.waitFor(() => next.messages.filter((m) => m.t === "MESSAGE_CREATE").length >= 5, 5000)
    fake.stopTrickle()
    const idsOf = (c: Client): Set<string> => new Set(c.messages.filter((m) => m.t === "MESSAGE_CREATE").map((m) => m.d.id as string))
    const oldIds = idsOf(old)
    for (const id of idsOf(next)) expect(oldIds.has(id)).toBe(true)
    for (const m of old.messages.filter((p) => p.t === "MESSAGE_CREATE")) expect(shardOf(m.d.guild_id, 4)).toBe(1)
  })

  it("requireShardCount closes smaller counts with 4011 and refuses their IDENTIFY and RESUME", async () => {
    const fake = await start(noBuckets)
    const old = await open(fake)
    const oldReady = await old.ready([1, 4])
    const next = await open(fake)
    await next.ready([1, 8])
    expect(fake.requireShardCount(8)).toBe(1)
    expect(await old.closed).toEqual({ code: 4011, reason: "Sharding required." })
    expect([fake.minShardCount, fake.recommendedShardCount]).toEqual([8, 8])
    expect(next.ws.readyState).toBe(WebSocket.OPEN)

    const resume = await open(fake, "?v=10&encoding=json", undefined, oldReady.d.resume_gateway_url)
    await resume.next()
    resume.send(6, { token: TOKEN, session_id: oldReady.d.session_id, seq: old.lastSeq })
    expect((await resume.closed).code).toBe(4011)
    expect(fake.resumes.map((r) => [r.shardId, r.shardCount, r.outcome])).toEqual([[1, 4, "sharding-required"]])

    const small = await open(fake)
    await small.next()
    small.identify([0, 4])
    expect((await small.closed).code).toBe(4011)
    expect(fake.identifies.at(-1)).toMatchObject({ shardId: 0, shardCount: 4, outcome: "sharding-required", sessionId: undefined })
    const big = await open(fake)
    await big.ready([0, 8])
    expect(fake.sessions().map((s) => [s.shardId, s.shardCount])).toEqual([[0, 8], [1, 8]])
    fake.requireShardCount(1)
    const again = await open(fake)
    await again.ready([0, 4])
  })

  it("tags dispatches with the connection that wrote them and logs deliveries, replays included", async () => {
    const fake = await start({ tagConnections: true, recordDeliveries: true })
    const first = await open(fake)
    const ready = await first.ready()
    const firstConn = fake.sessionOf(0)!.connectionId!
    expect(ready.d._conn).toBe(firstConn)
    fake.dispatch(0, "TYPING_START", {})
    expect((await first.dispatch("TYPING_START")).d).toEqual({ _conn: firstConn })
    fake.dispatch(0, "USER_SETTINGS_UPDATE", [1])
    expect((await first.dispatch("USER_SETTINGS_UPDATE")).d).toEqual([1])
    const seq = first.lastSeq!
    first.ws.terminate()
    await fake.waitFor(() => fake.readyShards().length === 0)
    fake.dispatch(0, "MESSAGE_CREATE", { n: 1 })
    const second = await open(fake, "?v=10&encoding=json", undefined, ready.d.resume_gateway_url)
    await second.next()
    second.send(6, { token: TOKEN, session_id: ready.d.session_id, seq })
    const replayed = await second.dispatch("MESSAGE_CREATE")
    const secondConn = fake.sessionOf(0)!.connectionId!
    expect(replayed.d).toEqual({ _conn: secondConn, n: 1 })
    expect(FakeDiscord.connectionOf(replayed.d)).toBe(secondConn)
    await second.dispatch("RESUMED")
    expect(fake.deliveries.slice(-2).map((r) => [r.t, r.seq, r.connectionId, r.replayed])).toEqual([
      ["MESSAGE_CREATE", seq + 1, secondConn, true],
      ["RESUMED", seq + 2, secondConn, false]
    ])
    expect(fake.deliveries.filter((r) => r.connectionId === firstConn).map((r) => r.t)).toEqual(["READY", "GUILD_CREATE", "GUILD_CREATE", "TYPING_START", "USER_SETTINGS_UPDATE"])
    expect([fake.identifiesOf(0), fake.resumesOf(0), fake.resumesOf(0, 2)]).toEqual([1, 1, 0])
    fake.setTagConnections(false)
    fake.setRecordDeliveries(false)
    const count = fake.deliveries.length
    fake.dispatch(0, "TYPING_START", { plain: true })
    expect((await second.dispatch("TYPING_START")).d).toEqual({ plain: true })
    expect(fake.deliveries).toHaveLength(count)
  })

  it("tagFrame only touches the d object of a dispatch", () => {
    const tricky = frameText('X","op":0,"d":{', 3, 0, '{"a":1}')
    expect(JSON.parse(tagFrame(tricky, 7))).toEqual({ t: 'X","op":0,"d":{', s: 3, op: 0, d: { _conn: 7, a: 1 } })
    expect(JSON.parse(tagFrame(frameText("T", 1, 0, "{}"), 2)).d).toEqual({ _conn: 2 })
    expect(tagFrame(frameText("T", 1, 0, "null"), 2)).toBe(frameText("T", 1, 0, "null"))
  })
})

describe("socket owner", () => {
  it.skipIf(process.platform !== "linux")("finds the process behind a fake connection from its client port", async () => {
    const fake = await start()
    const child = spawn(process.execPath, ["-e", `const ws = new (require("ws"))(process.argv[1]); ws.on("message", () => {}); setInterval(() => {}, 1000)`, `${fake.gatewayUrl}/?v=10&encoding=json`], {
      cwd: import.meta.dirname,
      stdio: "ignore"
    })
    try {
      const upgrade = await fake.waitFor(() => fake.upgrades[0], 10_000, "child connects")
      expect(upgrade.remotePort).toBeGreaterThan(0)
      expect(pidOfLocalPort(upgrade.remotePort!)).toBe(child.pid)
      const own = await open(fake)
      await own.next()
      expect(pidOfLocalPort(fake.upgrades[1]!.remotePort!)).toBe(process.pid)
    } finally {
      child.kill()
    }
  })
})
