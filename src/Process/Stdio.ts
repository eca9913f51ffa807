// Standard input and output as the platform's Stdio service: main provides NodeStdio, a test its
// own (Stdio.layerTest); code built outside either (a unit test of a single part) gets Node's.
import * as NodeStdio from "@effect/platform-node/NodeStdio"
import { Effect, Option, Stdio } from "effect"

export const currentStdio: Effect.Effect<Stdio.Stdio> = Effect.flatMap(
  Effect.serviceOption(Stdio.Stdio),
  (given) => Option.isSome(given) ? Effect.succeed(given.value) : Effect.provide(Effect.service(Stdio.Stdio), NodeStdio.layer)
)
