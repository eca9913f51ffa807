// Test helpers for the command side: a router over shard queues drained by a stand-in sender, and process helpers for
// the end-to-end tests (waiting for log lines, reading the final command counters).
import { Effect, Layer } from "effect"
import { CommandForwarder } from "../../src/Commands/Forwarder.ts"
import { CommandStats } from "../../src/Commands/CommandStats.ts"
import { CommandRouterLive } from "../../src/Commands/Router.ts"
import { ShardPlan } from "../../src/Cluster/ShardPlan.ts"
import { makeShardOwnership, ShardOwnership } from "../../src/Cluster/ShardOwnership.ts"
import { makeShardCommands, ShardCommands } from "../../src/Shard/ShardCommands.ts"
import type { GatewayProcess } from "../support/gateway.ts"

export interface Submitted {
  readonly shard: number
  readonly payload: string
}

/**
 * CommandRouter (+ CommandStats, ShardOwnership) over shard queues whose sender calls the given
 * `submit`. The shards start owned (`shardIds`); `automatic` makes an ownership that tests move
 * with acquire/release, as the cluster would.
 */
export const routerLayer = (options: {
  readonly shardIds: ReadonlyArray<number>
  readonly shardCount: number
  readonly automatic?: boolean
  readonly submit: (shard: number, payload: string) => Effect.Effect<void>
  /** Waited before each send, before `wanted` is checked (the real sender's send-window wait). */
  readonly pace?: (shard: number) => Effect.Effect<void>
  /** May use the router's CommandStats (the Redis forwarder counts its refusals there). */
  readonly forwarder?: Layer.Layer<CommandForwarder, never, CommandStats>
}) => {
  const plan = Layer.succeed(ShardPlan, {
    url: "ws://unused",
    shardCount: options.shardCount,
    shardIds: options.shardIds,
    maxConcurrency: 1,
    sessionStartLimit: { total: 1000, remaining: 1000, reset_after: 0, max_concurrency: 1 }
  })
  const ownership = Layer.effect(ShardOwnership, makeShardOwnership(options.automatic ?? false, options.shardIds))
  // The shards' command queues, drained in order by a stand-in sender that calls `submit` (one
  // per shard of the bot: the jobs of a shard not run here are dropped by `wanted` or emptied).
  const commands = Layer.effect(
    ShardCommands,
    Effect.gen(function*() {
      const queues = yield* makeShardCommands(options.shardCount, yield* ShardOwnership)
      for (let shard = 0; shard < options.shardCount; shard++) {
        yield* Effect.forkScoped(Effect.forever(Effect.gen(function*() {
          const job = yield* queues.take(shard)
          if (options.pace !== undefined) yield* options.pace(shard)
          if (job.wanted !== undefined && !job.wanted()) return
          yield* options.submit(shard, job.payload)
          yield* job.sent
        })))
      }
      return queues
    })
  )
  return CommandRouterLive.pipe(
    Layer.provide(Layer.mergeAll(commands, options.forwarder ?? CommandForwarder.none)),
    Layer.provideMerge(CommandStats.layer),
    Layer.provideMerge(ownership),
    Layer.provideMerge(plan)
  )
}

/** A submit that records what it was given. */
export const recorder = () => {
  const sent: Array<Submitted> = []
  return { sent, submit: (shard: number, payload: string) => Effect.sync(() => void sent.push({ shard, payload })) }
}

/** The gateway's JSON log lines on stderr. */
export const logLines = (gateway: GatewayProcess): Array<{ message: string; level: string }> =>
  gateway.stderr().split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as { message: string; level: string })

/** The counters the gateway logs when it stops: "commands: 3 received, 4 sent, 0 forwarded, 2 refused (...)". */
export const finalCounters = (gateway: GatewayProcess) => {
  const line = logLines(gateway).find((l) => l.message.startsWith("commands: "))
  if (line === undefined) throw new Error(`no final command counters in the log:\n${gateway.stderr().slice(-2000)}`)
  const match = /^commands: (\d+) received, (\d+) sent, (\d+) forwarded, (\d+) refused(?: \((.*)\))?$/.exec(line.message)
  if (match === null) throw new Error(`unexpected counters line: ${line.message}`)
  const refused = new Map<string, number>()
  for (const entry of (match[5] ?? "").split(", ").filter((e) => e !== "")) {
    const [reason, n] = entry.split(" ")
    refused.set(reason!, Number(n))
  }
  return { received: Number(match[1]), sent: Number(match[2]), forwarded: Number(match[3]), refusedTotal: Number(match[4]), refused }
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** Environment for a gateway against the fake Discord; extra entries win. */
export const gatewayEnv = (fake: { readonly host: string; readonly token: string }, shardCount: number, extra: Record<string, string> = {}) => ({
  DISCORD_TOKEN: fake.token,
  DISCORD_API_PROTOCOL: "http",
  DISCORD_API_HOST: fake.host,
  DISCORD_SHARD_COUNT: String(shardCount),
  DISCORD_EVENTS: "GUILD_CREATE",
  LOG_LEVEL: "info",
  ...extra
})

/** A guild id that lives on `shard` of `count`: (id >> 22) % count === shard. */
export const guildOn = (shard: number, count: number, n = 0): string => String(BigInt(shard + count * n) << 22n)

/** A real-looking snowflake; (1234567890123456789 >> 22) % 4 = 3, % 2 = 1. */
export const BIG_GUILD = "1234567890123456789"

export const presenceD = (marker: string) => ({ since: null, activities: [{ name: marker, type: 0 }], status: "online", afk: false })
export const membersD = (guildId: string, nonce: string) => ({ guild_id: guildId, query: "", limit: 0, nonce })

/** Marker of a command payload the fake received: op 3's activity name, op 8's nonce. */
export const markerOf = (record: { readonly op: number; readonly d: unknown }): string | undefined => {
  const d = record.d as { activities?: Array<{ name?: string }>; nonce?: string } | null
  if (record.op === 3) return d?.activities?.[0]?.name
  if (record.op === 8) return d?.nonce
  return undefined
}

/** "marker@shard" for every command the fake received whose marker starts with `prefix`, sorted. */
export const arrivals = (fake: { readonly received: ReadonlyArray<{ op: number; d: unknown; shardId: number | undefined }> }, prefix: string) =>
  fake.received
    .map((r) => ({ marker: markerOf(r), shard: r.shardId }))
    .filter((r): r is { marker: string; shard: number } => r.marker !== undefined && r.marker.startsWith(prefix))
    .map((r) => `${r.marker}@${r.shard}`)
    .sort()

/** Polls an async condition every 25 ms. */
export const pollUntil = async (what: string, check: () => Promise<boolean> | boolean, timeoutMs = 10_000) => {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await check()) return
    await sleep(25)
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
}

/** The Redis URL with another database number, so tests of SEND do not see each other's entries. */
export const redisDatabase = (url: string, db: number): string => {
  const parsed = new URL(url)
  parsed.pathname = `/${db}`
  return parsed.toString()
}
