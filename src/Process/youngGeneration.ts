// Keeps V8's young generation at its starting size (a few MiB) instead of letting it grow to
// 64-128 MiB under a burst and stay committed. Users start `node dist/main.js` without flags, so the
// gateway sets this itself, before the rest of it loads (main.ts calls it, then imports the rest).
// Most of what a dispatch allocates dies within the event loop turn that read it, so a small young
// generation is scavenged more often but each scavenge finds little alive: the benchmark measured
// less CPU per event with it, not more (bench/RESULTS.md). A semi-space flag given by the user
// (NODE_OPTIONS or the command line) wins: then nothing is set here.
import { setFlagsFromString } from "node:v8"

/** The V8 flag set here; V8 reads it each time it considers growing the young generation. */
export const YOUNG_GENERATION_FLAG = "--semi-space-growth-factor=1"

/** Whether the user chose the young generation's size themselves. */
export const userSizedYoungGeneration = (execArgv: ReadonlyArray<string>, nodeOptions: string | undefined): boolean =>
  [...execArgv, ...(nodeOptions ?? "").split(/\s+/)].some((flag) => /semi[-_]space/.test(flag))

/** Sets the flag unless the user sized the young generation; call it before loading the gateway. */
export const keepYoungGenerationSmall = (): void => {
  if (!userSizedYoungGeneration(process.execArgv, process.env["NODE_OPTIONS"])) setFlagsFromString(YOUNG_GENERATION_FLAG)
}
