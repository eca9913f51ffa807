// Standard input and output as the platform's Stdio service: main provides NodeStdio, a test its
// own (Stdio.layerTest); code built outside either (a unit test of a single part) gets Node's.
import * as NodeStdio from "@effect/platform-node/NodeStdio"
import { Effect, Option, Stdio } from "effect"

/** NodeStdio's service (the layer holds one constant instance). */
export const nodeStdio: Stdio.Stdio = Effect.runSync(Effect.provide(Effect.service(Stdio.Stdio), NodeStdio.layer))

export const currentStdio: Effect.Effect<Stdio.Stdio> = Effect.map(
  Effect.serviceOption(Stdio.Stdio),
  (given) => Option.getOrElse(given, () => nodeStdio)
)

/** Whether `stdio` is the process's own standard streams, where a direct write is equivalent. */
export const isNodeStdio = (stdio: Stdio.Stdio): boolean => stdio === nodeStdio
