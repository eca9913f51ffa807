// The parts of stopping that runMain cannot express: NodeRuntime.runMain turns SIGTERM/SIGINT into
// an interruption of the main fiber (whose finalizers are the graceful shutdown); these listeners
// sit beside it for the cases where waiting for finalizers is wrong:
//   - a signal while still starting: nothing was read, so nothing to deliver: exit 0 at once;
//   - a second signal: the operator insists: exit 1 at once;
//   - the backstop: whatever a finalizer waits for, exit 1 shortly after the shutdown budget.
import { Deferred, Effect } from "effect"

const SIGNALS = ["SIGTERM", "SIGINT"] as const

export interface SignalGuard {
  /** The first signal received, once one was: names the shutdown in the log. */
  readonly first: () => string | undefined
}

export interface SignalGuardOptions {
  /** Done once the shards run: from then on a signal means "graceful shutdown". */
  readonly started: Deferred.Deferred<void>
  readonly shutdownTimeoutMs: number
  /** How far past the budget the backstop fires. */
  readonly graceMs?: number
  /** Writes one line on stderr and exits; replaced in tests. */
  readonly exit?: (line: string, code: number) => void
}

export const exitWithLine = (line: string, code: number): void => {
  process.stderr.write(`spectacles-gateway: ${line}\n`)
  process.exit(code)
}

/** Installs the listeners for the scope's lifetime. */
export const guardSignals = (options: SignalGuardOptions) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const exit = options.exit ?? exitWithLine
      let first: string | undefined
      let backstop: ReturnType<typeof setTimeout> | undefined
      const onSignal = (name: string) => {
        if (!Deferred.isDoneUnsafe(options.started)) return exit(`${name} before the shards started; exiting`, 0)
        if (first !== undefined) return exit(`second ${name}: exiting without a graceful shutdown`, 1)
        first = name
        backstop = setTimeout(
          () => exit(`shutdown took longer than ${options.shutdownTimeoutMs} ms; exiting`, 1),
          options.shutdownTimeoutMs + (options.graceMs ?? 2_000)
        )
        backstop.unref()
      }
      const listeners = SIGNALS.map((name) => [name, () => onSignal(name)] as const)
      // Before runMain's own listener, so the shutdown it starts already knows the signal's name.
      for (const [name, listener] of listeners) process.prependListener(name, listener)
      const guard: SignalGuard = { first: () => first }
      return { guard, listeners, clear: () => clearTimeout(backstop) }
    }),
    ({ clear, listeners }) =>
      Effect.sync(() => {
        for (const [name, listener] of listeners) process.off(name, listener)
        clear()
      })
  ).pipe(Effect.map(({ guard }) => guard))
