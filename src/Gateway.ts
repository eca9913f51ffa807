// The daemon's run: shards, the event path, checkpoints and command intake until a fatal close, a
// worker that cannot be kept running, or a stop signal; then the graceful shutdown the lifecycle
// promises: stop reading, deliver what was read, checkpoint, and only then close the sockets (with
// a resumable code) so the next start resumes every shard.
import { Deferred, Duration, Effect, Fiber } from "effect"
import { AppConfig } from "./Config/AppConfig.ts"
import { Outbox } from "./Broker/Outbox.ts"
import { CommandSources } from "./Commands/CommandSources.ts"
import { runEventPath } from "./EventPath.ts"
import { Supervision, supervised } from "./Resilience/Supervisor.ts"
import { Checkpointer } from "./ShardStore/Checkpointer.ts"
import { Sharder } from "./Shard/Sharder.ts"
import { watchShardCount } from "./Cluster/ShardCountWatch.ts"
import { ShardSession } from "./Shard/ShardSession.ts"
import { ShardStatus } from "./Shard/ShardStatus.ts"

export const runGateway = (stop: Deferred.Deferred<string>, started: Deferred.Deferred<void>) =>
  Effect.gen(function*() {
    const config = yield* AppConfig
    const sharder = yield* Sharder
    const session = yield* ShardSession
    const checkpointer = yield* Checkpointer
    const outbox = yield* Outbox
    const status = yield* ShardStatus
    const commands = yield* CommandSources
    const supervision = yield* Supervision

    const publisher = yield* Effect.forkScoped(supervised(runEventPath, { name: "publisher" }))
    const checkpoints = yield* Effect.forkScoped(supervised(checkpointer.run, { name: "checkpointer" }))
    const shards = yield* Effect.forkScoped(sharder.run)
    yield* Effect.forkScoped(watchShardCount)
    // Commands wait in their shard's queue until it is READY, so reading them can start now.
    yield* commands.start
    yield* Deferred.succeed(started, undefined)
    // A supervised worker that gave up fails the run here (after /healthz turned 503): there is
    // no graceful shutdown without it, so the scope closes and the process exits non-zero.
    const signal = yield* Effect.raceAllFirst([Fiber.join(shards), Deferred.await(stop), Deferred.await(supervision.broken)])

    yield* Effect.logInfo(`${signal}: shutting down`)
    status.markStopping()
    // A cluster member leaves first: the others take its shards as soon as their leases are released.
    yield* sharder.leave
    // No new commands; those already taken are still sent while the sockets stay open below.
    yield* commands.stop
    session.stopReading()
    // End the event path: it delivers what the outbox holds, then completes. Leave a little of
    // the budget for the checkpoint write and the socket closes.
    yield* outbox.end
    const drainBudget = Duration.millis(Math.max(0, config.shutdownTimeoutMs - 1_500))
    const drained = yield* Fiber.join(publisher).pipe(Effect.timeoutOption(drainBudget))
    if (drained._tag === "None") {
      yield* Effect.logWarning(
        `${outbox.size()} event(s) not delivered before the shutdown timeout; they will be replayed on the next start`
      )
    }
    yield* Fiber.interrupt(checkpoints)
    yield* checkpointer.flush
    yield* Fiber.interrupt(shards)
    yield* Fiber.interrupt(publisher)
    yield* Effect.logInfo("stopped")
  })
