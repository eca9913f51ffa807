// Runs the shards this process owns, each as a supervised fiber bound to one claim of its lease.
// A shard's connection problems are its own (it reconnects), and so are its bugs (it is restarted).
//
// Static shard ids (`shards.ids`, or no Redis): every configured shard runs for the whole life of
// the process; losing a lease to another live process ends the gateway (two deployments
// configured for the same shards), and a lease that merely expired is claimed again.
//
// Automatic cluster (Redis, no `shards.ids`): the processes of one bot share the shards by
// themselves. Each looks every second at the members and the leases (Cluster/Assignment.ts) and
// claims free shards up to its share, takes orphans of a dead process, and hands a shard over
// (stop reading, deliver, checkpoint, close resumable, release the lease) when another member is
// below its share. The next owner claims it under a new epoch and RESUMEs it from the shard store.
import { Cause, Context, Deferred, Duration, Effect, Fiber, Layer, Metric, Option, Schedule } from "effect"
import { AppConfig } from "../Config/AppConfig.ts"
import { GatewayStats } from "../Metrics/GatewayStats.ts"
import { Backoffs } from "../Resilience/Backoff.ts"
import { Readiness } from "../Resilience/Readiness.ts"
import { supervise, type WorkerBroken } from "../Resilience/Supervisor.ts"
import { Checkpointer } from "../ShardStore/Checkpointer.ts"
import { ShardStore } from "../ShardStore/ShardStore.ts"
import { SessionBudget } from "../RateLimiter/SessionBudget.ts"
import { decide } from "../Cluster/Assignment.ts"
import { Membership } from "../Cluster/Membership.ts"
import { type LeaseCell, type LeaseLost, ShardClaimed, ShardLeases } from "../Cluster/ShardLeases.ts"
import { ShardOwnership } from "../Cluster/ShardOwnership.ts"
import { ShardPlan } from "../Cluster/ShardPlan.ts"
import { ReshardRequests } from "../Cluster/ReshardRequests.ts"
import { type FatalGatewayError, ShardSession } from "./ShardSession.ts"
import { ShardStatus } from "./ShardStatus.ts"

/** How often a cluster member looks at the members and leases. */
export const LOOK_EVERY_MS = 1_000

export class Sharder extends Context.Service<Sharder, {
  /** Runs until interrupted, or fails with the first fatal error. */
  readonly run: Effect.Effect<never, FatalGatewayError | ShardClaimed | WorkerBroken>
  /**
   * The start of a graceful stop: a cluster member leaves the member list, so the others count it
   * out and take its shards as soon as their leases are released.
   */
  readonly leave: Effect.Effect<void>
}>()("gateway/Sharder") {}

const clusterMembers = Metric.gauge("gateway_cluster_members", { description: "Gateway processes in the cluster, as this process last saw them" })
const shardsOwned = Metric.gauge("gateway_cluster_shards_owned", { description: "Shards this process runs now" })
const shardTarget = Metric.gauge("gateway_cluster_shards_target", { description: "Shards this process should run for an even split" })
const ownershipChanges = Metric.counter("gateway_cluster_ownership_changes_total", {
  description: "Shards gained or given up by this process, by kind: claimed (free), takeover (orphaned by a dead process), handoff (given to another process), lost (lease taken or expired)",
  incremental: true
})
const changed = (kind: "claimed" | "takeover" | "handoff" | "lost") => Metric.update(Metric.withAttributes(ownershipChanges, { kind }), 1)

export const SharderLive = Layer.effect(
  Sharder,
  Effect.gen(function*() {
    const config = yield* AppConfig
    const plan = yield* ShardPlan
    const session = yield* ShardSession
    const leases = yield* ShardLeases
    const ownership = yield* ShardOwnership
    const budget = yield* SessionBudget
    const store = yield* ShardStore
    const checkpointer = yield* Checkpointer
    const stats = yield* GatewayStats
    const readiness = yield* Readiness
    const membership = yield* Effect.serviceOption(Membership)
    const status = yield* ShardStatus
    const reshard = yield* Effect.serviceOption(ReshardRequests)

    // A defect (a bug) in one shard's fiber restarts that shard alone, with backoff; a typed
    // failure (a fatal close code) still ends the gateway, and so does a shard that keeps dying.
    const supervised = (shard: number, cell: LeaseCell) =>
      supervise(session.run(shard, cell), {
        name: `shard ${shard}`,
        backoff: Backoffs.reconnect,
        onRestart: () => Effect.sync(() => stats.shardRestarted(shard))
      }).pipe(Effect.provideService(Readiness, readiness))

    /** The shard runs until its claim is lost (the lease taken or expired). */
    const runClaimed = (shard: number, cell: LeaseCell): Effect.Effect<LeaseLost, FatalGatewayError | WorkerBroken> =>
      Effect.raceFirst(supervised(shard, cell), leases.lost(cell))

    // ---- static shard ids ------------------------------------------------------------------

    // Shards without a stored session will identify; make sure the daily budget covers them all
    // before spending any, so a restart loop cannot burn the last session starts.
    const needIdentify = Effect.map(
      Effect.forEach(plan.shardIds, (id) => Effect.map(store.load(id).pipe(Effect.orElseSucceed(() => undefined)), (r) => r === undefined)),
      (missing) => missing.filter(Boolean).length
    )

    const staticShard = (shard: number) =>
      Effect.gen(function*() {
        for (;;) {
          const cell = yield* leases.claim(shard)
          const lost = yield* runClaimed(shard, cell)
          // Another live process runs it: a deployment that runs one shard twice must not go on.
          if (lost.holder !== undefined) return yield* new ShardClaimed({ shard, owner: lost.holder })
          // Expired while nobody took it (Redis was unreachable): claim it again, resume from the store.
        }
      })

    const runStatic = Effect.gen(function*() {
      yield* budget.ensure(yield* needIdentify)
      // Each fiber retries its own connection; the first failure here is fatal and interrupts the rest.
      yield* Effect.forEach(plan.shardIds, staticShard, { concurrency: "unbounded", discard: true })
      return yield* Effect.never
    })

    // ---- automatic cluster -----------------------------------------------------------------

    const capacity = config.shards.max ?? Number.POSITIVE_INFINITY
    const allShards = Array.from({ length: plan.shardCount }, (_, i) => i)
    interface Slot {
      readonly cell: LeaseCell
      fiber: Fiber.Fiber<void> | undefined
      leaving: boolean
    }
    const slots = new Map<number, Slot>()
    let stopping = false

    const runCluster = (members: typeof Membership.Service) =>
      Effect.gen(function*() {
        const scope = yield* Effect.scope
        const fatal = yield* Deferred.make<never, FatalGatewayError | WorkerBroken>()
        let freeBefore = new Set<number>()
        let handingOff = false
        yield* Effect.logInfo(
          `automatic shard assignment: sharing ${plan.shardCount} shard(s) with the other processes of this bot through Redis` +
            (Number.isFinite(capacity) ? `; running at most ${capacity} here` : "")
        )

        const start = (shard: number, cell: LeaseCell, kind: "claimed" | "takeover") =>
          Effect.gen(function*() {
            const slot: Slot = { cell, fiber: undefined, leaving: false }
            slots.set(shard, slot)
            yield* ownership.acquire(shard)
            yield* changed(kind)
            yield* Effect.logInfo(
              kind === "takeover"
                ? `shard ${shard}: taken over from a process that stopped renewing its lease (epoch ${cell.epoch})`
                : `shard ${shard}: claimed (epoch ${cell.epoch})`
            )
            slot.fiber = yield* runClaimed(shard, cell).pipe(
              Effect.matchCauseEffect({
                onFailure: (cause) => {
                  if (Cause.hasInterruptsOnly(cause)) return Effect.void
                  // 4011 in a cluster that can reshard: the shard stays parked here (its lease held,
                  // so nobody else tries the count Discord refuses) until a generation with more
                  // shards replaces this one.
                  const error = Cause.findErrorOption(cause)
                  if (reshard._tag === "Some" && error._tag === "Some" && error.value._tag === "FatalGatewayError" && error.value.code === 4011) {
                    return Effect.logWarning(`${error.value.message}; parked until the cluster has resharded`).pipe(
                      Effect.andThen(reshard.value.request("required", `shard ${shard} of ${plan.shardCount} was closed with 4011`, plan.shardCount))
                    )
                  }
                  return Deferred.failCause(fatal, cause)
                },
                onSuccess: (lost) =>
                  Effect.gen(function*() {
                    if (slots.get(shard) !== slot) return
                    slots.delete(shard)
                    yield* ownership.release(shard)
                    yield* changed("lost")
                    yield* Effect.logWarning(
                      lost.holder === undefined
                        ? `shard ${shard}: stopped here, its lease expired (Redis unreachable or this process paused); it is claimed again when free`
                        : `shard ${shard}: stopped here, ${lost.holder} runs it now`
                    )
                  })
              }),
              Effect.asVoid,
              Effect.forkIn(scope)
            )
          })

        const handOff = (shard: number) =>
          Effect.gen(function*() {
            const slot = slots.get(shard)
            if (slot === undefined || slot.leaving) return
            slot.leaving = true
            const startedAt = performance.now()
            yield* ownership.release(shard)
            const drained = yield* session.drain(shard, config.shutdownTimeoutMs)
            // The checkpoint goes while the lease is still ours: the next owner resumes from it.
            yield* checkpointer.flush
            if (slot.fiber !== undefined) yield* Fiber.interrupt(slot.fiber)
            slots.delete(shard)
            yield* leases.release(shard)
            yield* changed("handoff")
            yield* Effect.logInfo(
              `shard ${shard}: handed off to another process in ${Math.round(performance.now() - startedAt)} ms` +
                (drained ? "" : " (not every event was delivered in time; the next owner replays them)")
            )
          })

        const look = Effect.gen(function*() {
          if (stopping) return
          yield* members.beat(capacity, slots.size)
          const alive = yield* members.members
          // Redis did not answer: claim nothing, hand nothing off, keep running what we hold.
          if (alive.length === 0) return
          const holders = yield* leases.holders(allShards)
          const held = new Set([...slots].filter(([, s]) => !s.leaving).map(([shard]) => shard))
          const decision = decide({ self: leases.owner, capacity, shardCount: plan.shardCount, members: alive, held, holders, freeBefore })
          const free = new Set<number>()
          holders.forEach((holder, shard) => holder === undefined && !slots.has(shard) && free.add(shard))
          yield* Metric.update(clusterMembers, alive.length)
          yield* Metric.update(shardTarget, decision.target)
          for (const shard of decision.claim) {
            if (stopping || slots.size >= capacity) break
            const cell = yield* leases.tryClaim(shard)
            if (cell === undefined) continue
            free.delete(shard)
            yield* start(shard, cell, freeBefore.has(shard) ? "takeover" : "claimed")
          }
          freeBefore = free
          status.markSettled()
          yield* Metric.update(shardsOwned, slots.size)
          if (decision.handOff !== undefined && !handingOff && !stopping) {
            handingOff = true
            yield* handOff(decision.handOff).pipe(
              Effect.ensuring(Effect.sync(() => { handingOff = false })),
              Effect.forkIn(scope)
            )
          }
        })

        yield* Effect.forkIn(Effect.repeat(look, Schedule.spaced(Duration.millis(LOOK_EVERY_MS))), scope)
        return yield* Deferred.await(fatal)
      })

    return Sharder.of({
      run: Option.match(membership, {
        onNone: () => runStatic,
        onSome: (members) => Effect.scoped(runCluster(members))
      }),
      leave: Option.match(membership, {
        onNone: () => Effect.void,
        onSome: (members) =>
          Effect.suspend(() => {
            stopping = true
            return members.leave
          })
      })
    })
  })
)
