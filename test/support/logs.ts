// Collects what a test's effects log, as "Level: message" lines.
import { Layer, Logger } from "effect"

export const collectLogs = () => {
  const lines: Array<string> = []
  const logger = Logger.make((options) => {
    const message = Array.isArray(options.message) ? options.message.join(" ") : String(options.message)
    lines.push(`${options.logLevel}: ${message}`)
  })
  return { lines, layer: Logger.layer([logger]) as Layer.Layer<never> }
}
