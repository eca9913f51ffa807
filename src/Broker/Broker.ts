// Where events go. A broker publishes a batch and succeeds only once the far side has accepted
// every event in it (flushed, acknowledged, confirmed): the checkpoint follows that success.
import { Context, Data, Effect } from "effect"
import type { DispatchEvent } from "./DispatchEvent.ts"

export class BrokerError extends Data.TaggedError("BrokerError")<{
  readonly broker: string
  readonly reason: string
  readonly cause?: unknown
}> {
  override get message() {
    return `${this.broker} broker: ${this.reason}`
  }
}

export class Broker extends Context.Service<Broker, {
  readonly name: string
  readonly publish: (batch: ReadonlyArray<DispatchEvent>) => Effect.Effect<void, BrokerError>
  /** Whether the broker is reachable now (for /readyz). */
  readonly connected: () => boolean
}>()("gateway/Broker") {}
