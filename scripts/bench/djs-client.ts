// Peer client: discord.js' @discordjs/ws WebSocketManager, consume-only (count dispatches, do
// nothing else), in its own process. Started by the bench with fork() and a JSON argument.
import { REST } from "@discordjs/rest"
import { CompressionMethod, WebSocketManager, WebSocketShardEvents } from "@discordjs/ws"
import { Counter, serve } from "./rpc.ts"

export interface PeerParams {
  /** http://host:port of the fake: its REST routes live under /api. */
  readonly restUrl: string
  readonly gatewayUrl: string
  readonly token: string
  readonly shardCount: number
  readonly intents: number
  readonly compress: "zlib-stream" | "none"
  /** Identify buckets (the fake's max_concurrency); the ceiling paces by it, discord.js asks /gateway/bot. */
  readonly maxConcurrency?: number
}

const params = JSON.parse(process.argv[2] ?? "{}") as PeerParams
const counter = new Counter()

const rest = new REST({ api: `${params.restUrl}/api`, version: "10" }).setToken(params.token)
const manager = new WebSocketManager({
  token: params.token,
  intents: params.intents,
  rest,
  shardCount: params.shardCount,
  // node:zlib: the option that needs no native add-on (zlib-sync is optional and not installed).
  compression: params.compress === "zlib-stream" ? CompressionMethod.ZlibNative : null,
  // 1000 idle shards on two cores may take longer than the 15 s default to become READY.
  readyTimeout: null
})
manager.on(WebSocketShardEvents.Dispatch, () => counter.add(1, 0))
manager.on(WebSocketShardEvents.Error, (error) => process.stderr.write(`djs: ${String(error)}\n`))

serve({
  ...counter.handlers(),
  stop: async () => {
    await manager.destroy({ reason: "benchmark over" })
  }
})

manager.connect().catch((error: unknown) => {
  process.stderr.write(`djs: connect failed: ${error instanceof Error ? error.message : String(error)}\n`)
  process.exit(1)
})
