/**
 * Told when the broker accepted an event (flushed, acknowledged, confirmed), so its source can
 * move its checkpoint past it. The broker owns this contract; a shard's session cursor implements it.
 */
export interface DeliveryReceipt {
  readonly accepted: (seq: number) => void
}

/** One dispatch on its way to the broker. `data` is the payload's `d` exactly as Discord sent it. */
export interface DispatchEvent {
  readonly shard: number
  readonly t: string
  readonly seq: number
  /** JSON text of `d`, sliced out of the payload without parsing it. */
  readonly data: string
  readonly receipt: DeliveryReceipt
}
