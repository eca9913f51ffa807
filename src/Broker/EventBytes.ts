// Where the bytes of each forwarded `d` live between the socket and the broker.
//
// The inflater's output is a buffer every connection shares, so a forwarded `d` must be copied out.
// Copying each into fresh memory was the largest single cost per event after inflating: new pages
// for every few KiB, and garbage for the collector (measured: 22 µs of CPU per event to stdout with
// fresh buffers, 15 µs when the copies land in memory that is already in use). So the gateway
// copies into blocks it reuses: a block is handed out again once the broker is done with every
// event copied into it.
//
// Reuse is safe only when nothing reads an event's bytes after the broker accepted it. The brokers
// here guarantee that for a publish that succeeded at its first attempt (stdout: the write
// completed; Redis: every entry was answered; AMQP: every message was confirmed). After a failed
// attempt a client library may still hold the bytes (a timed-out command that its client resends
// later, a socket's write queue), so those events' blocks are never reused: they are left to the
// garbage collector like any buffer. So is a block some of whose events were never released (a
// shard's backlog dropped on a handoff): tracking is bounded and forgets the oldest blocks.
import { Context, Duration, Effect, Layer, Schedule } from "effect"
import type { DispatchEvent } from "./DispatchEvent.ts"

export interface EventBytes {
  /** Lets go of the blocks kept for reuse when none was needed since the last call (an idle spell). */
  readonly trim: () => void
  /** A copy of bytes[start, end) for an event, valid until the event is released. */
  readonly copy: (bytes: Buffer, start: number, end: number) => Buffer
  /**
   * The broker is done with these events (each released once). `reusable`: nothing can read their
   * bytes any more; false after a failed publish attempt, when a client may still hold them.
   */
  readonly release: (events: ReadonlyArray<DispatchEvent>, reusable: boolean) => void
}

/** A copy in memory of its own, left to the garbage collector: safe with any broker. */
const freshCopy = (bytes: Buffer, start: number, end: number): Buffer => {
  const out = Buffer.allocUnsafe(end - start)
  // TypedArray#set: a quarter of Buffer#copy's cost at these sizes.
  out.set(bytes.subarray(start, end))
  return out
}

/** Fresh copies, never reused: the default, for brokers that may keep events (tests' own). */
export const freshEventBytes: EventBytes = { copy: freshCopy, release: () => {}, trim: () => {} }

export const EventBytes = Context.Reference<EventBytes>("gateway/EventBytes", { defaultValue: () => freshEventBytes })

export interface RecyclingOptions {
  readonly blockBytes: number
  /** Larger copies get memory of their own (a block holds many events, not one guild). */
  readonly largestCopy: number
  /**
   * Emptied blocks kept for reuse; beyond that they are left to the garbage collector. A burst
   * keeps thousands of events waiting in the outbox, so reuse needs room for as many blocks.
   */
  readonly spareBlocks: number
  /** Blocks tracked (filling, or waiting for their last events); the oldest are forgotten past it. */
  readonly trackedBlocks: number
}

export const DEFAULT_RECYCLING: RecyclingOptions = {
  blockBytes: 256 * 1024,
  largestCopy: 32 * 1024,
  spareBlocks: 64,
  trackedBlocks: 256
}

interface Block {
  readonly memory: Buffer
  /** Bytes handed out so far. */
  used: number
  /** Copies handed out and not released yet. */
  live: number
}

/** Copies into reused blocks; for the gateway's own brokers (see the top of this file). */
export const makeRecyclingEventBytes = (options: RecyclingOptions = DEFAULT_RECYCLING): EventBytes => {
  // Keyed by each block's ArrayBuffer, which every copy handed out from it shares.
  const tracked = new Map<ArrayBufferLike, Block>()
  const spare: Array<Block> = []

  let taken = 0
  let takenAtTrim = 0
  const take = (): Block => {
    taken++
    const block = spare.pop() ?? { memory: Buffer.allocUnsafeSlow(options.blockBytes), used: 0, live: 0 }
    tracked.set(block.memory.buffer, block)
    if (tracked.size > options.trackedBlocks) forgetOldest()
    return block
  }
  let filling = take()

  /** Stops tracking a block: it is never reused, and goes once its copies are gone. */
  const forget = (block: Block): void => {
    tracked.delete(block.memory.buffer)
    if (block === filling) filling = take()
  }
  const forgetOldest = (): void => {
    for (const block of tracked.values()) {
      if (block === filling) continue
      tracked.delete(block.memory.buffer)
      return
    }
  }
  const recycle = (block: Block): void => {
    block.used = 0
    if (block === filling) return
    tracked.delete(block.memory.buffer)
    if (spare.length < options.spareBlocks) spare.push(block)
  }

  return {
    trim: () => {
      if (taken === takenAtTrim) spare.length = 0
      takenAtTrim = taken
    },
    copy: (bytes, start, end) => {
      const size = end - start
      if (size > options.largestCopy) return freshCopy(bytes, start, end)
      if (filling.used + size > options.blockBytes) {
        // Full: it waits for its last events to be released (at once, if they all were).
        const full = filling
        filling = take()
        if (full.live === 0) recycle(full)
      }
      const block = filling
      block.memory.set(bytes.subarray(start, end), block.used)
      const out = block.memory.subarray(block.used, block.used + size)
      block.used += size
      block.live++
      return out
    },
    release: (events, reusable) => {
      for (let i = 0; i < events.length; i++) {
        const block = tracked.get(events[i]!.data.buffer)
        if (block === undefined) continue
        if (!reusable) forget(block)
        else if (--block.live === 0) recycle(block)
        // A second release of one event would free a block still in use: stop trusting it.
        else if (block.live < 0) forget(block)
      }
    }
  }
}

/** How often the spare blocks are looked at: kept through a burst, let go after a quiet spell. */
const TRIM_EVERY = Duration.seconds(10)

/** Recycling event memory, for a generation publishing through one of the gateway's brokers. */
export const RecyclingEventBytesLive = Layer.effect(
  EventBytes,
  Effect.gen(function*() {
    const bytes = makeRecyclingEventBytes()
    yield* Effect.forkScoped(Effect.repeat(Effect.sync(bytes.trim), Schedule.spaced(TRIM_EVERY)))
    return bytes
  })
)
