// How the daemon's end becomes an exit code and at most one line (the teardown of runMain):
//   0  stopped: a signal's graceful shutdown (an interruption), or --help (usage on stdout)
//   1  fatal: a Discord close code or broker error that retrying cannot fix, or a crash
//   2  the configuration is invalid (ConfigError, from wherever it was found)
import { Cause, Exit } from "effect"

export interface Outcome {
  readonly code: 0 | 1 | 2
  /** For stderr, prefixed with "spectacles-gateway: ". */
  readonly line?: string
  /** For stdout (the usage text). */
  readonly stdout?: string
}

const messageOf = (error: unknown): string =>
  error instanceof Error ? error.message : typeof error === "string" ? error : String(error)

export const outcomeOf = (exit: Exit.Exit<unknown, unknown>): Outcome => {
  if (Exit.isSuccess(exit) || Cause.hasInterruptsOnly(exit.cause)) return { code: 0 }
  const failure = Cause.findErrorOption(exit.cause)
  if (failure._tag === "None") return { code: 1, line: `crashed: ${Cause.pretty(exit.cause)}` }
  const error = failure.value as { readonly _tag?: unknown; readonly usage?: unknown }
  if (error._tag === "HelpRequested" && typeof error.usage === "string") return { code: 0, stdout: error.usage }
  if (error._tag === "ConfigError") return { code: 2, line: messageOf(error) }
  return { code: 1, line: `fatal: ${messageOf(error)}` }
}

/**
 * runMain's teardown: print the outcome and exit, even when a handle (stdin, a socket that a
 * library keeps) would keep Node alive. Writes to pipes and files are synchronous on Linux.
 */
export const teardown = (exit: Exit.Exit<unknown, unknown>): void => {
  const outcome = outcomeOf(exit)
  if (outcome.stdout !== undefined) process.stdout.write(outcome.stdout)
  if (outcome.line !== undefined) process.stderr.write(`spectacles-gateway: ${outcome.line}\n`)
  process.exit(outcome.code)
}
