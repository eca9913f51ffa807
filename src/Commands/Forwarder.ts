// How a command reaches a shard's inbox through the broker, so the process that runs the shard
// sends it. Implemented by the Redis and AMQP command modules; with the stdout broker there is
// nothing to forward through.
import { Context, Data, Effect, Layer } from "effect"
import type { Part } from "./Targets.ts"

export class ForwardError extends Data.TaggedError("ForwardError")<{
  readonly broker: string
  readonly reason: string
  readonly cause?: unknown
}> {
  override get message() {
    return `forwarding commands through ${this.broker}: ${this.reason}`
  }
}

export class CommandForwarder extends Context.Service<CommandForwarder, {
  /** "redis" or "amqp"; undefined when commands cannot leave this process. */
  readonly broker: string | undefined
  /** Appends each payload to its shard's inbox; succeeds once the broker holds all of them. */
  readonly forward: (parts: ReadonlyArray<Part>) => Effect.Effect<void, ForwardError>
}>()("gateway/CommandForwarder") {
  static readonly none = Layer.succeed(CommandForwarder, {
    broker: undefined,
    forward: () => Effect.fail(new ForwardError({ broker: "stdout", reason: "the stdout broker cannot forward commands" }))
  })
}
