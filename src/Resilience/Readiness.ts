// What keeps the process from being ready, reported by the parts that know: a failing broker
// publish, a shard store that cannot be written, ... `/readyz` answers 503 with every problem
// present; a part clears its problem by reporting `undefined`. A part that is broken for good (a
// supervised worker that cannot be restarted) makes `/healthz` fail too, just before the exit.
import { Context, Layer } from "effect"

export interface Readiness {
  /** Sets (or, with `undefined`, clears) the problem of one component, e.g. "shard store". */
  readonly report: (component: string, problem: string | undefined) => void
  /** Every current problem, worded for an operator ("shard store: cannot write ...: EACCES"). */
  readonly problems: () => ReadonlyArray<string>
  /** A part that cannot recover: `/healthz` answers 503 from now on. */
  readonly broken: (component: string, problem: string) => void
  /** Every part reported broken, worded like `problems`. */
  readonly brokenParts: () => ReadonlyArray<string>
}

export const Readiness = Context.Service<Readiness>("gateway/Readiness")

export const makeReadiness = (): Readiness => {
  const problems = new Map<string, string>()
  const broken = new Map<string, string>()
  return {
    report: (component, problem) => {
      if (problem === undefined) problems.delete(component)
      else problems.set(component, problem)
    },
    problems: () => Array.from(problems, ([component, problem]) => `${component}: ${problem}`),
    broken: (component, problem) => {
      broken.set(component, problem)
    },
    brokenParts: () => Array.from(broken, ([component, problem]) => `${component}: ${problem}`)
  }
}

export const ReadinessLive = Layer.sync(Readiness, makeReadiness)
