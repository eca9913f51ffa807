// A strict reader of the Prometheus text format, for the tests: every line must be a HELP/TYPE
// comment or `name{labels} value`, every sample must belong to a family announced before it, and
// no series may repeat. Returns the samples so tests can read values.

export interface Sample {
  readonly name: string
  readonly labels: Readonly<Record<string, string>>
  readonly value: number
}

const NAME = "[a-zA-Z_:][a-zA-Z0-9_:]*"
const LABEL_VALUE = String.raw`"(?:[^"\\\n]|\\[\\"n])*"`
const LABEL = `[a-zA-Z_][a-zA-Z0-9_]*=${LABEL_VALUE}`
const VALUE = String.raw`(?:[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?|NaN|[+-]Inf)`
const SAMPLE = new RegExp(`^(${NAME})(\\{(?:${LABEL}(?:,${LABEL})*)?\\})? (${VALUE})$`)
const COMMENT = new RegExp(`^# (HELP|TYPE) (${NAME})(?: (.*))?$`)
const PAIR = new RegExp(`([a-zA-Z_][a-zA-Z0-9_]*)=(${LABEL_VALUE})`, "g")

const unescape = (quoted: string) =>
  quoted.slice(1, -1).replace(/\\(.)/g, (_, c: string) => (c === "n" ? "\n" : c))

const parseValue = (text: string) =>
  text === "+Inf" ? Infinity : text === "-Inf" ? -Infinity : text === "NaN" ? NaN : Number(text)

export const parseExposition = (text: string): { samples: Array<Sample>; types: Map<string, string> } => {
  if (text.length > 0 && !text.endsWith("\n")) throw new Error("exposition must end with a newline")
  const types = new Map<string, string>()
  const samples: Array<Sample> = []
  const seen = new Set<string>()
  const lines = text.split("\n").slice(0, -1)
  lines.forEach((line, i) => {
    const where = `line ${i + 1}: ${JSON.stringify(line)}`
    const comment = COMMENT.exec(line)
    if (comment !== null) {
      if (comment[1] === "TYPE") {
        if (!["counter", "gauge", "histogram", "summary", "untyped"].includes(comment[3] ?? "")) throw new Error(`bad TYPE at ${where}`)
        if (types.has(comment[2]!)) throw new Error(`TYPE repeated at ${where}`)
        types.set(comment[2]!, comment[3]!)
      }
      return
    }
    if (line.startsWith("#")) throw new Error(`malformed comment at ${where}`)
    const m = SAMPLE.exec(line)
    if (m === null) throw new Error(`not name{labels} value at ${where}`)
    const name = m[1]!
    const family = types.has(name) ? name : name.replace(/_(bucket|sum|count)$/, "")
    const type = types.get(family)
    if (type === undefined) throw new Error(`sample before its TYPE at ${where}`)
    if (family !== name && type !== "histogram" && type !== "summary") throw new Error(`suffix on a ${type} at ${where}`)
    if (type === "counter" && !name.endsWith("_total")) throw new Error(`counter without _total at ${where}`)
    const labels: Record<string, string> = {}
    for (const pair of (m[2] ?? "").matchAll(PAIR)) {
      if (pair[1]! in labels) throw new Error(`label repeated at ${where}`)
      labels[pair[1]!] = unescape(pair[2]!)
    }
    const key = `${name}${m[2] ?? ""}`
    if (seen.has(key)) throw new Error(`series repeated at ${where}`)
    seen.add(key)
    samples.push({ name, labels, value: parseValue(m[3]!) })
  })
  return { samples, types }
}

/** Sum of the samples named `name` whose labels include `labels`. */
export const valueOf = (samples: ReadonlyArray<Sample>, name: string, labels: Record<string, string> = {}): number =>
  samples
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((sum, s) => sum + s.value, 0)
