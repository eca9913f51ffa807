// Starts and stops every command source: stdin always, plus the broker's (Redis or AMQP). A
// source that crashes is logged and restarted; none of them can stop the gateway.
import { Cause, Context, Effect, Exit, FiberSet, Layer } from "effect"
import { BrokerCommandSource, type CommandSource } from "./CommandSource.ts"
import { makeStdinSource } from "./StdinSource.ts"
import type { CommandRouter } from "./Router.ts"

const RESTART_AFTER = "5 seconds"

export class CommandSources extends Context.Service<CommandSources, {
  /** Starts reading commands (once the shards are starting: commands wait for READY anyway). */
  readonly start: Effect.Effect<void>
  /** Stops reading new commands; those already taken are still sent while the shards run. */
  readonly stop: Effect.Effect<void>
}>()("gateway/CommandSources") {}

const supervise = (source: CommandSource): Effect.Effect<void> =>
  Effect.gen(function*() {
    for (;;) {
      const exit = yield* Effect.exit(source.run)
      if (Exit.isSuccess(exit) || Cause.hasInterruptsOnly(exit.cause)) return
      yield* Effect.logError(`command source ${source.name} crashed; restarting it in ${RESTART_AFTER}: ${Cause.pretty(exit.cause)}`)
      yield* Effect.sleep(RESTART_AFTER)
    }
  })

export const makeCommandSources = (sources: ReadonlyArray<CommandSource>) =>
  Effect.gen(function*() {
    const fibers = yield* FiberSet.make<void, never>()
    let started = false
    return CommandSources.of({
      start: Effect.suspend(() => {
        if (started) return Effect.void
        started = true
        return Effect.forEach(sources, (source) => FiberSet.run(fibers, supervise(source)), { discard: true })
      }),
      stop: FiberSet.clear(fibers)
    })
  })

export const CommandSourcesLive: Layer.Layer<CommandSources, never, CommandRouter | BrokerCommandSource> = Layer.effect(
  CommandSources,
  Effect.gen(function*() {
    const broker = yield* BrokerCommandSource
    const stdin = yield* makeStdinSource()
    return yield* makeCommandSources(broker.source === undefined ? [stdin] : [stdin, broker.source])
  })
)
