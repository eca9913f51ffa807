// What the HTTP server reports on: the generation of shards that publishes now. Its parts (status,
// outbox, broker) are built per generation and replaced when the cluster reshards, so the server,
// built once per process, reads them through this indirection.
import { Context, Layer } from "effect"
import type { Broker } from "../Broker/Broker.ts"
import type { Outbox } from "../Broker/Outbox.ts"
import type { ShardStatus } from "../Shard/ShardStatus.ts"

export interface GenerationParts {
  readonly generation: number
  readonly status: typeof ShardStatus.Service
  readonly outbox: Outbox
  readonly broker: typeof Broker.Service
}

export class LiveGeneration extends Context.Service<LiveGeneration, {
  /** The generation that publishes now; undefined while the first one is built. */
  readonly current: () => GenerationParts | undefined
  readonly set: (parts: GenerationParts) => void
}>()("gateway/LiveGeneration") {
  static readonly layer = Layer.sync(LiveGeneration, () => {
    let current: GenerationParts | undefined
    return LiveGeneration.of({ current: () => current, set: (parts) => void (current = parts) })
  })
}
