// The stdin source reads the platform's Stdio service: with a test's own standard input (split at
// awkward places, one bad line), commands are routed, the bad one refused, and the end of input
// only ends the source.
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Stdio, Stream } from "effect"
import { CommandStats } from "../../src/Commands/CommandStats.ts"
import { makeStdinSource } from "../../src/Commands/StdinSource.ts"
import { recorder, routerLayer } from "./support.ts"

const bytes = (text: string) => new TextEncoder().encode(text)

describe("stdin source over Stdio", () => {
  it.live("routes what a swapped standard input carries, refuses a bad line, and ends with the input", () => {
    const { sent, submit } = recorder()
    const input = "{\"op\":3,\"shard_id\":1,\"d\":{\"since\":null,\"activities\":[],\"status\":\"idle\",\"afk\":false}}\nnot json\n{\"op\":3,\"shard_id\":0,\"d\":{\"since\":null,\"activities\":[],\"status\":\"dnd\",\"afk\":false}}\n"
    const stdin = Stream.fromIterable([bytes(input.slice(0, 17)), bytes(input.slice(17, 95)), bytes(input.slice(95))])
    return Effect.gen(function*() {
      const source = yield* makeStdinSource()
      yield* source.run
      for (let i = 0; i < 200 && sent.length < 2; i++) yield* Effect.sleep(10)
      // Each shard has its own sender: the order across shards is not fixed.
      assert.deepStrictEqual(sent.map((s) => [s.shard, JSON.parse(s.payload).d.status]).sort(), [[0, "dnd"], [1, "idle"]])
      const stats = yield* CommandStats
      assert.strictEqual(stats.refused.get("malformed"), 1)
    }).pipe(Effect.provide(Layer.merge(routerLayer({ shardIds: [0, 1], shardCount: 2, submit }), Stdio.layerTest({ stdin }))))
  })
})
