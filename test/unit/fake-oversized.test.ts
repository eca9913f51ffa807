// The fake Discord's oversized payloads (FakeDiscord.sendOversized), read by a ws client through
// the gateway's Inflater with its caps: the bomb and the huge plain payload are dropped and
// reported with their type and seq, the client's memory stays bounded, and the next dispatch
// arrives. Also what the lead's end-to-end tests rely on: a frame over ws maxPayload closes the
// connection with 1009, and split unfinished zlib data past its cap fails as not resumable.
import { afterEach, describe, expect, it } from "vitest"
import WebSocket from "ws"
import { type DroppedPayload, InflateError, makeInflater } from "../../src/Transport/Inflater.ts"
import { type FakeDiscord, startFakeDiscord } from "../fake-discord/FakeDiscord.ts"

const MiB = 1024 * 1024
const fakes: Array<FakeDiscord> = []
const sockets: Array<WebSocket> = []
afterEach(async () => {
  for (const ws of sockets.splice(0)) ws.terminate()
  for (const fake of fakes.splice(0)) await fake.close()
})

type Kind = "zlib-stream" | "zstd-stream" | "none"

/** A minimal shard: identifies, decodes every message through the capped Inflater. */
const connect = async (fake: FakeDiscord, kind: Kind, caps: { frame: number; payload: number; partial: number }) => {
  const ws = new WebSocket(`${fake.gatewayUrl}/?v=10&encoding=json${kind === "none" ? "" : `&compress=${kind}`}`, { maxPayload: caps.frame })
  sockets.push(ws)
  const payloads: Array<{ op: number; t: string | null; s: number | null; d: unknown }> = []
  const oversized: Array<DroppedPayload> = []
  const errors: Array<InflateError> = []
  let rssPeak = 0
  const inflater = makeInflater(kind, {
    onPayload: (bytes) => payloads.push(JSON.parse(bytes.toString())),
    onError: (e) => errors.push(e),
    onOversized: (d) => oversized.push(d)
  }, false, { maxPayloadBytes: caps.payload, maxPendingBytes: caps.partial })
  ws.on("message", (data: Buffer) => {
    try {
      inflater.push(data)
    } catch (e) {
      if (e instanceof InflateError) errors.push(e)
      else throw e
    }
    rssPeak = Math.max(rssPeak, process.memoryUsage().rss)
  })
  const socketErrors: Array<Error & { code?: string }> = []
  ws.on("error", (e) => socketErrors.push(e))
  const closed = new Promise<number>((resolve) => ws.on("close", (code) => resolve(code)))
  await new Promise<void>((resolve, reject) => {
    ws.once("open", () => resolve())
    ws.once("error", reject)
  })
  ws.send(JSON.stringify({ op: 2, d: { token: fake.token, intents: 0, properties: { os: "linux", browser: "t", device: "t" }, shard: [0, 1] } }))
  await fake.waitFor(() => fake.readyShards().length === 1, 10_000, "READY")
  return { ws, payloads, oversized, errors, socketErrors, closed, rssPeak: () => rssPeak }
}

describe.each(["zlib-stream", "zstd-stream", "none"] as const)("sendOversized over %s", (kind) => {
  it("is dropped by the capped Inflater with its t and s, and the next dispatch arrives", async () => {
    const fake = await startFakeDiscord({ token: "oversized-token", shardCount: 1 })
    fakes.push(fake)
    // A compressed bomb of 300 MB; uncompressed, 50 MB (under the frame cap, over the payload cap).
    const bytes = kind === "none" ? 50_000_000 : 300 * MiB
    const client = await connect(fake, kind, { frame: 64 * MiB, payload: 32 * MiB, partial: 32 * MiB })
    const rssBefore = process.memoryUsage().rss
    const seq = fake.sendOversized(0, { bytes, t: "GUILD_CREATE" })
    const after = fake.dispatch(0, "MESSAGE_CREATE", { id: "1", content: "after the big one" })
    await fake.waitFor(() => client.payloads.some((p) => p.s === after), 60_000, "the dispatch after it")
    const growth = (Math.max(client.rssPeak(), process.memoryUsage().rss) - rssBefore) / MiB
    console.log(`fake ${kind}: oversized payload of ${bytes} bytes; client RSS grew ${growth.toFixed(1)} MiB (fake and client share this process)`)
    expect(client.errors).toEqual([])
    expect(client.oversized).toEqual([{ bytes, limit: 32 * MiB, op: 0, t: "GUILD_CREATE", s: seq }])
    expect(client.payloads.filter((p) => p.s === seq)).toEqual([])
    expect(client.payloads.at(-1)).toMatchObject({ t: "MESSAGE_CREATE", s: after })
  }, 120_000)
})

describe("sendOversized past the stream's limits", () => {
  it("a plain payload over ws maxPayload ends the connection (ws error WS_ERR_UNSUPPORTED_MESSAGE_LENGTH, close 1009 sent)", async () => {
    const fake = await startFakeDiscord({ token: "oversized-token", shardCount: 1 })
    fakes.push(fake)
    const client = await connect(fake, "none", { frame: 32 * MiB, payload: 32 * MiB, partial: 32 * MiB })
    const seq = fake.sendOversized(0, { bytes: 50_000_000 })
    await client.closed
    expect(client.socketErrors.map((e) => e.code)).toEqual(["WS_ERR_UNSUPPORTED_MESSAGE_LENGTH"])
    expect(client.oversized).toEqual([])
    expect(client.payloads.filter((p) => p.s === seq)).toEqual([])
    console.log(`fake none over maxPayload: ${client.socketErrors[0]!.message}; fake saw closes ${JSON.stringify(fake.closes.map((c) => [c.by, c.code]))}`)
  }, 60_000)

  it("split unfinished zlib data past its cap fails as not resumable", async () => {
    const fake = await startFakeDiscord({ token: "oversized-token", shardCount: 1 })
    fakes.push(fake)
    const client = await connect(fake, "zlib-stream", { frame: 32 * MiB, payload: 32 * MiB, partial: 4 * MiB })
    fake.sendOversized(0, { bytes: 16 * MiB, pad: "random", split: true })
    await fake.waitFor(() => client.errors.length > 0, 30_000, "the inflater's error")
    expect(client.errors[0]!.resumable).toBe(false)
    expect(client.errors[0]!.message).toMatch(/unfinished compressed message grew past 4194304 bytes/)
  }, 60_000)
})
