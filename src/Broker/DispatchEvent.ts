/**
 * Told when the broker accepted an event (flushed, acknowledged, confirmed), so its source can
 * move its checkpoint past it. The broker owns this contract; a shard's session cursor implements it.
 */
export interface DeliveryReceipt {
  readonly accepted: (seq: number) => void
  /**
   * Whether this process may still publish the event: it holds the event's shard under the same
   * lease it was read in. False for good once the lease lapsed or moved: a stale event is dropped
   * (not published, not accepted), and whoever runs the shard now replays it from the checkpoint.
   */
  readonly current: () => boolean
}

/** One dispatch on its way to the broker. `data` is the payload's `d` exactly as Discord sent it. */
export interface DispatchEvent {
  readonly shard: number
  readonly t: string
  readonly seq: number
  /** The JSON of `d` as UTF-8 bytes, copied out of the payload without decoding or parsing it. */
  readonly data: Buffer
  readonly receipt: DeliveryReceipt
  /** The epoch of the shard's lease it was read under (0 without leases): brokers fence on it. */
  readonly epoch: number
}
