// [limits]: the hard caps on memory taken by what Discord sends, from gateway.toml and env.
import { Effect, Exit } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { ConfigError } from "../src/Config/ConfigError.ts"
import { loadConfig } from "../src/Config/load.ts"

const BASE_ENV = { DISCORD_TOKEN: "limits-test-token.abc.def", DISCORD_EVENTS: "MESSAGE_CREATE" }
const MiB = 1024 * 1024

const dirs: Array<string> = []
afterAll(() => dirs.forEach((dir) => fs.rmSync(dir, { recursive: true, force: true })))

const run = (env: Record<string, string>, toml?: string) => {
  const cwd = fs.mkdtempSync(path.join(os.tmpdir(), "gateway-limits-"))
  dirs.push(cwd)
  if (toml !== undefined) fs.writeFileSync(path.join(cwd, "gateway.toml"), toml)
  return Effect.runPromiseExit(loadConfig({ argv: [], env: { ...BASE_ENV, ...env }, cwd }))
}

const limitsOf = async (env: Record<string, string>, toml?: string) => {
  const exit = await run(env, toml)
  if (Exit.isFailure(exit)) throw new Error(`expected success, got ${String(exit.cause)}`)
  return exit.value.limits
}

const errorOf = async (env: Record<string, string>, toml?: string): Promise<ConfigError> => {
  const exit = await run(env, toml)
  if (Exit.isSuccess(exit)) throw new Error("expected a config error")
  const error = exit.cause.reasons.map((r) => ("error" in r ? r.error : undefined)).find((e) => e instanceof ConfigError)
  if (!(error instanceof ConfigError)) throw new Error(`expected a ConfigError, got ${String(exit.cause)}`)
  return error
}

describe("[limits]", () => {
  it("defaults to 32 MiB each", async () => {
    expect(await limitsOf({})).toEqual({ frameBytes: 32 * MiB, payloadBytes: 32 * MiB, partialBytes: 32 * MiB })
  })

  it("reads sizes with units from gateway.toml, and env wins", async () => {
    const toml = `[limits]\nframe_size = "64MiB"\npayload_size = 1048576\npartial_size = "8 MB"\n`
    expect(await limitsOf({}, toml)).toEqual({ frameBytes: 64 * MiB, payloadBytes: MiB, partialBytes: 8_000_000 })
    expect(await limitsOf({ LIMITS_PAYLOAD_SIZE: "2MiB", LIMITS_FRAME_SIZE: "100000", LIMITS_PARTIAL_SIZE: "512KiB" }, toml))
      .toEqual({ frameBytes: 100_000, payloadBytes: 2 * MiB, partialBytes: 512 * 1024 })
  })

  it("refuses sizes that are not sizes, or out of range, naming the key", async () => {
    for (const [env, key] of [
      [{ LIMITS_PAYLOAD_SIZE: "lots" }, "LIMITS_PAYLOAD_SIZE"],
      [{ LIMITS_FRAME_SIZE: "1KiB" }, "LIMITS_FRAME_SIZE"],
      [{ LIMITS_PARTIAL_SIZE: "2GiB" }, "LIMITS_PARTIAL_SIZE"],
      [{ LIMITS_PAYLOAD_SIZE: "32 furlongs" }, "LIMITS_PAYLOAD_SIZE"]
    ] as const) {
      const error = await errorOf(env)
      expect(error.key).toBe(key)
      expect(error.message).toContain("expected a size in bytes from 64KiB to 1GiB")
    }
    expect((await errorOf({}, `[limits]\npayload_sise = 1\n`)).message).toMatch(/payload_size/)
  })
})
