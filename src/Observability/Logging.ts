// Logs go to stderr, one JSON object per line when stderr is not a terminal (for collectors),
// readable lines when it is. Standard output belongs to the events.
import { Layer, Logger, References } from "effect"
import type { LogLevel } from "../Config/GatewayConfig.ts"

const levels = { trace: "Trace", debug: "Debug", info: "Info", warn: "Warn", error: "Error" } as const

export const loggingLayer = (level: LogLevel, json = !process.stderr.isTTY) =>
  Layer.mergeAll(
    Logger.layer([Logger.withConsoleError(json ? Logger.formatJson : Logger.formatLogFmt)]),
    Layer.succeed(References.MinimumLogLevel, levels[level])
  )
