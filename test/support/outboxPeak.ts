// Reads a running gateway's /metrics while a test runs: the outbox's highest depth seen.

/** One sample's value from the exposition text, NaN when absent. */
export const metricValue = async (port: number, name: string): Promise<number> => {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text()
  const line = text.split("\n").find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`))
  return line === undefined ? Number.NaN : Number(line.split(" ").at(-1))
}

/** Samples gateway_outbox_events every `everyMs` until `stop()`, which resolves to the peak. */
export const sampleOutboxPeak = (metricsPort: number, everyMs: number) => {
  let peak = 0
  let sampling = true
  const done = (async () => {
    while (sampling) {
      const depth = await metricValue(metricsPort, "gateway_outbox_events").catch(() => Number.NaN)
      if (!Number.isNaN(depth)) peak = Math.max(peak, depth)
      await new Promise((r) => setTimeout(r, everyMs))
    }
  })()
  return {
    stop: async () => {
      sampling = false
      await done
      return peak
    }
  }
}
