// MessagePack form of an event, for consumers built on the original Spectacles broker libraries.
import { encode } from "@msgpack/msgpack"
import type { DispatchEvent } from "./DispatchEvent.ts"

/** Just `d`, as MessagePack (the message body on Redis and AMQP, where the name travels alongside). */
export const encodeDataMsgpack = (e: DispatchEvent): Uint8Array => encode(JSON.parse(e.data), { useBigInt64: false })

/** `{event, data}` as one MessagePack map (the stdout framing). */
export const encodeEventMsgpack = (e: DispatchEvent): Uint8Array => encode({ event: e.t, data: JSON.parse(e.data) })
