// The `msgpack-json` encoding reproduces the Go gateway's bytes exactly, on every output.
import { decode, decodeMulti } from "@msgpack/msgpack"
import { describe, expect, it } from "vitest"
import { encodeData, encodeDataGo, encodeEvent, encodeEventGo } from "../../src/Broker/Encoding.ts"
import { makeStdoutBroker } from "../../src/Broker/StdoutBroker.ts"
import { Effect, Sink, Stdio } from "effect"
import { fakeEvent } from "../brokers/support.ts"
import { goRaw, goStdoutEvent } from "./goWire.ts"

/** An event whose `d` JSON text is exactly `bytes` UTF-8 bytes long (non-ASCII when asked). */
const eventOfSize = (bytes: number, wide = false) => {
  const overhead = `{"c":""}`.length
  const fill = wide ? "é".repeat(Math.floor((bytes - overhead) / 2)) + "x".repeat((bytes - overhead) % 2) : "x".repeat(bytes - overhead)
  const e = { ...fakeEvent("MESSAGE_CREATE", 0, 1, {}), data: Buffer.from(`{"c":"${fill}"}`) }
  expect(e.data.length).toBe(bytes)
  return e
}

describe("msgpack-json: the Go gateway's bytes", () => {
  it("writes the JSON text of d as an old-spec raw: fixstr < 32 bytes, str16 up to 65535, str32 above, never str8", () => {
    const cases: ReadonlyArray<readonly [number, number]> = [[8, 0xa8], [31, 0xbf], [32, 0xda], [255, 0xda], [256, 0xda], [65535, 0xda], [65536, 0xdb], [200_000, 0xdb]]
    for (const [size, first] of cases) {
      for (const wide of [false, true]) {
        const e = eventOfSize(size, wide)
        const bytes = encodeDataGo(e)
        expect(bytes[0]).toBe(first)
        expect(bytes.equals(goRaw(e.data.toString()))).toBe(true)
        // Any MessagePack decoder gives back the JSON text itself; JSON.parse gives d.
        expect(decode(bytes)).toBe(e.data.toString())
      }
    }
    // Discord's bytes are kept as they came (no re-serialisation: spacing and key order stay).
    const spaced = { ...fakeEvent("READY", 0, 1, {}), data: Buffer.from(`{ "b" : 1,"a":[ 2 ] }`) }
    expect(encodeData("msgpack-json", spaced).subarray(1).toString()).toBe(spaced.data.toString())
  })

  it("frames stdout as the Go gateway's {event, data} map, event names of 32+ bytes included", () => {
    for (const name of ["READY", "GUILD_SCHEDULED_EVENT_USER_REMOVE"]) {
      const e = { ...fakeEvent(name, 0, 1, {}), data: Buffer.from(`{"id":"1","content":"héllo"}`) }
      expect(encodeEventGo(e).equals(goStdoutEvent(name, e.data.toString()))).toBe(true)
      expect(Buffer.from(encodeEvent("msgpack-json", e)).equals(goStdoutEvent(name, e.data.toString()))).toBe(true)
      expect(decode(encodeEventGo(e))).toEqual({ event: name, data: e.data.toString() })
    }
    expect(encodeEventGo({ ...fakeEvent("GUILD_SCHEDULED_EVENT_USER_REMOVE", 0, 1, {}), data: Buffer.from("{}") })[7]).toBe(0xda)
  })

  it("keeps msgpack as the decoded object, for @spectacles/brokers consumers", () => {
    const e = fakeEvent("MESSAGE_CREATE", 1, 2, { id: "5", n: 3 })
    expect(decode(encodeData("msgpack", e))).toEqual({ id: "5", n: 3 })
  })

  it("the stdout broker writes a stream of Go-framed events", async () => {
    const chunks: Array<Buffer> = []
    const stdout = Stdio.layerTest({ stdout: () => Sink.forEach((chunk: string | Uint8Array) => Effect.sync(() => void chunks.push(Buffer.from(chunk)))) })
    const broker = makeStdoutBroker(Effect.runSync(Effect.provide(Effect.service(Stdio.Stdio), stdout)), "msgpack-json")
    const batch = [fakeEvent("MESSAGE_CREATE", 0, 1, { a: 1 }), fakeEvent("GUILD_CREATE", 1, 2, { b: "ü" })]
    await Effect.runPromise(broker.publish(batch))
    const written = Buffer.concat(chunks)
    expect(written.equals(Buffer.concat(batch.map((e) => goStdoutEvent(e.t, e.data.toString()))))).toBe(true)
    expect([...decodeMulti(written)]).toEqual(batch.map((e) => ({ event: e.t, data: e.data.toString() })))
  })
})
