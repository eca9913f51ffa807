// The bench's handle on the fake Discord runner process (fake-runner.ts).
import { fork } from "node:child_process"
import type { ChildProcess } from "node:child_process"
import { resolve } from "node:path"
import type { FakeDiscordOptions } from "../../test/fake-discord/FakeDiscord.ts"
import type { BlastLargeParams, BlastMixParams, BlastMixResult } from "./fake-runner.ts"
import { stop, tail, track } from "./proc.ts"
import { RpcClient } from "./rpc.ts"

export const TOKEN = "bench-token"

export interface FakeStats {
  readonly identifies: number
  readonly resumes: number
  readonly violations: number
  /** Smallest gap between two identifies of one bucket among the violations, ms. */
  readonly closestViolationMs: number | null
  readonly connections: number
  readonly closes: number
}

export class FakeProcess {
  readonly child: ChildProcess
  readonly rpc: RpcClient
  readonly stderr: () => string
  host = ""
  url = ""
  gatewayUrl = ""

  private constructor(child: ChildProcess) {
    this.child = child
    this.rpc = new RpcClient(child, "fake Discord")
    this.stderr = tail(child.stderr)
  }

  get pid(): number {
    return this.child.pid!
  }

  /** Forks the runner and starts a fake Discord with `options` (token fixed, replay buffer small). */
  static async start(options: FakeDiscordOptions): Promise<FakeProcess> {
    const child = track(fork(resolve(import.meta.dirname, "fake-runner.ts"), [], { stdio: ["ignore", "inherit", "pipe", "ipc"] }))
    const fake = new FakeProcess(child)
    // Replays are not benchmarked: a small buffer keeps the fake's memory flat under blast.
    const info = await fake.rpc.call<{ host: string; url: string; gatewayUrl: string }>("start", { replayLimit: 64, ...options, token: TOKEN }, 30_000)
    fake.host = info.host
    fake.url = info.url
    fake.gatewayUrl = info.gatewayUrl
    return fake
  }

  waitReady(n: number, timeoutMs: number): Promise<void> {
    return this.rpc.call("waitReady", { n, timeoutMs }, timeoutMs + 5_000)
  }

  ready(): Promise<number> {
    return this.rpc.call("ready")
  }

  stats(): Promise<FakeStats> {
    return this.rpc.call("stats")
  }

  /** Generates the shards' event streams (not timed); blastMix then sends them. */
  prepareMix(params: BlastMixParams): Promise<{ shards: number; events: number }> {
    return this.rpc.call("prepareMix", params, 60_000)
  }

  blastMix(timeoutMs: number): Promise<BlastMixResult> {
    return this.rpc.call("blastMix", null, timeoutMs)
  }

  blastLarge(params: BlastLargeParams, timeoutMs: number): Promise<{ ms: number; bytes: number }> {
    return this.rpc.call("blastLarge", params, timeoutMs)
  }

  async close(): Promise<void> {
    try {
      await this.rpc.call("close", null, 10_000)
    } catch {
      // Stopping the process below is enough.
    }
    if (this.child.connected) this.child.disconnect()
    await stop(this.child, 5_000)
  }
}
