// A small YAML reader for the deployment files' tests (no YAML package is installed, and the
// tests need none for files we write ourselves). It reads the block style those files use:
// mappings, sequences, plain and quoted scalars, flow lists/maps on one line, `|`/`>` block
// scalars, comments and `---` documents. Anything else (anchors, tags, multi-line plain scalars,
// complex keys) throws with the line, so a file drifting out of this subset fails loudly.
export type YamlValue = string | number | boolean | null | Array<YamlValue> | { [key: string]: YamlValue }

export class YamlSubsetError extends Error {}

interface Line {
  readonly no: number
  readonly indent: number
  /** Without indentation and trailing comment. */
  text: string
  readonly raw: string
}

const isBlank = (raw: string): boolean => /^\s*(#.*)?$/.test(raw)

/** The text without a trailing `# comment` (a `#` after whitespace, outside quotes). */
function stripComment(text: string): string {
  let quote: string | undefined
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!
    if (quote !== undefined) {
      if (c === "\\" && quote === '"') i++
      else if (c === quote) quote = undefined
    } else if (c === '"' || c === "'") quote = c
    else if (c === "#" && (i === 0 || /\s/.test(text[i - 1]!))) return text.slice(0, i).trimEnd()
  }
  return text.trimEnd()
}

/** Index of the `:` ending a mapping key (followed by a space or the end), or -1. */
function keyColon(text: string): number {
  let quote: string | undefined
  let depth = 0
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!
    if (quote !== undefined) {
      if (c === "\\" && quote === '"') i++
      else if (c === quote) quote = undefined
    } else if (c === '"' || c === "'") quote = c
    else if (c === "[" || c === "{") depth++
    else if (c === "]" || c === "}") depth--
    else if (c === ":" && depth === 0 && (i + 1 === text.length || text[i + 1] === " ")) return i
  }
  return -1
}

/** Splits flow content at top-level commas. */
function splitFlow(inner: string): Array<string> {
  const parts: Array<string> = []
  let quote: string | undefined
  let depth = 0
  let start = 0
  for (let i = 0; i < inner.length; i++) {
    const c = inner[i]!
    if (quote !== undefined) {
      if (c === "\\" && quote === '"') i++
      else if (c === quote) quote = undefined
    } else if (c === '"' || c === "'") quote = c
    else if (c === "[" || c === "{") depth++
    else if (c === "]" || c === "}") depth--
    else if (c === "," && depth === 0) {
      parts.push(inner.slice(start, i))
      start = i + 1
    }
  }
  parts.push(inner.slice(start))
  return parts.map((p) => p.trim()).filter((p, i, all) => p !== "" || i < all.length - 1)
}

function scalar(text: string, where: string): YamlValue {
  const s = text.trim()
  if (s.startsWith('"')) {
    if (!s.endsWith('"') || s.length < 2) throw new YamlSubsetError(`${where}: unterminated double-quoted string`)
    return JSON.parse(s) as string
  }
  if (s.startsWith("'")) {
    if (!s.endsWith("'") || s.length < 2) throw new YamlSubsetError(`${where}: unterminated single-quoted string`)
    return s.slice(1, -1).replaceAll("''", "'")
  }
  if (s.startsWith("[")) {
    if (!s.endsWith("]")) throw new YamlSubsetError(`${where}: flow sequence must close on its line`)
    return splitFlow(s.slice(1, -1)).map((item) => scalar(item, where))
  }
  if (s.startsWith("{")) {
    if (!s.endsWith("}")) throw new YamlSubsetError(`${where}: flow mapping must close on its line`)
    const out: Record<string, YamlValue> = {}
    for (const item of splitFlow(s.slice(1, -1))) {
      const at = keyColon(item)
      if (at < 0) throw new YamlSubsetError(`${where}: flow mapping entry without "key: value"`)
      out[String(scalar(item.slice(0, at), where))] = scalar(item.slice(at + 1), where)
    }
    return out
  }
  if (/^[&*!?|>%@`]/.test(s)) throw new YamlSubsetError(`${where}: unsupported YAML construct "${s}"`)
  if (s === "" || s === "~" || s === "null") return null
  if (s === "true") return true
  if (s === "false") return false
  if (/^[-+]?\d+$/.test(s)) return Number(s)
  if (/^[-+]?(\d+\.\d*|\.\d+)([eE][-+]?\d+)?$/.test(s)) return Number(s)
  return s
}

class Reader {
  #i = 0
  readonly #lines: Array<Line>
  readonly #raw: Array<string>
  readonly #name: string

  constructor(raw: Array<string>, firstNo: number, name: string) {
    this.#raw = raw
    this.#name = name
    this.#lines = raw.map((r, i) => ({ no: firstNo + i, indent: r.length - r.trimStart().length, text: stripComment(r.trim()), raw: r }))
    if (raw.some((r) => /^\s*\t/.test(r))) throw new YamlSubsetError(`${name}: tab indentation`)
  }

  #where(line: Line): string {
    return `${this.#name}:${line.no}`
  }

  #peek(): Line | undefined {
    while (this.#i < this.#lines.length && isBlank(this.#lines[this.#i]!.raw)) this.#i++
    return this.#lines[this.#i]
  }

  document(): YamlValue {
    const first = this.#peek()
    if (first === undefined) return null
    const value = this.#node(first.indent)
    const rest = this.#peek()
    if (rest !== undefined) throw new YamlSubsetError(`${this.#where(rest)}: unexpected indentation`)
    return value
  }

  #node(indent: number): YamlValue {
    const line = this.#peek()
    if (line === undefined || line.indent < indent) return null
    if (line.text === "-" || line.text.startsWith("- ")) return this.#sequence(line.indent)
    if (keyColon(line.text) >= 0) return this.#mapping(line.indent)
    this.#i++
    return this.#inline(line.text, line)
  }

  #sequence(indent: number): Array<YamlValue> {
    const out: Array<YamlValue> = []
    for (let line = this.#peek(); line !== undefined && line.indent === indent && (line.text === "-" || line.text.startsWith("- ")); line = this.#peek()) {
      const rest = line.text.slice(1).trimStart()
      if (rest === "") {
        this.#i++
        out.push(this.#node(indent + 1))
      } else if (keyColon(rest) >= 0 && !rest.startsWith("[") && !rest.startsWith("{") && !rest.startsWith('"') && !rest.startsWith("'")) {
        // "- key: value": a mapping whose first entry sits two columns in, like its other lines.
        const offset = line.text.length - rest.length
        this.#lines[this.#i] = { ...line, indent: indent + offset, text: rest }
        out.push(this.#mapping(indent + offset))
      } else {
        this.#i++
        out.push(this.#inline(rest, line))
      }
    }
    return out
  }

  #mapping(indent: number): Record<string, YamlValue> {
    const out: Record<string, YamlValue> = {}
    for (let line = this.#peek(); line !== undefined && line.indent === indent; line = this.#peek()) {
      if (line.text.startsWith("- ")) throw new YamlSubsetError(`${this.#where(line)}: sequence item inside a mapping`)
      const at = keyColon(line.text)
      if (at < 0) throw new YamlSubsetError(`${this.#where(line)}: expected "key: value"`)
      const key = String(scalar(line.text.slice(0, at), this.#where(line)))
      if (Object.hasOwn(out, key)) throw new YamlSubsetError(`${this.#where(line)}: duplicate key "${key}"`)
      const rest = line.text.slice(at + 1).trim()
      this.#i++
      if (rest === "") {
        const next = this.#peek()
        const sameIndentList = next !== undefined && next.indent === indent && (next.text === "-" || next.text.startsWith("- "))
        out[key] = next !== undefined && (next.indent > indent || sameIndentList) ? this.#node(next.indent) : null
      } else out[key] = this.#inline(rest, line)
    }
    const next = this.#peek()
    if (next !== undefined && next.indent > indent) throw new YamlSubsetError(`${this.#where(next)}: unexpected indentation`)
    return out
  }

  /** A value given after `key:` or `- ` on `line` (already consumed): a scalar, flow value or block scalar. */
  #inline(text: string, line: Line): YamlValue {
    const block = /^([|>])([-+]?)$/.exec(text)
    if (block !== null) return this.#blockScalar(line.indent, block[1] === ">", block[2]!)
    const next = this.#peek()
    if (next !== undefined && next.indent > line.indent) throw new YamlSubsetError(`${this.#where(next)}: multi-line plain scalars are not supported`)
    return scalar(text, this.#where(line))
  }

  #blockScalar(parentIndent: number, folded: boolean, chomp: string): string {
    const body: Array<string> = []
    let contentIndent: number | undefined
    while (this.#i < this.#raw.length) {
      const raw = this.#raw[this.#i]!
      const indent = raw.length - raw.trimStart().length
      if (raw.trim() !== "") {
        if (indent <= parentIndent) break
        contentIndent ??= indent
        if (indent < contentIndent) break
      }
      body.push(raw)
      this.#i++
    }
    const lines = body.map((r) => (r.trim() === "" ? "" : r.slice(contentIndent)))
    let trailing = 0
    while (lines.length > 0 && lines.at(-1) === "") {
      lines.pop()
      trailing++
    }
    let text = ""
    if (!folded) text = lines.join("\n")
    else {
      for (let k = 0; k < lines.length; k++) {
        const l = lines[k]!
        if (k === 0) text = l
        else if (l === "") text += "\n"
        else text += lines[k - 1] === "" ? l : ` ${l}`
      }
    }
    if (lines.length === 0) return ""
    if (chomp === "-") return text
    if (chomp === "+") return text + "\n".repeat(1 + trailing)
    return text + "\n"
  }
}

/** Every document of a YAML text (documents separated by `---` lines). */
export function parseYamlDocuments(text: string, name = "yaml"): Array<YamlValue> {
  const raw = text.replace(/\r\n/g, "\n").split("\n")
  const docs: Array<YamlValue> = []
  let start = 0
  for (let i = 0; i <= raw.length; i++) {
    if (i === raw.length || /^---\s*(#.*)?$/.test(raw[i]!)) {
      const chunk = raw.slice(start, i)
      if (!(start === 0 && chunk.every(isBlank) && i < raw.length)) docs.push(new Reader(chunk, start + 1, name).document())
      start = i + 1
    }
  }
  return docs
}
