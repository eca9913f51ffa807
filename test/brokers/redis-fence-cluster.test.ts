// The publish fence on a Redis Cluster: each stream's fence hash shares the stream's hash slot, so
// the fenced-publish script (one per stream, on that stream's node) and raise() work across nodes.
// Streams are spread over several slots, hence several nodes.
import { assert, describe, it } from "@effect/vitest"
import { Effect, Redacted } from "effect"
import { Cluster } from "ioredis"
import type { DispatchEvent } from "../../src/Broker/DispatchEvent.ts"
import { makeRedisBroker } from "../../src/Broker/RedisBroker.ts"
import { fenceKey, makeRedisFence } from "../../src/Broker/RedisFence.ts"
import { makeRedisClient } from "../../src/Redis/RedisClient.ts"
import { type RedisCluster, startRedisCluster } from "../support/redisCluster.ts"

const event = (t: string, shard: number, seq: number, epoch: number): DispatchEvent => ({
  t,
  shard,
  seq,
  epoch,
  data: Buffer.from(JSON.stringify({ seq })),
  receipt: { accepted: () => {}, current: () => true }
})

describe("Redis publish fence on a Redis Cluster", () => {
  it.live("refuses stale epochs per stream on every node, and raise() fences every stream", () =>
    Effect.gen(function*() {
      const cluster: RedisCluster = yield* Effect.acquireRelease(Effect.promise(startRedisCluster), (c) => Effect.promise(c.stop))
      const urls = cluster.urls.split(",")
      const connection = yield* makeRedisClient(urls.map((u) => Redacted.make(u)))
      const prefix = "gateway:"
      const streams = ["MESSAGE_CREATE", "GUILD_CREATE", "TYPING_START", "PRESENCE_UPDATE", "MESSAGE_REACTION_ADD", "VOICE_STATE_UPDATE"]
      const reader = new Cluster(urls.map((u) => ({ host: "127.0.0.1", port: Number(new URL(u).port) })))
      yield* Effect.addFinalizer(() => Effect.promise(() => reader.quit().catch(() => undefined)))
      const slots = new Set(yield* Effect.promise(() => Promise.all(streams.map((s) => reader.cluster("KEYSLOT", s)))))
      assert.isAtLeast(slots.size, 3, "the streams span several slots")

      const publishedStreams = new Set<string>()
      const broker = makeRedisBroker(connection, { encoding: "json", messageTimeoutMs: 60_000, maxLength: 1_000, fencePrefix: prefix, publishedStreams })
      const fence = makeRedisFence(connection, { prefix, streams: () => publishedStreams })

      // Shard 0 at epoch 2 everywhere, then shard 1 at epoch 3, interleaved.
      const first = streams.flatMap((t, i) => [event(t, 0, i + 1, 2), event(t, 1, i + 1, 3)])
      assert.deepStrictEqual((yield* broker.publish(first)).refused, [])
      // Another process claims shard 0 at epoch 5: its fence goes up on every stream published to.
      yield* fence.raise(0, 5)
      const second = streams.flatMap((t, i) => [event(t, 0, 100 + i, 2), event(t, 1, 100 + i, 3)])
      const result = yield* broker.publish(second)
      assert.sameMembers([...result.refused], second.filter((e) => e.shard === 0))

      for (const s of streams) {
        const entries = yield* Effect.promise(() => reader.xrange(s, "-", "+"))
        const i = streams.indexOf(s)
        assert.deepStrictEqual(entries.map(([, f]) => `${f[3]}:${f[5]}`), [`0:${i + 1}`, `1:${i + 1}`, `1:${100 + i}`], s)
        assert.strictEqual(yield* Effect.promise(() => reader.hget(fenceKey(s, prefix), "0")), "5")
      }
    }), 60_000)
})
