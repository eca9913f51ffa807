// How the daemon's end maps to an exit code and one line: what systemd, Kubernetes and scripts read.
import { Cause, Data, Exit } from "effect"
import { describe, expect, it } from "vitest"
import { ConfigError, HelpRequested } from "../../src/Config/ConfigError.ts"
import { outcomeOf } from "../../src/Process/ExitCode.ts"

class DiscordClosed extends Data.TaggedError("DiscordClosed")<{ readonly message: string }> {}

describe("outcomeOf", () => {
  it("a clean end and a signal's interruption exit 0 with nothing printed", () => {
    expect(outcomeOf(Exit.void)).toEqual({ code: 0 })
    expect(outcomeOf(Exit.failCause(Cause.interrupt(1)))).toEqual({ code: 0 })
  })
  it("--help prints the usage on stdout and exits 0", () => {
    expect(outcomeOf(Exit.fail(new HelpRequested({ usage: "Usage: x\n" })))).toEqual({ code: 0, stdout: "Usage: x\n" })
  })
  it("an invalid configuration exits 2 with its one line", () => {
    const error = new ConfigError({ key: "shards.count", message: "shards.count: must be a number" })
    expect(outcomeOf(Exit.fail(error))).toEqual({ code: 2, line: "shards.count: must be a number" })
  })
  it("a fatal error exits 1, also when it happened during the shutdown an interruption started", () => {
    const fatal = new DiscordClosed({ message: "Discord closed the connection (4004): fix the token" })
    expect(outcomeOf(Exit.fail(fatal))).toEqual({ code: 1, line: "fatal: Discord closed the connection (4004): fix the token" })
    const during = Exit.failCause(Cause.combine(Cause.interrupt(1), Cause.fail(fatal)))
    expect(outcomeOf(during).code).toBe(1)
  })
  it("a defect exits 1 as a crash", () => {
    const outcome = outcomeOf(Exit.die(new Error("boom")))
    expect(outcome.code).toBe(1)
    expect(outcome.line).toMatch(/^crashed: .*boom/s)
  })
})
