// Where one MessagePack value ends, without decoding it: a stream of MessagePack values has no
// delimiters, so the stdin reader needs this to cut it into commands (and to skip a bad one).

/** Not all of the value has arrived yet. */
export const INCOMPLETE = -1
/** The bytes are not MessagePack (0xc1 is never used). */
export const INVALID = -2

/** Header length and what follows it, for each type byte; see the MessagePack spec's format table. */
const fixed = (b: number): number | undefined => {
  if (b <= 0x7f || b >= 0xe0 || b === 0xc0 || b === 0xc2 || b === 0xc3) return 1
  switch (b) {
    case 0xcc: case 0xd0: return 2
    case 0xcd: case 0xd1: case 0xd4: return 3
    case 0xd5: return 4
    case 0xca: case 0xce: case 0xd2: return 5
    case 0xd6: return 6
    case 0xcb: case 0xcf: case 0xd3: return 9
    case 0xd7: return 10
    case 0xd8: return 18
  }
  return undefined
}

const readLength = (bytes: Uint8Array, at: number, size: 1 | 2 | 4): number => {
  if (size === 1) return bytes[at]!
  if (size === 2) return (bytes[at]! << 8) | bytes[at + 1]!
  return ((bytes[at]! << 24) >>> 0) + ((bytes[at + 1]! << 16) | (bytes[at + 2]! << 8) | bytes[at + 3]!)
}

/**
 * The offset just past the value starting at `start`, INCOMPLETE, or INVALID. Stops early with
 * `limit + start + 1` once the value is known to be longer than `limit` bytes.
 */
export const msgpackValueEnd = (bytes: Uint8Array, start: number, limit: number): number => {
  let pos = start
  let pending = 1
  const n = bytes.byteLength
  while (pending > 0) {
    if (pos - start > limit) return start + limit + 1
    if (pos >= n) return INCOMPLETE
    const b = bytes[pos]!
    pending--
    const size = fixed(b)
    if (size !== undefined) {
      pos += size
      continue
    }
    if (b >= 0x80 && b <= 0x8f) {
      pending += 2 * (b & 0x0f)
      pos += 1
      continue
    }
    if (b >= 0x90 && b <= 0x9f) {
      pending += b & 0x0f
      pos += 1
      continue
    }
    if (b >= 0xa0 && b <= 0xbf) {
      pos += 1 + (b & 0x1f)
      continue
    }
    // Types with a length field: [length bytes, extra header bytes (ext type), kind].
    let lengthSize: 1 | 2 | 4
    let extra = 0
    let kind: "bytes" | "array" | "map" = "bytes"
    switch (b) {
      case 0xc4: case 0xd9: lengthSize = 1; break
      case 0xc5: case 0xda: lengthSize = 2; break
      case 0xc6: case 0xdb: lengthSize = 4; break
      case 0xc7: lengthSize = 1; extra = 1; break
      case 0xc8: lengthSize = 2; extra = 1; break
      case 0xc9: lengthSize = 4; extra = 1; break
      case 0xdc: lengthSize = 2; kind = "array"; break
      case 0xdd: lengthSize = 4; kind = "array"; break
      case 0xde: lengthSize = 2; kind = "map"; break
      case 0xdf: lengthSize = 4; kind = "map"; break
      default: return INVALID
    }
    if (pos + 1 + lengthSize > n) return INCOMPLETE
    const length = readLength(bytes, pos + 1, lengthSize)
    pos += 1 + lengthSize + extra
    if (kind === "bytes") pos += length
    else if (kind === "array") pending += length
    else pending += 2 * length
    // Every element takes at least one byte: a count beyond the limit cannot fit.
    if (pending > limit) return start + limit + 1
  }
  if (pos - start > limit) return start + limit + 1
  return pos > n ? INCOMPLETE : pos
}
