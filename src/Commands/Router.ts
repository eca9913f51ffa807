// Where commands meet the shards. Every source goes through here: decoding (refusals logged and
// counted), sending on a local shard, forwarding to a shard's inbox through the broker.
//
// Local sends go into the shard's own command queue (ShardCommands), so a shard's commands leave
// in the order they were handed over and a shard that is reconnecting (or out of send budget)
// holds up only its own commands. Stdin commands for local shards go straight to that worker. Commands read
// from the broker's shared SEND stream/queue are instead forwarded to the inbox of every target
// shard, this process's own included: a shard's backlog then waits in the broker, where it is
// durable, and each inbox is acknowledged only once its payload was written to Discord.
//
// Which shards are local follows ShardOwnership: a shard may arrive or leave while running. A
// stdin command queued for a shard that leaves is handed on through the broker (stdin does not
// deliver it again), in the order it was queued.
import { Context, Effect, Layer, Queue, Random, Semaphore } from "effect"
import { ShardOwnership } from "../Cluster/ShardOwnership.ts"
import { ShardPlan } from "../Cluster/ShardPlan.ts"
import { type CommandJob, ShardCommands } from "../Shard/ShardCommands.ts"
import { type Command, decodeCommand, decodeEnvelope } from "./Command.ts"
import { CommandStats } from "./CommandStats.ts"
import { excerpt } from "./excerpt.ts"
import { CommandForwarder } from "./Forwarder.ts"
import { backoffDelayMs, Backoffs } from "../Resilience/Backoff.ts"
import { outageLog } from "../Resilience/OutageLog.ts"
import { type Refusal, refusal } from "./Refusal.ts"
import { commandParts, type Part } from "./Targets.ts"

/** A payload waiting for its shard, plus what to do once Discord has it. */
export type LocalJob = CommandJob

/** Commands from stdin a shard may have waiting before the reader stops reading (backpressure). */
export const STDIN_WINDOW_PER_SHARD = 1_000

export class CommandRouter extends Context.Service<CommandRouter, {
  /** The bot's total shard count (what guild routing divides by). */
  readonly shardCount: number
  /** Whether this process runs the shard now (ShardOwnership). */
  readonly owns: (shard: number) => boolean
  /** The broker commands can be forwarded through, if any. */
  readonly forwarding: string | undefined
  /** Decodes a command with its target; a refusal is logged, counted and yields undefined. */
  readonly decode: (raw: Uint8Array | string, source: string) => Effect.Effect<Command | undefined>
  /** Decodes a payload that arrived already routed (a shard inbox): checks it, returns the text to send. */
  readonly decodeRouted: (raw: Uint8Array | string, source: string) => Effect.Effect<string | undefined>
  /** Logs and counts a refusal found outside `decode` (e.g. by the stdin framer). */
  readonly refuse: (refused: Refusal, source: string, sample: Uint8Array | string) => Effect.Effect<void>
  /** Per-shard payloads of a command. */
  readonly parts: (command: Command) => ReadonlyArray<Part>
  /** Queues a job on a shard this process runs; never waits. */
  readonly sendLocal: (shard: number, job: LocalJob) => void
  /**
   * Hands payloads to their shards' inboxes, retrying through broker outages until it succeeds
   * (true), or until `wanted` says the work was taken away (false).
   */
  readonly forward: (parts: ReadonlyArray<Part>, wanted?: () => boolean) => Effect.Effect<boolean>
  /**
   * Sends a command from a source without acknowledgements (stdin): local shards directly,
   * others forwarded (or refused without a broker). Waits only while a shard's backlog is full.
   */
  readonly dispatch: (command: Command, source: string) => Effect.Effect<void>
}>()("gateway/CommandRouter") {}

export const CommandRouterLive = Layer.effect(
  CommandRouter,
  Effect.gen(function*() {
    const plan = yield* ShardPlan
    const ownership = yield* ShardOwnership
    const shardCommands = yield* ShardCommands
    const forwarder = yield* CommandForwarder
    const stats = yield* CommandStats
    const { shardCount } = plan

    const refuse = (refused: Refusal, source: string, sample: Uint8Array | string) =>
      Effect.suspend(() => {
        stats.refuse(refused.reason)
        const shown = excerpt(sample)
        return Effect.logWarning(`command from ${source} refused (${refused.reason}): ${refused.detail}${shown === "" ? "" : `; command: ${shown}`}`)
      })

    const decode = (raw: Uint8Array | string, source: string) =>
      Effect.suspend(() => {
        const decoded = decodeCommand(raw, shardCount)
        if (decoded.ok) {
          stats.received++
          return Effect.succeed<Command | undefined>(decoded.value)
        }
        return Effect.as(refuse(decoded.refusal, source, raw), undefined)
      })

    const decodeRouted = (raw: Uint8Array | string, source: string) =>
      Effect.suspend(() => {
        const decoded = decodeEnvelope(raw)
        if (decoded.ok) return Effect.succeed<string | undefined>(decoded.value.payload)
        return Effect.as(refuse(decoded.refusal, source, raw), undefined)
      })

    // Local jobs go straight to the shard's own command queue, which its sender reads in order.
    const sendLocal = (shard: number, job: LocalJob) =>
      shardCommands.offer(shard, {
        ...job,
        sent: Effect.andThen(Effect.sync(() => void stats.sent++), job.sent)
      })

    // Forwarding outages are logged once when they start and once when they end.
    const outage = outageLog(`forwarding commands through ${forwarder.broker ?? "the broker"}`)
    const forward = (parts: ReadonlyArray<Part>, wanted?: () => boolean) =>
      Effect.gen(function*() {
        if (parts.length === 0) return true
        for (let attempt = 1;; attempt++) {
          // The messages these parts came from will be delivered again (their channel closed...).
          if (wanted !== undefined && !wanted()) return false
          const result = yield* Effect.result(forwarder.forward(parts))
          if (result._tag === "Success") {
            stats.forwarded += parts.length
            yield* outage.succeeded
            return true
          }
          yield* outage.failed(result.failure.reason)
          yield* Effect.sleep(backoffDelayMs(Backoffs.brokerOutage, attempt, yield* Random.next))
        }
      })

    const windows = new Map<number, Semaphore.Semaphore>()
    const windowOf = (shard: number) => {
      let window = windows.get(shard)
      if (window === undefined) windows.set(shard, window = Semaphore.makeUnsafe(STDIN_WINDOW_PER_SHARD))
      return window
    }

    // Stdin commands dropped unsent because their shard left: forwarded to its inbox, one batch at
    // a time so they keep their order (without a broker they are refused: nobody can send them).
    const handOn = yield* Queue.unbounded<Part>()
    yield* Effect.forkScoped(Effect.forever(Effect.gen(function*() {
      const parts = yield* Queue.takeAll(handOn)
      if (forwarder.broker !== undefined) return yield* forward(parts)
      const shards = [...new Set(parts.map((p) => p.shard))].join(", ")
      for (const part of parts) {
        yield* refuse(
          refusal("not_local", `shard ${shards} left this process before the command was sent, and the stdout broker cannot forward it; use broker type redis or amqp`),
          "stdin",
          part.payload
        )
      }
    })))

    const dispatch = (command: Command, source: string) =>
      Effect.gen(function*() {
        const parts = commandParts(command, shardCount)
        const local: Array<Part> = []
        const remote: Array<Part> = []
        for (const part of parts) (ownership.owns(part.shard) ? local : remote).push(part)
        for (const part of local) {
          const window = windowOf(part.shard)
          yield* window.take(1)
          // Left while this waited for room: it goes the remote way.
          if (!ownership.owns(part.shard)) {
            yield* window.release(1)
            remote.push(part)
            continue
          }
          sendLocal(part.shard, {
            payload: part.payload,
            sent: Effect.asVoid(window.release(1)),
            dropped: Effect.andThen(window.release(1), Effect.sync(() => void Queue.offerUnsafe(handOn, part)))
          })
        }
        if (remote.length === 0) return
        if (forwarder.broker !== undefined) {
          yield* forward(remote)
          return
        }
        // No broker: a broadcast reaches the shards we run; a targeted command cannot be delivered.
        if (command.target === "all") return
        const shards = remote.map((p) => p.shard).join(", ")
        yield* refuse(
          refusal("not_local", `shard ${shards} is not run by this process (it runs ${describeOwned(ownership.owned())}), and the stdout broker cannot forward commands; use broker type redis or amqp, or write to the process that runs it`),
          source,
          command.payload
        )
      })

    yield* Effect.addFinalizer(() => Effect.logInfo(`commands: ${stats.summary()}`))

    return CommandRouter.of({
      shardCount,
      owns: ownership.owns,
      forwarding: forwarder.broker,
      decode,
      decodeRouted,
      refuse,
      parts: (command) => commandParts(command, shardCount),
      sendLocal,
      forward,
      dispatch
    })
  })
)

/** The shards run now, for logs: "0-15, 32", or "none". */
export const describeOwned = (owned: Iterable<number>): string => {
  const text = describeShards([...owned])
  return text === "" ? "none" : text
}

/** "0-15, 32" for logs. */
export const describeShards = (ids: ReadonlyArray<number>): string => {
  const sorted = [...ids].sort((a, b) => a - b)
  const ranges: Array<string> = []
  for (let i = 0; i < sorted.length;) {
    let j = i
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1) j++
    ranges.push(i === j ? `${sorted[i]}` : `${sorted[i]}-${sorted[j]}`)
    i = j + 1
  }
  return ranges.join(", ")
}
