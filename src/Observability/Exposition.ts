// A writer for the Prometheus text exposition format (version 0.0.4): HELP/TYPE headers, then
// samples `name{label="value"} number`. Hand-written because the counters are plain numbers
// already; feeding them through Effect's Metric registry would cost an Effect per event.
import type { Histogram } from "./GatewayStats.ts"

export type Labels = Readonly<Record<string, string | number>>

/** Label values may hold anything: backslash, double quote and newline are escaped. */
export const escapeLabelValue = (value: string): string =>
  value.replace(/\\/g, "\\\\").replace(/"/g, "\\\"").replace(/\n/g, "\\n")

/** HELP text escapes only backslash and newline. */
const escapeHelp = (text: string): string => text.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")

export const formatValue = (n: number): string => {
  if (Number.isNaN(n)) return "NaN"
  if (n === Infinity) return "+Inf"
  if (n === -Infinity) return "-Inf"
  return String(n)
}

const formatLabels = (labels: Labels | undefined): string => {
  if (labels === undefined) return ""
  const parts: Array<string> = []
  for (const key in labels) parts.push(`${key}="${escapeLabelValue(String(labels[key]))}"`)
  return parts.length === 0 ? "" : `{${parts.join(",")}}`
}

export class Exposition {
  readonly #lines: Array<string> = []

  /** Starts a metric family; its samples follow. A family without samples is still announced. */
  family(name: string, type: "counter" | "gauge" | "histogram", help: string): this {
    this.#lines.push(`# HELP ${name} ${escapeHelp(help)}`, `# TYPE ${name} ${type}`)
    return this
  }

  sample(name: string, labels: Labels | undefined, value: number): this {
    this.#lines.push(`${name}${formatLabels(labels)} ${formatValue(value)}`)
    return this
  }

  /** `_bucket` lines (cumulative, ending with le="+Inf"), then `_sum` and `_count`. */
  histogram(name: string, labels: Labels | undefined, h: Histogram): this {
    let cumulative = 0
    for (let i = 0; i < h.bounds.length; i++) {
      cumulative += h.counts[i]!
      this.sample(`${name}_bucket`, { ...labels, le: formatValue(h.bounds[i]!) }, cumulative)
    }
    this.sample(`${name}_bucket`, { ...labels, le: "+Inf" }, h.count)
    this.sample(`${name}_sum`, labels, h.sum)
    this.sample(`${name}_count`, labels, h.count)
    return this
  }

  text(): string {
    return this.#lines.length === 0 ? "" : `${this.#lines.join("\n")}\n`
  }
}
