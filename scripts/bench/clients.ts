// The programs under test, started against a fake Discord, each in its own process:
//   ours        node dist/main.js, stdout broker, stdout piped into a counting sink process
//   ours-redis  node dist/main.js, Redis Streams broker; counted by XLEN (acknowledged events only)
//   djs         @discordjs/ws WebSocketManager, consume-only
//   ceiling     ws + node:zlib + JSON.parse, nothing else
// Each exposes how many events it has consumed, and the pids whose CPU the report shows.
import { fork, spawn } from "node:child_process"
import type { ChildProcess } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import type { Writable } from "node:stream"
import { Redis } from "ioredis"
import type { PeerParams } from "./djs-client.ts"
import { TOKEN } from "./fake-process.ts"
import type { FakeProcess } from "./fake-process.ts"
import { exited, stop, tail, track, unlessExits, waitUntil } from "./proc.ts"
import { RpcClient } from "./rpc.ts"

export type ClientKind = "ours" | "ours-small-heap" | "ours-redis" | "djs" | "ceiling"
export const CLIENT_KINDS: ReadonlyArray<ClientKind> = ["ours", "ours-small-heap", "ours-redis", "djs", "ceiling"]

/** How the Docker image and the flake run the gateway: small young-generation semi-spaces. */
export const SMALL_HEAP_FLAGS = ["--max-semi-space-size=2"]

export const CLIENT_LABELS: Record<ClientKind, string> = {
  ours: "ours → stdout",
  "ours-small-heap": "ours → stdout, --max-semi-space-size=2",
  "ours-redis": "ours → Redis Streams",
  djs: "@discordjs/ws",
  ceiling: "ceiling (ws+zlib+JSON.parse)"
}

const ROOT = resolve(import.meta.dirname, "../..")
/** GUILDS | GUILD_MEMBERS | GUILD_PRESENCES | GUILD_MESSAGES | REACTIONS | TYPING | MESSAGE_CONTENT. */
const INTENTS = 1 | 2 | 256 | 512 | 1024 | 2048 | 32768
const INTENT_NAMES = "GUILDS,GUILD_MEMBERS,GUILD_PRESENCES,GUILD_MESSAGES,GUILD_MESSAGE_REACTIONS,GUILD_MESSAGE_TYPING,MESSAGE_CONTENT"
/** A database of its own, flushed before and after, so the bench never touches other keys. */
export const REDIS_URL = process.env.BENCH_REDIS_URL ?? "redis://127.0.0.1:6379/9"
/** Every stream the fake's mix and lifecycle can produce (XLEN of a missing key is 0). */
const STREAMS = ["READY", "RESUMED", "GUILD_CREATE", "MESSAGE_CREATE", "PRESENCE_UPDATE", "TYPING_START", "MESSAGE_REACTION_ADD", "GUILD_MEMBER_UPDATE"]

export interface Helper {
  readonly name: string
  readonly pid: number
}

export interface RunningClient {
  readonly kind: ClientKind
  readonly pid: number
  /** Other processes doing work for this client (sink, redis-server), reported separately. */
  readonly helpers: ReadonlyArray<Helper>
  /** Events consumed so far (for ours-redis: acknowledged by Redis). */
  count(): Promise<number>
  /** Resolves once count() >= n; rejects on timeout or if the client dies. */
  waitFor(n: number, timeoutMs: number): Promise<void>
  /** What the client process wrote to stderr lately (ours only). */
  readonly stderr?: () => string
  /** Guards a promise: rejects as soon as the client process exits. */
  guard<T>(promise: Promise<T>): Promise<T>
  stop(): Promise<void>
}

export interface ClientOptions {
  readonly shardCount: number
  readonly compress: "zlib-stream" | "zstd-stream" | "none"
  /** Extra node flags for our gateway (e.g. --cpu-prof). */
  readonly nodeArgs?: ReadonlyArray<string>
  /** The fake's max_concurrency, for the ceiling's identify pacing (default: shardCount). */
  readonly maxConcurrency?: number
  /** The gateway's entry point; dist/main.js by default. */
  readonly entry?: string
}

export async function startClient(kind: ClientKind, fake: FakeProcess, options: ClientOptions): Promise<RunningClient> {
  switch (kind) {
    case "ours":
      return startOurs(fake, options, "ours")
    case "ours-small-heap":
      return startOurs(fake, { ...options, nodeArgs: [...(options.nodeArgs ?? []), ...SMALL_HEAP_FLAGS] }, "ours-small-heap")
    case "ours-redis":
      return startOursRedis(fake, options)
    case "djs":
    case "ceiling":
      return startPeer(kind, fake, options)
  }
}

function gatewayEnv(fake: FakeProcess, options: ClientOptions, extra: Record<string, string>): NodeJS.ProcessEnv {
  // A clean environment: nothing from the caller's shell (DISCORD_*, REDIS_URL…) leaks in.
  return {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    HOME: process.env.HOME ?? "/tmp",
    DISCORD_TOKEN: TOKEN,
    DISCORD_EVENTS: "*",
    DISCORD_INTENTS: INTENT_NAMES,
    DISCORD_API_PROTOCOL: "http",
    DISCORD_API_HOST: fake.host,
    DISCORD_COMPRESS: options.compress,
    SHARD_STORE_TYPE: "memory",
    LOG_LEVEL: "warn",
    ...extra
  }
}

function spawnGateway(fake: FakeProcess, options: ClientOptions, stdout: "ignore" | Writable, extra: Record<string, string>): { child: ChildProcess; stderr: () => string } {
  // An empty working directory: the repository's gateway.toml must not be picked up.
  const cwd = mkdtempSync(join(tmpdir(), "spectacles-bench-"))
  const child = track(spawn(process.execPath, [...(options.nodeArgs ?? []), options.entry ?? join(ROOT, "dist/main.js")], {
    cwd,
    env: gatewayEnv(fake, options, extra),
    stdio: ["ignore", stdout, "pipe"]
  }))
  child.once("exit", () => rmSync(cwd, { recursive: true, force: true }))
  return { child, stderr: tail(child.stderr) }
}

function guardFor(child: ChildProcess, name: string, stderr: () => string) {
  return <T>(promise: Promise<T>): Promise<T> => unlessExits(child, name, promise, stderr)
}

async function startOurs(fake: FakeProcess, options: ClientOptions, kind: "ours" | "ours-small-heap"): Promise<RunningClient> {
  const sinkChild = track(fork(resolve(import.meta.dirname, "sink.ts"), [], { stdio: ["pipe", "ignore", "inherit", "ipc"] }))
  const sink = new RpcClient(sinkChild, "stdout sink")
  const { child, stderr } = spawnGateway(fake, options, sinkChild.stdin!, {})
  // The gateway holds the pipe's write end now; ours must go, or the sink never sees EOF.
  sinkChild.stdin!.destroy()
  const guard = guardFor(child, "gateway", stderr)
  return {
    kind,
    pid: child.pid!,
    helpers: [{ name: "stdout sink", pid: sinkChild.pid! }],
    stderr,
    count: async () => (await sink.call<{ count: number }>("count")).count,
    waitFor: (n, timeoutMs) => guard(sink.call("target", n, timeoutMs)),
    guard,
    stop: async () => {
      const exit = await stop(child)
      if (exit.code !== 0) process.stderr.write(`bench: gateway exited with ${exit.code ?? exit.signal}:\n${stderr().slice(-1500)}\n`)
      if (sinkChild.connected) sinkChild.disconnect()
      await stop(sinkChild, 5_000)
    }
  }
}

/** Connects to the bench's Redis database, or explains why it cannot. */
export async function openRedis(): Promise<Redis> {
  const redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null })
  redis.on("error", () => {})
  try {
    await redis.connect()
    return redis
  } catch (error) {
    redis.disconnect()
    throw new Error(`Redis not reachable at ${REDIS_URL} (${error instanceof Error ? error.message : String(error)}); start redis-server or set BENCH_REDIS_URL`)
  }
}

async function redisServerPid(redis: Redis): Promise<number | undefined> {
  const info = await redis.info("server")
  const match = /process_id:(\d+)/.exec(info)
  return match === null ? undefined : Number(match[1])
}

async function startOursRedis(fake: FakeProcess, options: ClientOptions): Promise<RunningClient> {
  const redis = await openRedis()
  await redis.flushdb()
  const serverPid = await redisServerPid(redis)
  const { child, stderr } = spawnGateway(fake, options, "ignore", { BROKER_TYPE: "redis", REDIS_URL })
  const guard = guardFor(child, "gateway", stderr)
  const count = async (): Promise<number> => {
    const pipeline = redis.pipeline()
    for (const stream of STREAMS) pipeline.xlen(stream)
    const replies = (await pipeline.exec()) ?? []
    return replies.reduce((sum, [error, n]) => sum + (error === null ? Number(n) : 0), 0)
  }
  return {
    kind: "ours-redis",
    pid: child.pid!,
    helpers: serverPid === undefined ? [] : [{ name: "redis-server", pid: serverPid }],
    count,
    waitFor: (n, timeoutMs) => guard(waitUntil(async () => (await count()) >= n, timeoutMs, `${n} entries in Redis`, 25)),
    guard,
    stop: async () => {
      const exit = await stop(child)
      if (exit.code !== 0) process.stderr.write(`bench: gateway exited with ${exit.code ?? exit.signal}:\n${stderr().slice(-1500)}\n`)
      await redis.flushdb().catch(() => undefined)
      redis.disconnect()
    }
  }
}

async function startPeer(kind: "djs" | "ceiling", fake: FakeProcess, options: ClientOptions): Promise<RunningClient> {
  if (options.compress === "zstd-stream") throw new Error(`${kind} does not support zstd-stream`)
  const params: PeerParams = {
    restUrl: fake.url,
    gatewayUrl: fake.gatewayUrl,
    token: TOKEN,
    shardCount: options.shardCount,
    intents: INTENTS,
    compress: options.compress,
    maxConcurrency: options.maxConcurrency ?? options.shardCount
  }
  const script = kind === "djs" ? "djs-client.ts" : "ceiling-client.ts"
  const child = track(fork(resolve(import.meta.dirname, script), [JSON.stringify(params)], { stdio: ["ignore", "inherit", "pipe", "ipc"] }))
  const stderr = tail(child.stderr)
  child.stderr?.pipe(process.stderr)
  const rpc = new RpcClient(child, kind)
  const guard = guardFor(child, kind, stderr)
  return {
    kind,
    pid: child.pid!,
    helpers: [],
    count: async () => (await rpc.call<{ count: number }>("count")).count,
    waitFor: (n, timeoutMs) => guard(rpc.call("target", n, timeoutMs)),
    guard,
    stop: async () => {
      await rpc.call("stop", null, 10_000).catch(() => undefined)
      if (child.connected) child.disconnect()
      await Promise.race([exited(child), stop(child, 5_000)])
    }
  }
}
