import type { SessionCursor } from "../Shard/SessionCursor.ts"

/** One dispatch on its way to the broker. `data` is the payload's `d` exactly as Discord sent it. */
export interface DispatchEvent {
  readonly shard: number
  readonly t: string
  readonly seq: number
  /** JSON text of `d`, sliced out of the payload without parsing it. */
  readonly data: string
  /** Told when the broker accepted the event, so the checkpoint can move past it. */
  readonly cursor: SessionCursor
}
