// Shared helpers for the broker tests: fake events, service checks, a private redis-server and a
// TCP proxy that can cut the line to RabbitMQ.
import { type ChildProcess, spawn } from "node:child_process"
import { randomBytes } from "node:crypto"
import * as net from "node:net"
import { Redacted } from "effect"
import type { DispatchEvent } from "../../src/Broker/DispatchEvent.ts"
import type { GatewayConfig } from "../../src/Config/GatewayConfig.ts"

export const CI = process.env.CI === "true"
export const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379"
export const AMQP_URL = process.env.AMQP_URL ?? "amqp://guest:guest@127.0.0.1:5672"

/** Whether something accepts TCP connections at the URL's host and port. */
export const reachable = (url: string, timeoutMs = 1_000): Promise<boolean> => {
  const parsed = new URL(url)
  const port = Number(parsed.port || (parsed.protocol.startsWith("amqp") ? 5672 : 6379))
  return new Promise((resolve) => {
    const socket = net.connect({ host: parsed.hostname, port })
    const done = (ok: boolean) => {
      socket.destroy()
      resolve(ok)
    }
    socket.setTimeout(timeoutMs, () => done(false))
    socket.once("connect", () => done(true))
    socket.once("error", () => done(false))
  })
}

/**
 * True when the tests for `name` should run. Outside CI an unreachable service skips them with a
 * loud message; under CI=true they run anyway, so they fail instead of passing silently.
 */
export const serviceAvailable = async (name: string, url: string): Promise<boolean> => {
  if (await reachable(url)) return true
  const where = new URL(url).host
  if (CI) {
    console.error(`\n*** ${name} is not reachable at ${where}; CI=true, so the ${name} broker tests will FAIL ***\n`)
    return true
  }
  console.warn(
    `\n${"!".repeat(78)}\n!!! ${name} is not reachable at ${where}: SKIPPING the ${name} broker tests.\n!!! Start it (or set the URL env var) to run them; under CI=true they fail instead.\n${"!".repeat(78)}\n`
  )
  return false
}

export const unique = (prefix: string): string => `${prefix}_${randomBytes(4).toString("hex").toUpperCase()}`

/** A dispatch for broker tests: brokers never call the receipt themselves. */
export const fakeEvent = (t: string, shard: number, seq: number, d: unknown): DispatchEvent => ({
  t,
  shard,
  seq,
  data: Buffer.from(JSON.stringify(d)),
  receipt: { accepted: () => {}, current: () => true },
    epoch: 0
})

/** `count` events spread over the given names and two shards, seq increasing per shard. */
export const fakeBatch = (names: ReadonlyArray<string>, count: number, from = 1): Array<DispatchEvent> =>
  Array.from({ length: count }, (_, i) => {
    const n = from + i
    return fakeEvent(names[i % names.length]!, n % 2, n, { id: String(n), content: `hello ${n} ✓`, nested: { n, ok: true }, nil: null })
  })

export const testConfig = (overrides: {
  readonly broker?: Partial<GatewayConfig["broker"]>
  readonly events?: GatewayConfig["events"]
  readonly redisUrls?: ReadonlyArray<string>
  readonly amqpUrl?: string
}): GatewayConfig => ({
  token: Redacted.make("test-token"),
  events: overrides.events ?? { all: true, names: new Set() },
  intents: 0,
  shards: { count: 1, ids: undefined, max: undefined, checkIntervalMs: 0 },
  gatewayVersion: 10,
  compress: "none",
  api: { scheme: "http", host: "127.0.0.1", version: 10 },
  broker: { type: "stdout", group: "gateway", messageTimeoutMs: 0, encoding: "json", bufferSize: 1_000, ...overrides.broker },
  presence: undefined,
  prometheus: { address: undefined, endpoint: "/metrics" },
  shardStore: { type: "memory", prefix: "gateway:", path: "/tmp/unused.json" },
  redis: { urls: (overrides.redisUrls ?? [REDIS_URL]).map((u) => Redacted.make(u)), poolSize: 1 },
  amqp: { url: Redacted.make(overrides.amqpUrl ?? AMQP_URL) },
  shutdownTimeoutMs: 5_000,
  checkpointIntervalMs: 1_000,
  logLevel: "warn",
  limits: { frameBytes: 32 * 1024 * 1024, payloadBytes: 32 * 1024 * 1024, partialBytes: 32 * 1024 * 1024 }
})

export const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = net.createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo
      server.close(() => resolve(port))
    })
  })

export const waitFor = async (what: string, check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> => {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await check()) return
    await new Promise((r) => setTimeout(r, 50))
  }
  throw new Error(`timed out waiting for ${what}`)
}

/** A throw-away redis-server (no persistence) on `port`. */
export const startRedisServer = async (port: number) => {
  const child: ChildProcess = spawn(
    "redis-server",
    ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no"],
    { stdio: "ignore" }
  )
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()))
  child.once("error", () => undefined)
  await waitFor(`redis-server on port ${port}`, () => reachable(`redis://127.0.0.1:${port}`, 200))
  return {
    url: `redis://127.0.0.1:${port}`,
    /** SIGSTOP: the server hangs with its connections open (no replies, no close). */
    pause: () => void child.kill("SIGSTOP"),
    resume: () => void child.kill("SIGCONT"),
    /** SIGKILL: the server vanishes without closing anything politely. */
    kill: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGCONT")
        child.kill("SIGKILL")
      }
      await exited
    }
  }
}

/**
 * A TCP proxy from a local port to `target`. `cut()` destroys every connection and refuses new
 * ones (the port stops listening); `restore()` listens on the same port again.
 */
export const startTcpProxy = async (target: { host: string; port: number }) => {
  const sockets = new Set<net.Socket>()
  const server = net.createServer((client) => {
    const upstream = net.connect(target)
    sockets.add(client)
    sockets.add(upstream)
    const drop = () => {
      client.destroy()
      upstream.destroy()
      sockets.delete(client)
      sockets.delete(upstream)
    }
    client.on("error", drop)
    upstream.on("error", drop)
    client.on("close", drop)
    upstream.on("close", drop)
    client.pipe(upstream)
    upstream.pipe(client)
  })
  const listen = (port: number) =>
    new Promise<number>((resolve, reject) => {
      server.once("error", reject)
      server.listen(port, "127.0.0.1", () => {
        server.removeListener("error", reject)
        resolve((server.address() as net.AddressInfo).port)
      })
    })
  const port = await listen(0)
  const stopListening = () => new Promise<void>((resolve) => server.close(() => resolve()))
  const destroyAll = () => {
    for (const socket of sockets) socket.destroy()
    sockets.clear()
  }
  return {
    port,
    cut: async () => {
      const closed = stopListening()
      destroyAll()
      await closed
    },
    restore: async () => {
      await listen(port)
    },
    close: async () => {
      destroyAll()
      if (server.listening) await stopListening()
    }
  }
}
