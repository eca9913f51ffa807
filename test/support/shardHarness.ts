// Builds the real ShardSession in-process over the in-memory Discord, an in-memory store, the
// real outbox, identify limiter and checkpointer, on the test clock. A test forks shards, moves
// time with `until`/`advance`, and reads what Discord saw and what reached the outbox.
import { tmpdir } from "node:os"
import { Context, Duration, Effect, type Fiber, Layer, Logger, Stream } from "effect"
import { TestClock } from "effect/testing"
import { AppConfig } from "../../src/Config/AppConfig.ts"
import { ReadinessLive } from "../../src/Resilience/Readiness.ts"
import { loadConfig } from "../../src/Config/load.ts"
import type { DispatchEvent } from "../../src/Broker/DispatchEvent.ts"
import { makeOutbox, Outbox } from "../../src/Broker/Outbox.ts"
import { IdentifyLimiterLive, MemoryRateLimiterLive } from "../../src/RateLimiter/IdentifyLimiter.ts"
import { SessionBudget } from "../../src/RateLimiter/SessionBudget.ts"
import { makeShardCommands, ShardCommands } from "../../src/Shard/ShardCommands.ts"
import { ShardPlan } from "../../src/Cluster/ShardPlan.ts"
import { makeShardOwnership, ShardOwnership } from "../../src/Cluster/ShardOwnership.ts"
import { Sharder, SharderLive } from "../../src/Shard/Sharder.ts"
import { NoShardLeases, ShardLeases } from "../../src/Cluster/ShardLeases.ts"
import { ShardSession, ShardSessionLive } from "../../src/Shard/ShardSession.ts"
import { ShardStatus, ShardStatusLive } from "../../src/Shard/ShardStatus.ts"
import { Checkpointer, CheckpointerLive } from "../../src/ShardStore/Checkpointer.ts"
import { makeMemoryStore } from "../../src/ShardStore/MemoryStore.ts"
import { ShardStore } from "../../src/ShardStore/ShardStore.ts"
import { MemoryDiscord, type MemoryDiscordOptions } from "./memoryDiscord.ts"

export interface HarnessOptions {
  readonly shardIds?: ReadonlyArray<number>
  readonly shardCount?: number
  readonly maxConcurrency?: number
  readonly env?: Readonly<Record<string, string>>
  readonly discord?: MemoryDiscordOptions
  /** Outbox capacity (events). */
  readonly bufferSize?: number
  /** Take events out of the outbox (as a publisher would) as they come; false leaves them there. */
  readonly drain?: boolean
  /** Run the shards through the Sharder (supervision) instead of one fiber per ShardSession.run. */
  readonly sharder?: boolean
  /** Wraps the in-memory store (to make it fail or die). */
  readonly wrapStore?: (store: ShardStore["Service"]) => ShardStore["Service"]
  /** Leases (default: none, every shard always held). */
  readonly leases?: Layer.Layer<ShardLeases>
}

export const makeHarness = (options: HarnessOptions = {}) =>
  Effect.gen(function*() {
    const shardIds = options.shardIds ?? [0]
    const discord = new MemoryDiscord(options.discord)
    const config = yield* loadConfig({
      argv: [],
      env: { DISCORD_TOKEN: "test-token", DISCORD_EVENTS: "*", ...options.env },
      cwd: tmpdir()
    }).pipe(Effect.orDie)
    const store = makeMemoryStore()
    const plan = Layer.succeed(ShardPlan, {
      url: discord.mainUrl,
      shardCount: options.shardCount ?? Math.max(...shardIds) + 1,
      shardIds,
      maxConcurrency: options.maxConcurrency ?? 1,
      sessionStartLimit: { total: 1000, remaining: 1000, reset_after: 0, max_concurrency: options.maxConcurrency ?? 1 }
    })
    const budget = Layer.succeed(SessionBudget, { ensure: () => Effect.void, spend: Effect.void, remaining: () => 1000 })
    const base = Layer.mergeAll(
      AppConfig.layer(config),
      ReadinessLive,
      plan,
      // Static: the harness's shards are this process's for the whole test.
      Layer.effect(ShardOwnership, makeShardOwnership(false, shardIds)),
      Layer.succeed(ShardStore, options.wrapStore ? options.wrapStore(store) : store),
      Layer.effect(Outbox, makeOutbox(options.bufferSize ?? 10_000)),
      discord.layer
    )
    const deps = Layer.mergeAll(
      IdentifyLimiterLive.pipe(Layer.provide(MemoryRateLimiterLive), Layer.provide(budget)),
      CheckpointerLive,
      ShardStatusLive,
      Layer.effect(ShardCommands, Effect.flatMap(ShardOwnership, (ownership) => makeShardCommands(options.shardCount ?? Math.max(...shardIds) + 1, ownership))),
      options.leases ?? NoShardLeases
    ).pipe(Layer.provideMerge(base))
    const sessions = ShardSessionLive.pipe(Layer.provideMerge(deps))
    const context = yield* Layer.build(
      SharderLive.pipe(Layer.provideMerge(sessions), Layer.provideMerge(budget))
    )
    const session = Context.get(context, ShardSession)
    const outbox = Context.get(context, Outbox)
    const commands = Context.get(context, ShardCommands)
    const status = Context.get(context, ShardStatus)

    const delivered: Array<DispatchEvent> = []
    // What the event path does, with a broker that accepts every chunk at once.
    const drain = Stream.runForEachArray(outbox.events, (chunk) =>
      Effect.sync(() => {
        for (const event of chunk) {
          delivered.push(event)
          event.receipt.accepted(event.seq)
        }
        outbox.accepted(chunk)
      }))
    if (options.drain !== false) yield* Effect.forkScoped(drain)
    // The periodic checkpoint writes, as the gateway runs them.
    yield* Effect.forkScoped(Context.get(context, Checkpointer).run)

    // What the shards log, for tests that check what an operator would read.
    const logs: Array<{ readonly level: string; readonly message: string }> = []
    const capture = Logger.layer([
      Logger.make((entry) => {
        const message = Array.isArray(entry.message) ? entry.message.map(String).join(" ") : String(entry.message)
        logs.push({ level: entry.logLevel, message })
      })
    ])
    const fibers = new Map<number, Fiber.Fiber<never, unknown>>()
    if (options.sharder) fibers.set(-1, yield* Effect.forkScoped(Context.get(context, Sharder).run.pipe(Effect.provide(capture))))
    else {
      const leases = Context.get(context, ShardLeases)
      for (const id of shardIds) {
        const cell = yield* Effect.orDie(leases.claim(id))
        fibers.set(id, yield* Effect.forkScoped(session.run(id, cell).pipe(Effect.provide(capture))))
      }
    }

    /** Moves the test clock in small steps until `ready` holds (fails after `maxMs`). */
    const until = (ready: () => boolean, what: string, maxMs = 120_000, stepMs = 50) =>
      Effect.gen(function*() {
        for (let waited = 0; waited <= maxMs; waited += stepMs) {
          if (ready()) return
          yield* TestClock.adjust(Duration.millis(stepMs))
        }
        return yield* Effect.die(new Error(`waited ${maxMs} ms of test time for ${what}`))
      })
    const advance = (ms: number, stepMs = 50) =>
      Effect.gen(function*() {
        for (let waited = 0; waited < ms; waited += stepMs) yield* TestClock.adjust(Duration.millis(stepMs))
      })
    const events = (t = "MESSAGE_CREATE") => delivered.filter((e) => e.t === t)
    const markers = (shard?: number) =>
      delivered.filter((e) => e.t === "MESSAGE_CREATE" && (shard === undefined || e.shard === shard)).map((e) => (JSON.parse(e.data.toString()) as { m: string }).m)

    return { logs, discord, store, session, outbox, commands, status, delivered, events, markers, fibers, until, advance, drain, config }
  })

export type Harness = Effect.Success<ReturnType<typeof makeHarness>>
