// Runs the fake Discord on its own, for the demo or manual testing:
//   node dist/testing/fake-discord/cli.js [--port 8787] [--token fake-token] [--shards 2]
//        [--max-concurrency 1] [--rate 2] [--heartbeat-interval 41250] [--guilds-per-shard 2]
//        [--min-shards 1] [--tag-connections] [--quiet]
// There is no control API: tests that need one (setShardCount, requireShardCount, ...) start the
// fake in-process with startFakeDiscord().
// Environment: FAKE_DISCORD_PORT, FAKE_DISCORD_TOKEN (flags win).
import { parseArgs } from "node:util"
import { startFakeDiscord } from "./FakeDiscord.ts"

function numberFlag(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined || value === "") return fallback
  const parsed = Number(value)
  if (!Number.isFinite(parsed) || parsed < 0) {
    process.stderr.write(`fake-discord: --${name} must be a non-negative number, got "${value}"\n`)
    process.exit(2)
  }
  return parsed
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      port: { type: "string" },
      host: { type: "string" },
      token: { type: "string" },
      shards: { type: "string" },
      "max-concurrency": { type: "string" },
      rate: { type: "string" },
      "heartbeat-interval": { type: "string" },
      "guilds-per-shard": { type: "string" },
      "min-shards": { type: "string" },
      "tag-connections": { type: "boolean", default: false },
      quiet: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false }
    },
    strict: true
  })
  if (values.help === true) {
    process.stderr.write(
      "usage: fake-discord [--port 8787] [--host 127.0.0.1] [--token fake-token] [--shards 2] [--max-concurrency 1]\n" +
        "                    [--rate 2] [--heartbeat-interval 41250] [--guilds-per-shard 2]\n" +
        "                    [--min-shards 1] (smaller shard counts close with 4011) [--tag-connections] (d._conn = connection id) [--quiet]\n"
    )
    return
  }
  const token = values.token ?? process.env.FAKE_DISCORD_TOKEN ?? "fake-token"
  const rate = numberFlag("rate", values.rate, 2)
  const log = (line: string): void => {
    process.stderr.write(`[fake-discord] ${line}\n`)
  }
  const fake = await startFakeDiscord({
    port: numberFlag("port", values.port ?? process.env.FAKE_DISCORD_PORT, 8787),
    host: values.host ?? "127.0.0.1",
    token,
    shardCount: Math.max(1, numberFlag("shards", values.shards, 2)),
    maxConcurrency: Math.max(1, numberFlag("max-concurrency", values["max-concurrency"], 1)),
    heartbeatIntervalMs: numberFlag("heartbeat-interval", values["heartbeat-interval"], 41_250),
    guildsPerShard: numberFlag("guilds-per-shard", values["guilds-per-shard"], 2),
    minShardCount: Math.max(1, numberFlag("min-shards", values["min-shards"], 1)),
    tagConnections: values["tag-connections"] === true,
    log: values.quiet === true ? undefined : log
  })
  fake.startTrickle(rate)
  process.stderr.write(
    `fake Discord ready: REST ${fake.url}/api/v10, gateway ${fake.gatewayUrl}, ${rate} events/s\n` +
      `point the gateway at it with:\n` +
      `  DISCORD_API_PROTOCOL=http DISCORD_API_HOST=${fake.host} DISCORD_TOKEN=${token}\n`
  )

  let stopping = false
  const stop = (signal: string): void => {
    if (stopping) return
    stopping = true
    process.stderr.write(`fake Discord: ${signal}, shutting down\n`)
    fake.close().then(
      () => process.exit(0),
      () => process.exit(1)
    )
  }
  process.on("SIGINT", () => stop("SIGINT"))
  process.on("SIGTERM", () => stop("SIGTERM"))
}

main().catch((error: unknown) => {
  process.stderr.write(`fake-discord: ${error instanceof Error ? error.message : String(error)}\n`)
  process.exit(1)
})
