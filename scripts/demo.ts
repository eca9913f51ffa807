// `npm run demo`: the bundled fake Discord with a few shards and a trickle of realistic events,
// and the gateway (dist/main.js) against it with the stdout broker. No token needed.
// Events print on stdout, logs on stderr; Ctrl-C stops both cleanly.
import { spawn } from "node:child_process"
import { resolve } from "node:path"
import { startFakeDiscord } from "../test/fake-discord/FakeDiscord.ts"

const shards = Number(process.env.DEMO_SHARDS ?? 3)
const rate = Number(process.env.DEMO_RATE ?? 4)
const token = "demo-token"

const fake = await startFakeDiscord({ token, shardCount: shards, maxConcurrency: shards, guildsPerShard: 2 })
process.stderr.write(`demo: fake Discord on ${fake.url} with ${shards} shards, ${rate} events/s\n`)

const gateway = spawn(process.execPath, [resolve(import.meta.dirname, "../dist/main.js")], {
  stdio: ["inherit", "inherit", "inherit"],
  // Its own process group: a terminal Ctrl-C reaches only this script, which forwards it once.
  detached: true,
  env: {
    ...process.env,
    DISCORD_TOKEN: token,
    DISCORD_EVENTS: process.env.DISCORD_EVENTS ?? "MESSAGE_CREATE,MESSAGE_REACTION_ADD,GUILD_CREATE,GUILD_MEMBER_UPDATE",
    DISCORD_API_PROTOCOL: "http",
    DISCORD_API_HOST: fake.host
  }
})

const ready = setInterval(() => {
  if (fake.readyShards().length < shards) return
  clearInterval(ready)
  fake.startTrickle(rate)
}, 100)

let stopping = false
const stop = (signal: NodeJS.Signals) => {
  if (stopping) return
  stopping = true
  clearInterval(ready)
  fake.stopTrickle()
  gateway.kill(signal)
}
process.on("SIGINT", () => stop("SIGINT"))
process.on("SIGTERM", () => stop("SIGTERM"))

process.on("exit", () => gateway.exitCode === null && gateway.kill("SIGKILL"))
gateway.on("exit", async (code) => {
  await fake.close()
  process.stderr.write(`demo: gateway exited with ${code}\n`)
  process.exit(code ?? 1)
})
