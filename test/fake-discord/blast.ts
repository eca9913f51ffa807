// Sends many dispatches to one shard as fast as the client reads them, for benchmarks.
// Memory stays bounded: we pause whenever the socket (plus compressor) backlog exceeds HIGH_WATER,
// and `d` encodings (JSON, and for zlib-stream self-contained deflate blocks) are cached by object
// identity, so a payload list that repeats objects is serialized and compressed once.
import { setImmediate as yieldToLoop, setTimeout as sleep } from "node:timers/promises"
import { deliverPrepared } from "./gateway.ts"
import type { GatewayConnection, PreparedBody } from "./connection.ts"
import type { FakeContext } from "./options.ts"
import type { Session } from "./sessions.ts"

const HIGH_WATER = 4 * 1024 * 1024
const LOW_WATER = 1024 * 1024
/** Yield to the event loop this often even when the socket keeps up, so others get a turn. */
const YIELD_EVERY = 512

export interface BlastPayload {
  readonly t: string
  readonly d: unknown
}

export async function blast(ctx: FakeContext, shardId: number, payloads: Iterable<BlastPayload>): Promise<number> {
  const session = ctx.sessions.ofShard(shardId)
  if (session === undefined) throw new Error(`blast: shard ${shardId} has no session`)
  // Weak: a generator yielding fresh objects must not make the cache grow without bound.
  const prepared = new WeakMap<object, PreparedBody>()
  const prepare = (d: unknown): PreparedBody => {
    const key = typeof d === "object" && d !== null ? d : undefined
    let body = key === undefined ? undefined : prepared.get(key)
    if (body === undefined) {
      const dJson = JSON.stringify(d ?? null)
      body = { dJson, tail: Buffer.from(dJson + "}"), deflated: undefined }
      if (key !== undefined) prepared.set(key, body)
    }
    return body
  }
  let lastSeq = session.seq
  let sent = 0
  // Frames are batched under socket.cork(): one writev per batch instead of one per frame,
  // which is where most of the time went otherwise.
  let corked: GatewayConnection | undefined
  const uncork = (): void => {
    corked?.socket.uncork()
    corked = undefined
  }
  try {
    for (const payload of payloads) {
      if (session.connection?.writable !== true) {
        uncork()
        await waitWritable(ctx, session, shardId)
      }
      const conn = session.connection!
      if (corked !== conn) {
        uncork()
        conn.socket.cork()
        corked = conn
      }
      lastSeq = deliverPrepared(session, payload.t, prepare(payload.d))
      if (++sent % YIELD_EVERY === 0 || conn.backlog > HIGH_WATER) {
        uncork()
        if (conn.backlog > HIGH_WATER) await conn.waitForRoom(LOW_WATER)
        else await yieldToLoop()
      }
    }
  } finally {
    uncork()
  }
  // "Written" means handed to the kernel: wait for the user-space backlog to empty.
  await session.connection?.waitForRoom(0)
  return lastSeq
}

/** While the shard is reconnecting, hold the blast (its session buffer would overflow otherwise). */
async function waitWritable(ctx: FakeContext, session: Session, shardId: number): Promise<void> {
  while (session.connection?.writable !== true) {
    if (ctx.sessions.get(session.id) !== session) throw new Error(`blast: session of shard ${shardId} ended`)
    await sleep(5)
  }
}
