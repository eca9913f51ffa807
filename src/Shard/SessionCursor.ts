import type { DeliveryReceipt } from "../Broker/DispatchEvent.ts"
import type { CheckpointSource } from "../ShardStore/Checkpointer.ts"

// One Discord session's progress: what arrived, and what the broker has accepted.
//
// Events pass through the outbox in order, so "delivered" only grows. The checkpoint is the
// highest sequence number below which nothing is still on its way: everything received when no
// wanted event is in flight, otherwise the last delivered one. Resuming from it replays at most
// what was not yet delivered (at-least-once), never less.
export class SessionCursor implements DeliveryReceipt, CheckpointSource {
  readonly shard: number
  readonly sessionId: string
  readonly resumeUrl: string
  /** Last sequence number received on this session (sent in heartbeats and in-process resumes). */
  received: number
  private inflight = 0
  private delivered: number
  /** Set when the checkpoint moved since the last store write. */
  dirty = true

  /** False while this process may not write the shard's checkpoint (its lease lapsed). */
  readonly writable: () => boolean
  /** Whether events read on this cursor may still be published (the same lease holds). */
  readonly current: () => boolean

  constructor(shard: number, sessionId: string, resumeUrl: string, seq: number, writable: () => boolean = () => true) {
    this.writable = writable
    this.current = writable
    this.shard = shard
    this.sessionId = sessionId
    this.resumeUrl = resumeUrl
    this.received = seq
    this.delivered = seq
  }

  /** An event we forward: it is in flight until the broker accepts it. */
  forwarded(seq: number): void {
    if (this.inflight === 0) this.delivered = this.received
    this.inflight++
    this.received = seq
  }

  /** An event nobody asked for: done as soon as it is read. */
  skipped(seq: number): void {
    this.received = seq
    if (this.inflight === 0) this.dirty = true
  }

  accepted(seq: number): void {
    this.inflight--
    this.delivered = seq
    this.dirty = true
  }

  get checkpoint(): number {
    return this.inflight === 0 ? this.received : this.delivered
  }

  get pending(): number {
    return this.inflight
  }
}
