// The original Go gateway's wire bytes, built independently of src/ from what its libraries do:
// ugorji/go codec (MsgpackHandle, default settings) writes a Go []byte / string as the old
// MessagePack "raw" type: fixstr below 32 bytes, else str16 (0xda) or str32 (0xdb), never str8.

export const goRaw = (text: string): Buffer => {
  const body = Buffer.from(text, "utf8")
  const n = body.byteLength
  const header = n < 32
    ? Buffer.from([0xa0 | n])
    : n < 65536
    ? Buffer.from([0xda, n >> 8, n & 0xff])
    : Buffer.from([0xdb, (n >>> 24) & 0xff, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff])
  return Buffer.concat([header, body])
}

/** Its stdio framing (written to stdout, read from stdin): broker.IOPacket{E, D} → a map {"event": E, "data": D}, fields in that order. */
export const goStdoutEvent = (event: string, dJson: string): Buffer =>
  Buffer.concat([Buffer.from([0x82]), goRaw("event"), goRaw(event), goRaw("data"), goRaw(dJson)])
