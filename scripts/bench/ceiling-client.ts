// The ceiling: the least a Node client must do per event — `ws` frames, one node:zlib inflate
// context per connection (public stream API), JSON.parse of every payload — plus identify and
// heartbeats, and the least identify pacing Discord accepts (per bucket, the next IDENTIFY 5 s and
// a 100 ms margin after the previous one; an op 9 answer queues the identify again). No reconnects,
// no other rate limits, no output. Started by the bench with fork().
import { constants, createInflate } from "node:zlib"
import WebSocket from "ws"
import type { PeerParams } from "./djs-client.ts"
import { Counter, serve } from "./rpc.ts"

const params = JSON.parse(process.argv[2] ?? "{}") as PeerParams
const counter = new Counter()
const sockets: Array<WebSocket> = []

// One queue per identify bucket (shard_id % max_concurrency): send, then the next one 5.1 s later.
// Exactly 5 s is not enough: Discord (and the fake) time arrivals, which jitter.
const IDENTIFY_WINDOW_MS = 5_100
const maxConcurrency = Math.max(1, params.maxConcurrency ?? params.shardCount)
const identifyQueues = new Map<number, { busy: boolean; waiting: Array<() => void> }>()
function identifyInTurn(shardId: number, send: () => void): void {
  const bucket = shardId % maxConcurrency
  let queue = identifyQueues.get(bucket)
  if (queue === undefined) identifyQueues.set(bucket, (queue = { busy: false, waiting: [] }))
  const q = queue
  const next = (): void => {
    const run = q.waiting.shift()
    if (run === undefined) {
      q.busy = false
      return
    }
    run()
    setTimeout(next, IDENTIFY_WINDOW_MS)
  }
  q.waiting.push(send)
  if (!q.busy) {
    q.busy = true
    next()
  }
}

const isSyncFlushEnd = (b: Buffer): boolean => b.length >= 4 && b[b.length - 4] === 0 && b[b.length - 3] === 0 && b[b.length - 2] === 0xff && b[b.length - 1] === 0xff

function connect(shardId: number): void {
  const query = params.compress === "zlib-stream" ? "?v=10&encoding=json&compress=zlib-stream" : "?v=10&encoding=json"
  const ws = new WebSocket(params.gatewayUrl + "/" + query, { perMessageDeflate: false, maxPayload: 0 })
  sockets.push(ws)
  let seq: number | null = null
  let heartbeat: ReturnType<typeof setInterval> | undefined

  const identify = (): void => {
    ws.send(JSON.stringify({
      op: 2,
      d: { token: params.token, intents: params.intents, shard: [shardId, params.shardCount], properties: { os: "linux", browser: "bench", device: "bench" } }
    }))
  }

  const onPayload = (text: string): void => {
    const payload = JSON.parse(text) as { op: number; s: number | null; d: { heartbeat_interval?: number } | null }
    switch (payload.op) {
      case 0:
        seq = payload.s
        counter.add(1, text.length)
        break
      case 10:
        heartbeat = setInterval(() => ws.send(JSON.stringify({ op: 1, d: seq })), payload.d?.heartbeat_interval ?? 41_250)
        identifyInTurn(shardId, identify)
        break
      case 9:
        identifyInTurn(shardId, identify)
        break
      case 1:
        ws.send(JSON.stringify({ op: 1, d: seq }))
        break
    }
  }

  if (params.compress === "zlib-stream") {
    const inflate = createInflate({ flush: constants.Z_SYNC_FLUSH, chunkSize: 64 * 1024 })
    let chunks: Array<Buffer> = []
    // A write's output is all pushed (synchronously, flowing mode) before its callback runs.
    inflate.on("data", (chunk: Buffer) => chunks.push(chunk))
    inflate.on("error", (error) => process.stderr.write(`ceiling: shard ${shardId}: ${error.message}\n`))
    ws.on("message", (data: Buffer) => {
      if (!isSyncFlushEnd(data)) {
        inflate.write(data)
        return
      }
      inflate.write(data, () => {
        const text = (chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)).toString("utf8")
        chunks = []
        onPayload(text)
      })
    })
  } else {
    ws.on("message", (data: Buffer) => onPayload(data.toString("utf8")))
  }
  ws.on("error", (error) => process.stderr.write(`ceiling: shard ${shardId}: ${error.message}\n`))
  ws.on("close", () => clearInterval(heartbeat))
}

for (let shardId = 0; shardId < params.shardCount; shardId++) connect(shardId)

serve({
  ...counter.handlers(),
  stop: () => {
    for (const ws of sockets) ws.close(4000, "benchmark over")
  }
})
