// The stdout broker writes through the platform's Stdio service, so this test swaps standard
// output for its own sink: JSON lines or a MessagePack stream per batch, and a failing output
// turns into a BrokerError and a disconnected broker (so /readyz reports it).
import * as NodeStdio from "@effect/platform-node/NodeStdio"
import { decodeMulti } from "@msgpack/msgpack"
import { Effect, Layer, PlatformError, Sink, Stdio } from "effect"
import { describe, expect, it } from "vitest"
import { AppConfig } from "../../src/Config/AppConfig.ts"
import { Broker } from "../../src/Broker/Broker.ts"
import { StdoutBrokerLive } from "../../src/Broker/StdoutBroker.ts"
import { isNodeStdio } from "../../src/Process/Stdio.ts"
import { fakeBatch, testConfig } from "./support.ts"

const capture = () => {
  const chunks: Array<string | Uint8Array> = []
  const stdio = Stdio.layerTest({ stdout: () => Sink.forEach((chunk: string | Uint8Array) => Effect.sync(() => void chunks.push(chunk))) })
  return { chunks, stdio }
}

const withBroker = <A, E>(encoding: "json" | "msgpack", stdio: Layer.Layer<Stdio.Stdio>, use: (broker: Broker["Service"]) => Effect.Effect<A, E>) => {
  const config = testConfig({ broker: { type: "stdout", encoding } })
  return Effect.runPromise(Effect.flatMap(Effect.service(Broker), use).pipe(
    Effect.provide(StdoutBrokerLive.pipe(Layer.provide(Layer.merge(AppConfig.layer(config), stdio))))
  ))
}

describe("stdout broker", () => {
  it("writes each batch as JSON lines {event, data}, in one write", async () => {
    const { chunks, stdio } = capture()
    const batch = fakeBatch(["MESSAGE_CREATE", "GUILD_CREATE"], 3)
    await withBroker("json", stdio, (broker) => broker.publish(batch))
    expect(chunks).toHaveLength(1)
    const lines = Buffer.from(chunks[0]!).toString().split("\n")
    expect(lines.pop()).toBe("")
    expect(lines.map((l) => JSON.parse(l))).toEqual(batch.map((e) => ({ event: e.t, data: JSON.parse(e.data.toString()) })))
  })

  it("writes a MessagePack stream that decodes object after object", async () => {
    const { chunks, stdio } = capture()
    const batch = fakeBatch(["READY"], 2)
    await withBroker("msgpack", stdio, (broker) => broker.publish(batch))
    const objects = [...decodeMulti(chunks[0] as Uint8Array)]
    expect(objects).toEqual(batch.map((e) => ({ event: e.t, data: JSON.parse(e.data.toString()) })))
  })

  it("a failing output fails the publish with the reason and marks the broker disconnected", async () => {
    const broken = Stdio.layerTest({
      stdout: () => Sink.fail(PlatformError.systemError({ module: "Stdio", method: "stdout", _tag: "Unknown", description: "EPIPE: reader went away" }))
    })
    const result = await withBroker("json", broken, (broker) =>
      broker.publish(fakeBatch(["X"], 1)).pipe(Effect.flip, Effect.map((error) => ({ error, connected: broker.connected() }))))
    expect(result.error.message).toMatch(/^stdout broker: write failed: .*EPIPE/)
    expect(result.connected).toBe(false)
  })

  it("recognises the process's own Stdio (written to directly) and nothing else", async () => {
    const fromMain = await Effect.runPromise(Effect.provide(Effect.service(Stdio.Stdio), NodeStdio.layer))
    const fromTest = await Effect.runPromise(Effect.provide(Effect.service(Stdio.Stdio), capture().stdio))
    expect([isNodeStdio(fromMain), isNodeStdio(fromTest)]).toEqual([true, false])
  })
})
