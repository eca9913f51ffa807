// Cuts standard input into commands: JSON lines or a MessagePack stream, told apart per command
// by its first byte (so a producer may even mix them). Malformed input is reported and skipped;
// the reader goes on with the next line.
import { INCOMPLETE, INVALID, msgpackValueEnd } from "./MsgpackFrame.ts"
import { isWhitespace, MAX_INPUT_BYTES } from "./RawValue.ts"
import { type Refusal, refusal } from "./Refusal.ts"

export type Frame =
  | { readonly kind: "command"; readonly bytes: Uint8Array }
  | { readonly kind: "refused"; readonly refusal: Refusal; readonly excerpt: string }

const NEWLINE = 0x0a
const EMPTY = Buffer.alloc(0)

export class CommandFramer {
  #buffer: Buffer = EMPTY
  /** Skipping the rest of an unusable line, up to its newline. */
  #skipLine = false
  readonly #limit: number

  constructor(limit = MAX_INPUT_BYTES) {
    this.#limit = limit
  }

  /** Every complete command in the input so far; an incomplete one waits for the next chunk. */
  push(chunk: Uint8Array): Array<Frame> {
    const buf = this.#buffer.byteLength === 0 ? Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength) : Buffer.concat([this.#buffer, chunk])
    const frames: Array<Frame> = []
    const n = buf.byteLength
    let pos = 0
    while (pos < n) {
      if (this.#skipLine) {
        const newline = buf.indexOf(NEWLINE, pos)
        if (newline < 0) {
          pos = n
          break
        }
        pos = newline + 1
        this.#skipLine = false
        continue
      }
      if (isWhitespace(buf[pos]!)) {
        pos++
        continue
      }
      const first = buf[pos]!
      if (first < 0x80) {
        // Text: one command per line.
        const newline = buf.indexOf(NEWLINE, pos)
        if (newline < 0) {
          if (n - pos > this.#limit) {
            frames.push(this.#refused("too_large", `a line longer than ${this.#limit} bytes`, buf.subarray(pos, pos + 200)))
            this.#skipLine = true
            pos = n
          }
          break
        }
        frames.push({ kind: "command", bytes: buf.subarray(pos, newline) })
        pos = newline + 1
        continue
      }
      const end = msgpackValueEnd(buf, pos, this.#limit)
      if (end === INCOMPLETE) break
      if (end === INVALID) {
        frames.push(this.#refused("malformed", `byte 0x${first.toString(16)} starts neither a JSON line nor a MessagePack value; skipping to the next line`, EMPTY))
        this.#skipLine = true
        continue
      }
      if (end - pos > this.#limit) {
        // A MessagePack stream has no delimiters to resynchronise on: drop what is buffered.
        frames.push(this.#refused("too_large", `a MessagePack value longer than ${this.#limit} bytes; discarding the buffered input`, EMPTY))
        pos = n
        break
      }
      frames.push({ kind: "command", bytes: buf.subarray(pos, end) })
      pos = end
    }
    // Keep only the unfinished tail (copied, so a large chunk is not retained for a few bytes).
    this.#buffer = pos >= n ? EMPTY : Buffer.from(buf.subarray(pos))
    return frames
  }

  /** Input ended: a last line without a newline is still a command; a cut MessagePack value is not. */
  end(): Array<Frame> {
    const rest = this.#buffer
    this.#buffer = EMPTY
    if (this.#skipLine || rest.byteLength === 0) return []
    let i = 0
    while (i < rest.byteLength && isWhitespace(rest[i]!)) i++
    if (i === rest.byteLength) return []
    if (rest[i]! < 0x80) return [{ kind: "command", bytes: rest.subarray(i) }]
    return [this.#refused("malformed", `input ended inside a MessagePack value (${rest.byteLength - i} bytes)`, EMPTY)]
  }

  #refused(reason: Refusal["reason"], detail: string, sample: Uint8Array): Frame {
    return { kind: "refused", refusal: refusal(reason, detail), excerpt: Buffer.from(sample).toString("utf8") }
  }
}
