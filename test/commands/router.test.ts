// The router over a fake session: local sends per shard in order, broadcasts, forwarding and the
// refusal of shards this process cannot reach.
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Layer } from "effect"
import { CommandStats } from "../../src/Commands/CommandStats.ts"
import { CommandForwarder, ForwardError } from "../../src/Commands/Forwarder.ts"
import { CommandRouter, describeShards } from "../../src/Commands/Router.ts"
import type { Part } from "../../src/Commands/Targets.ts"
import { recorder, routerLayer } from "./support.ts"

const presence = { since: null, activities: [], status: "online", afk: false }
const text = (value: unknown) => JSON.stringify(value)

/** Routes raw commands as the stdin source does. */
const dispatchAll = (raws: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const router = yield* CommandRouter
    for (const raw of raws) {
      const command = yield* router.decode(raw, "test")
      if (command !== undefined) yield* router.dispatch(command, "test")
    }
  })

const waitUntil = (check: () => boolean) =>
  Effect.gen(function*() {
    for (let i = 0; i < 200 && !check(); i++) yield* Effect.sleep(10)
    assert.isTrue(check(), "timed out")
  })

describe("CommandRouter", () => {
  it.live("sends on local shards: by shard_id, by guild, and a broadcast to each shard once", () => {
    const { sent, submit } = recorder()
    return Effect.gen(function*() {
      yield* dispatchAll([
        text({ op: 3, d: presence }),
        text({ op: 4, shard_id: 1, d: { guild_id: "1", channel_id: null } }),
        text({ op: 8, d: { guild_id: "4194304", query: "", limit: 0 } }) // (4194304 >> 22) % 2 = 1
      ])
      yield* waitUntil(() => sent.length === 4)
      assert.deepStrictEqual(sent.map((s) => s.shard).sort(), [0, 1, 1, 1])
      assert.deepStrictEqual(sent.filter((s) => s.shard === 0).map((s) => JSON.parse(s.payload).op), [3])
      const stats = yield* CommandStats
      assert.strictEqual(stats.received, 3)
      assert.strictEqual(stats.sent, 4)
    }).pipe(Effect.provide(routerLayer({ shardIds: [0, 1], shardCount: 2, submit })))
  })

  it.live("without a broker: refuses a shard run elsewhere, and a broadcast reaches the local shards only", () => {
    const { sent, submit } = recorder()
    return Effect.gen(function*() {
      yield* dispatchAll([text({ op: 3, shard_id: 1, d: presence }), text({ op: 3, d: presence })])
      yield* waitUntil(() => sent.length === 1)
      yield* Effect.sleep(50)
      assert.deepStrictEqual(sent.map((s) => s.shard), [0])
      const stats = yield* CommandStats
      assert.strictEqual(stats.refused.get("not_local"), 1)
    }).pipe(Effect.provide(routerLayer({ shardIds: [0], shardCount: 2, submit })))
  })

  it.live("forwards what runs elsewhere through the broker, retrying until it is accepted", () => {
    const { sent, submit } = recorder()
    const forwarded: Array<Part> = []
    let failures = 2
    const forwarder = Layer.succeed(CommandForwarder, {
      broker: "fake",
      forward: (parts) =>
        Effect.suspend(() => {
          if (failures-- > 0) return Effect.fail(new ForwardError({ broker: "fake", reason: "down" }))
          forwarded.push(...parts)
          return Effect.void
        })
    })
    return Effect.gen(function*() {
      yield* dispatchAll([text({ op: 3, d: presence }), text({ op: 3, shard_id: 2, d: presence })])
      yield* waitUntil(() => sent.length === 1 && forwarded.length === 3)
      assert.deepStrictEqual(sent.map((s) => s.shard), [0])
      assert.deepStrictEqual(forwarded.map((p) => p.shard).sort(), [1, 2, 2])
      const stats = yield* CommandStats
      assert.strictEqual(stats.forwarded, 3)
      // Work that was taken away is not retried.
      failures = 1_000
      const router = yield* CommandRouter
      const done = yield* router.forward([{ shard: 1, payload: "{}" }], () => false)
      assert.isFalse(done)
    }).pipe(Effect.provide(routerLayer({ shardIds: [0], shardCount: 3, submit, forwarder })))
  })

  it.live("keeps each shard's order, and a stuck shard does not hold up the others", () => {
    const { sent, submit: record } = recorder()
    return Effect.gen(function*() {
      const gate = yield* Deferred.make<void>()
      const submit = (shard: number, payload: string) =>
        Effect.andThen(shard === 0 ? Deferred.await(gate) : Effect.void, record(shard, payload))
      return yield* Effect.gen(function*() {
        const commands = Array.from({ length: 20 }, (_, i) => text({ op: 3, shard_id: i % 2, d: { ...presence, since: i } }))
        yield* dispatchAll(commands)
        yield* waitUntil(() => sent.length === 10)
        assert.isTrue(sent.every((s) => s.shard === 1))
        yield* Deferred.succeed(gate, undefined)
        yield* waitUntil(() => sent.length === 20)
        for (const shard of [0, 1]) {
          const order = sent.filter((s) => s.shard === shard).map((s) => JSON.parse(s.payload).d.since)
          assert.deepStrictEqual(order, Array.from({ length: 10 }, (_, i) => 2 * i + shard))
        }
      }).pipe(Effect.provide(routerLayer({ shardIds: [0, 1], shardCount: 2, submit })))
    })
  })

  it("describes shard sets compactly", () => {
    assert.strictEqual(describeShards([3, 0, 1, 2, 7, 9, 10]), "0-3, 7, 9-10")
  })
})
