// Markdown tables with aligned columns (readable in a terminal and rendered on GitHub) and the
// number formats the report uses.

export function table(headers: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string>>, rightAlign: ReadonlyArray<boolean> = []): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)))
  const cell = (text: string, i: number): string => (rightAlign[i] === true ? text.padStart(widths[i]!) : text.padEnd(widths[i]!))
  const line = (cells: ReadonlyArray<string>): string => `| ${cells.map((c, i) => cell(c, i)).join(" | ")} |`
  const rule = `|${widths.map((w, i) => (rightAlign[i] === true ? `${"-".repeat(w + 1)}:` : "-".repeat(w + 2))).join("|")}|`
  return [line(headers), rule, ...rows.map(line)].join("\n")
}

export const MiB = 2 ** 20

export function mib(bytes: number): string {
  return (bytes / MiB).toFixed(1)
}

export function kib(bytes: number): string {
  return (bytes / 1024).toFixed(0)
}

/** 12345.6 -> "12 346"; thin grouping keeps wide numbers readable. */
export function int(n: number): string {
  return Math.round(n).toString().replace(/\B(?=(\d{3})+(?!\d))/g, " ")
}

export function fixed(n: number, digits = 1): string {
  return Number.isFinite(n) ? n.toFixed(digits) : "—"
}

/** a/b as "1.23×", or "—" when undefined. */
export function ratio(a: number | undefined, b: number | undefined): string {
  if (a === undefined || b === undefined || b === 0 || !Number.isFinite(a / b)) return "—"
  return `${(a / b).toFixed(2)}×`
}
