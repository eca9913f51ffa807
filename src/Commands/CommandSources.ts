// Starts and stops every command source: stdin always, plus the broker's (Redis or AMQP). Each
// source runs supervised: one that dies of a defect is logged and restarted with backoff; one
// that keeps dying is reported broken (/healthz fails) and stops the gateway (Supervision).
import { Context, Effect, FiberSet, Layer } from "effect"
import type { Readiness } from "../Resilience/Readiness.ts"
import { type Supervision, supervised } from "../Resilience/Supervisor.ts"
import { BrokerCommandSource, type CommandSource } from "./CommandSource.ts"
import { makeStdinSource } from "./StdinSource.ts"
import type { CommandRouter } from "./Router.ts"

export class CommandSources extends Context.Service<CommandSources, {
  /** Starts reading commands (once the shards are starting: commands wait for READY anyway). */
  readonly start: Effect.Effect<void>
  /** Stops reading new commands; those already taken are still sent while the shards run. */
  readonly stop: Effect.Effect<void>
}>()("gateway/CommandSources") {}

export const makeCommandSources = (sources: ReadonlyArray<CommandSource>) =>
  Effect.gen(function*() {
    const context = yield* Effect.context<Readiness | Supervision>()
    const fibers = yield* FiberSet.make<void, never>()
    const run = (source: CommandSource) =>
      supervised(source.run, { name: `command source ${source.name}` }).pipe(Effect.provideContext(context))
    let started = false
    return CommandSources.of({
      start: Effect.suspend(() => {
        if (started) return Effect.void
        started = true
        return Effect.forEach(sources, (source) => FiberSet.run(fibers, run(source)), { discard: true })
      }),
      stop: FiberSet.clear(fibers)
    })
  })

export const CommandSourcesLive: Layer.Layer<CommandSources, never, CommandRouter | BrokerCommandSource | Readiness | Supervision> = Layer.effect(
  CommandSources,
  Effect.gen(function*() {
    const broker = yield* BrokerCommandSource
    const stdin = yield* makeStdinSource()
    return yield* makeCommandSources(broker.source === undefined ? [stdin] : [stdin, broker.source])
  })
)
