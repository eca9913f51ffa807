#!/usr/bin/env node
// Entry point. Two things must happen before the gateway's modules are even loaded (loading them
// allocates megabytes): the Node version check (preflight.ts), and keeping V8's young generation
// small (Process/youngGeneration.ts). Static imports are evaluated in order but the whole graph is
// loaded before any of them runs, so the daemon comes in through a dynamic import after both.
import "./preflight.ts"
import { keepYoungGenerationSmall } from "./Process/youngGeneration.ts"

keepYoungGenerationSmall()
await import("./daemon.ts")
