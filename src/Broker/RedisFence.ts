// The publish fence in Redis. Per stream, a hash `{<STREAM>}<prefix>fence` maps each shard to the
// highest lease epoch raised for it. The hash tag is the stream's name, so on a Redis Cluster the
// hash shares the stream's slot and one script can check the fence and add the entries atomically
// (event names never contain braces, so the stream's own slot is the slot of its name). The fence
// only rises: a holder raises it when it claims a shard, and each fenced publish raises it to the
// epoch it carries.
import { createHash } from "node:crypto"
import { Effect } from "effect"
import type { ChainableCommander, Cluster, Redis } from "ioredis"
import { type RedisConnection, redisErrorText } from "../Redis/RedisClient.ts"
import { PublishFence, PublishFenceError } from "./Fence.ts"

/** The fence hash of `stream`, in the stream's hash slot. */
export const fenceKey = (stream: string, prefix: string): string => `{${stream}}${prefix}fence`

/** A raise that has not been answered by then fails (the claim decides what to do). */
export const RAISE_TIMEOUT_MS = 5_000

export interface LuaScript {
  readonly source: string
  readonly sha: string
}

const lua = (source: string): LuaScript => ({ source, sha: createHash("sha1").update(source).digest("hex") })

/**
 * KEYS: the stream, its fence hash. ARGV: the trim kind ("MAXLEN", "MINID" or "" for none), its
 * threshold, then per entry: shard, epoch, data, seq. Adds, in order, each entry whose epoch is not
 * below its shard's fence (raising the fence to it); epoch 0 (no leases) is never fenced. Then
 * trims the stream once, as each XADD's own trim would have (approximate, same threshold). Answers
 * the id of the last entry added (false when none was), followed by the 1-based positions of the
 * refused entries: an id per entry would cost Redis more than the entries themselves.
 */
export const FENCED_XADD = lua(`local stream, fence = KEYS[1], KEYS[2]
local fences = {}
local reply = { false }
for i = 3, #ARGV, 4 do
  local shard, epoch = ARGV[i], tonumber(ARGV[i + 1])
  local current = fences[shard]
  if current == nil then current = tonumber(redis.call('HGET', fence, shard) or '0') end
  if epoch > 0 and epoch < current then
    reply[#reply + 1] = (i + 1) / 4
  else
    if epoch > current then
      redis.call('HSET', fence, shard, ARGV[i + 1])
      current = epoch
    end
    reply[1] = redis.call('XADD', stream, '*', 'data', ARGV[i + 2], 'shard', shard, 'seq', ARGV[i + 3])
  end
  fences[shard] = current
end
if ARGV[1] ~= '' and reply[1] then redis.call('XTRIM', stream, ARGV[1], '~', ARGV[2]) end
return reply`)

/** KEYS: a fence hash. ARGV: shard, epoch. Raises the shard's fence to the epoch unless it is higher already. */
export const RAISE_FENCE = lua(`local current = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
if tonumber(ARGV[2]) > current then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
return current`)

export type ScriptArg = string | Buffer

/** Whether a reply error means the server does not have the script cached (restarted, SCRIPT FLUSH). */
export const isNoScript = (error: unknown): boolean => error instanceof Error && error.message.startsWith("NOSCRIPT")

/** Runs a script by its SHA, sending its source once when the server does not know it. */
export const evalScript = async (
  client: Redis | Cluster,
  script: LuaScript,
  keys: ReadonlyArray<string>,
  args: ReadonlyArray<ScriptArg>
): Promise<unknown> => {
  try {
    return await client.evalsha(script.sha, keys.length, ...keys, ...args)
  } catch (error) {
    if (!isNoScript(error)) throw error
    return client.eval(script.source, keys.length, ...keys, ...args)
  }
}

/** The same, queued on a pipeline (the caller falls back to `evalScript` on a NOSCRIPT reply). */
export const queueScript = (pipeline: ChainableCommander, script: LuaScript, keys: ReadonlyArray<string>, args: ReadonlyArray<ScriptArg>): void => {
  pipeline.evalsha(script.sha, keys.length, ...keys, ...args)
}

export interface RedisFenceOptions {
  /** Key prefix of the gateway's own keys ([shard_store] prefix). */
  readonly prefix: string
  /** Every stream this process may publish to, read at each raise. */
  readonly streams: () => Iterable<string>
}

/**
 * raise(shard, epoch) sets the shard's field in every stream's fence hash to at least `epoch`:
 * one small script per stream (a Cluster routes each to its slot's node), all sent at once.
 */
export const makeRedisFence = (redis: RedisConnection, options: RedisFenceOptions) =>
  PublishFence.of({
    raise: (shard, epoch) =>
      Effect.suspend(() => {
        const fail = (reason: string, cause?: unknown) => new PublishFenceError({ shard, epoch, reason, cause })
        if (!redis.ready()) return Effect.fail(fail(`not connected to Redis at ${redis.endpoint} (${redis.status()})`))
        const args = [String(shard), String(epoch)]
        const keys = Array.from(new Set(options.streams()), (stream) => fenceKey(stream, options.prefix))
        return Effect.tryPromise({
          try: () => Promise.all(keys.map((key) => evalScript(redis.client, RAISE_FENCE, [key], args))),
          catch: (cause) => fail(`Redis at ${redis.endpoint}: ${redisErrorText(cause)}`, cause)
        }).pipe(
          Effect.timeoutOrElse({
            duration: RAISE_TIMEOUT_MS,
            orElse: () => Effect.fail(fail(`no reply from Redis at ${redis.endpoint} within ${RAISE_TIMEOUT_MS / 1000}s`))
          }),
          Effect.asVoid
        )
      })
  })
