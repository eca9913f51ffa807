// Commands on standard input: JSON lines or a MessagePack stream (see StdinFramer). Always on,
// whatever the broker. The end of input (</dev/null, a container without a terminal, the writer
// going away) only ends this source: the gateway keeps running.
import { Effect, Stream } from "effect"
import { currentStdio } from "../Process/Stdio.ts"
import type { CommandSource } from "./CommandSource.ts"
import { errorText } from "../Resilience/OutageLog.ts"
import { CommandRouter } from "./Router.ts"
import { CommandFramer, type Frame } from "./StdinFramer.ts"

const SOURCE = "stdin"

/** Reads the Stdio in context (a test's own, or NodeStdio from main), else Node's. */
export const makeStdinSource = () =>
  Effect.gen(function*() {
    const router = yield* CommandRouter
    const stdio = yield* currentStdio

    const handle = (frames: ReadonlyArray<Frame>) =>
      Effect.forEach(frames, (frame) =>
        frame.kind === "refused"
          ? router.refuse(frame.refusal, SOURCE, frame.excerpt)
          : Effect.flatMap(router.decode(frame.bytes, SOURCE), (command) => command === undefined ? Effect.void : router.dispatch(command, SOURCE)), { discard: true })

    const run = Effect.gen(function*() {
      const framer = new CommandFramer()
      // Pull-based: while a shard's backlog is full the next chunk is not read, and the writer waits.
      const outcome = yield* stdio.stdin.pipe(
        Stream.mapError(errorText),
        Stream.runForEach((chunk) => handle(framer.push(chunk))),
        Effect.result
      )
      yield* handle(framer.end())
      const rest = router.forwarding === undefined ? "" : `; commands still arrive through ${router.forwarding}`
      if (outcome._tag === "Failure") yield* Effect.logWarning(`reading commands from standard input failed (${outcome.failure}); no longer reading it${rest}`)
      else yield* Effect.logInfo(`standard input ended; no longer reading commands from it${rest}`)
    })

    return { name: SOURCE, run } satisfies CommandSource
  })
