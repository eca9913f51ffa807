// Every shard store read and write is bounded in time, and the store's health is visible: a store
// that fails or does not answer makes /readyz fail with the reason, is logged once when it starts
// failing and once when it works again, and can never hold a graceful shutdown past its budget
// (the shutdown leaves 1.5 s for the last checkpoint write and the socket closes).
import { Effect } from "effect"
import type { Readiness } from "../Resilience/Readiness.ts"
import { outageLog } from "../Resilience/OutageLog.ts"
import { ShardStore, ShardStoreError } from "./ShardStore.ts"

/** How long one store operation may take before it counts as failed (and is retried later). */
export const STORE_TIMEOUT_MS = 1_000

/** The component name on /readyz and in the outage log. */
export const STORE_COMPONENT = "shard store"

type Store = ShardStore["Service"]

/**
 * `inner` with a timeout on every operation and its health reported. `where` names the store in a
 * timeout's message ("file /var/lib/gateway/shards.json", "redis 127.0.0.1:6379").
 * Only writes clear a problem: a read can be served from memory (the file store) while writes fail.
 */
export const withStoreHealth = (inner: Store, readiness: Readiness, where: string, timeoutMs = STORE_TIMEOUT_MS): Store => {
  const outage = outageLog(STORE_COMPONENT)
  const failed = (error: ShardStoreError) =>
    Effect.andThen(Effect.sync(() => readiness.report(STORE_COMPONENT, error.reason)), outage.failed(error.reason))
  const worked = Effect.andThen(Effect.sync(() => readiness.report(STORE_COMPONENT, undefined)), outage.succeeded)
  const guard = <A>(operation: string, write: boolean, effect: Effect.Effect<A, ShardStoreError>) =>
    effect.pipe(
      Effect.timeoutOrElse({
        duration: timeoutMs,
        orElse: () => Effect.fail(new ShardStoreError({ operation: `${operation} (${where})`, cause: `no answer within ${timeoutMs} ms` }))
      }),
      Effect.tapError(failed),
      Effect.tap(() => (write ? worked : Effect.void))
    )
  return ShardStore.of({
    load: (shard) => guard(`read of shard ${shard}`, false, inner.load(shard)),
    save: (shard, record) => guard(`write of shard ${shard}`, true, inner.save(shard, record)),
    saveAll: (records) => guard(`write of ${records.size} shard(s)`, true, inner.saveAll(records)),
    clear: (shard) => guard(`clear of shard ${shard}`, true, inner.clear(shard))
  })
}
