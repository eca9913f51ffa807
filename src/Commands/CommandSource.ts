// Something commands arrive through (stdin, a Redis stream, an AMQP queue).
import { Context, type Effect, Layer } from "effect"

export interface CommandSource {
  /** For logs: "stdin", "redis", "amqp". */
  readonly name: string
  /**
   * Reads and routes commands until interrupted (or its input ends). Never fails: problems are
   * logged and retried. Interrupting it stops intake only; commands already taken are still
   * sent and acknowledged while the shards run.
   */
  readonly run: Effect.Effect<void>
}

/** The broker's command source: Redis SEND or AMQP group:SEND plus this process's shard inboxes. */
export class BrokerCommandSource extends Context.Service<BrokerCommandSource, {
  readonly source: CommandSource | undefined
}>()("gateway/BrokerCommandSource") {
  static readonly none = Layer.succeed(BrokerCommandSource, { source: undefined })
}
