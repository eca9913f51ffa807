// Binary forms of an event, for consumers built on the original Spectacles broker libraries.
//
// - `msgpack`: `d` as a MessagePack value (what @spectacles/brokers consumers decode to an object).
// - `msgpack-json`: the original Go gateway's exact bytes. It handed the JSON text of `d`
//   (json.RawMessage) to ugorji/go's MessagePack encoder with default settings, which writes a
//   byte slice as the old-spec "raw" type: fixstr below 32 bytes, else str16 or str32, never str8.
//   A consumer therefore decodes a string holding the JSON text, exactly as it did with Go.
import { encode } from "@msgpack/msgpack"
import type { PayloadEncoding } from "../Config/GatewayConfig.ts"
import type { DispatchEvent } from "./DispatchEvent.ts"

/** Just `d`, as MessagePack (the message body on Redis and AMQP, where the name travels alongside). */
export const encodeDataMsgpack = (e: DispatchEvent): Uint8Array => encode(JSON.parse(e.data.toString("utf8")), { useBigInt64: false })

/** `{event, data}` as one MessagePack map (the stdout framing). */
export const encodeEventMsgpack = (e: DispatchEvent): Uint8Array => encode({ event: e.t, data: JSON.parse(e.data.toString("utf8")) })

/** Writes the old-spec MessagePack raw header for `length` bytes at `at`; returns the offset after it. */
const writeRawHeader = (out: Buffer, at: number, length: number): number => {
  if (length < 32) {
    out[at] = 0xa0 | length
    return at + 1
  }
  if (length < 0x10000) {
    out[at] = 0xda
    out.writeUInt16BE(length, at + 1)
    return at + 3
  }
  out[at] = 0xdb
  out.writeUInt32BE(length, at + 1)
  return at + 5
}

const rawHeaderSize = (length: number): number => (length < 32 ? 1 : length < 0x10000 ? 3 : 5)

/** `text` as an old-spec MessagePack raw, written at `at`; returns the offset after it. */
const writeRaw = (out: Buffer, at: number, text: string, bytes: number): number => {
  const start = writeRawHeader(out, at, bytes)
  return start + out.write(text, start, "utf8")
}

/** `data` (bytes) as an old-spec MessagePack raw, written at `at`; returns the offset after it. */
const writeRawBytes = (out: Buffer, at: number, data: Buffer): number => {
  const start = writeRawHeader(out, at, data.length)
  out.set(data, start)
  return start + data.length
}

/** The JSON text of `d` as one MessagePack raw: the Go gateway's Redis field / AMQP body. */
export const encodeDataGo = (e: DispatchEvent): Buffer => {
  const out = Buffer.allocUnsafe(rawHeaderSize(e.data.length) + e.data.length)
  writeRawBytes(out, 0, e.data)
  return out
}

const EVENT_KEY = Buffer.from([0xa5, ...Buffer.from("event")])
const DATA_KEY = Buffer.from([0xa4, ...Buffer.from("data")])

/** `{"event": t, "data": raw JSON text of d}`, keys in that order: the Go gateway's stdout framing. */
export const encodeEventGo = (e: DispatchEvent): Buffer => {
  const nameBytes = Buffer.byteLength(e.t, "utf8")
  const dataBytes = e.data.length
  const out = Buffer.allocUnsafe(1 + EVENT_KEY.length + rawHeaderSize(nameBytes) + nameBytes + DATA_KEY.length + rawHeaderSize(dataBytes) + dataBytes)
  out[0] = 0x82
  let at = 1 + EVENT_KEY.copy(out, 1)
  at = writeRaw(out, at, e.t, nameBytes)
  at += DATA_KEY.copy(out, at)
  writeRawBytes(out, at, e.data)
  return out
}

/** The Redis field / AMQP body for a binary encoding, as a Buffer over the encoded bytes. */
export const encodeData = (encoding: Exclude<PayloadEncoding, "json">, e: DispatchEvent): Buffer => {
  if (encoding === "msgpack-json") return encodeDataGo(e)
  const bytes = encodeDataMsgpack(e)
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
}

/** The stdout framing of one event for a binary encoding. */
export const encodeEvent = (encoding: Exclude<PayloadEncoding, "json">, e: DispatchEvent): Uint8Array =>
  encoding === "msgpack-json" ? encodeEventGo(e) : encodeEventMsgpack(e)
