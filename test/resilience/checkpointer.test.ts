// The checkpointer through a failing shard store: every checkpoint is written once the store
// works again, and the checkpointer itself logs nothing above debug (the store reports its own
// outage once, on /readyz and in the log: see test/e2e/shard-store.test.ts), never a line per flush.
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { AppConfig } from "../../src/Config/AppConfig.ts"
import { Checkpointer, CheckpointerLive, type CheckpointSource } from "../../src/ShardStore/Checkpointer.ts"
import { makeMemoryStore } from "../../src/ShardStore/MemoryStore.ts"
import { ShardStore, ShardStoreError } from "../../src/ShardStore/ShardStore.ts"
import { testConfig } from "../brokers/support.ts"
import { collectLogs } from "../support/logs.ts"

describe("Checkpointer", () => {
  it.effect("retries a failing store on every flush, quietly, and writes the checkpoint when it works again", () =>
    Effect.gen(function*() {
      const memory = makeMemoryStore()
      let failing = true
      const store = ShardStore.of({
        ...memory,
        saveAll: (records) => failing ? Effect.fail(new ShardStoreError({ operation: "redis SET", cause: "the connection is down" })) : memory.saveAll(records)
      })
      const logs = collectLogs()
      const cursor: CheckpointSource = { shard: 3, sessionId: "s", resumeUrl: "wss://r", checkpoint: 10, dirty: false, writable: () => true }
      yield* Effect.gen(function*() {
        const checkpointer = yield* Checkpointer
        yield* checkpointer.track(cursor)
        ;(cursor as { checkpoint: number }).checkpoint = 42
        cursor.dirty = true
        for (let i = 0; i < 5; i++) yield* checkpointer.flush
        assert.isTrue(cursor.dirty, "still to be written")
        assert.strictEqual((yield* memory.load(3))?.seq, 10)
        failing = false
        yield* checkpointer.flush
        assert.isFalse(cursor.dirty)
        assert.strictEqual((yield* memory.load(3))?.seq, 42)
      }).pipe(
        Effect.scoped,
        Effect.provide(CheckpointerLive.pipe(Layer.provide(Layer.mergeAll(Layer.succeed(ShardStore, store), AppConfig.layer(testConfig({})))))),
        Effect.provide(logs.layer)
      )
      assert.deepStrictEqual(logs.lines.filter((l) => l.startsWith("Warn:") || l.startsWith("Error:")), [])
    }))
})
