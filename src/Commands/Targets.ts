// A command's target turned into per-shard payloads, using the bot's total shard count (not just
// the shards this process runs: a broadcast reaches every shard, wherever it runs).
import type { Command } from "./Command.ts"
import { serialisePayload } from "./Command.ts"
import { shardOfGuild } from "./Snowflake.ts"

/** One payload for one shard. */
export interface Part {
  readonly shard: number
  readonly payload: string
}

export const commandParts = (command: Command, shardCount: number): ReadonlyArray<Part> => {
  const { target, payload } = command
  if (target === "all") return Array.from({ length: shardCount }, (_, shard) => ({ shard, payload }))
  if ("shard" in target) return [{ shard: target.shard, payload }]
  if ("guild" in target) return [{ shard: shardOfGuild(target.guild, shardCount), payload }]
  // Request Soundboard Sounds: each shard asks only for its own guilds, ids kept as the bot wrote them.
  const original = command.d.guild_ids as ReadonlyArray<unknown>
  const byShard = new Map<number, Array<unknown>>()
  target.guilds.forEach((guild, i) => {
    const shard = shardOfGuild(guild, shardCount)
    const ids = byShard.get(shard)
    if (ids) ids.push(original[i])
    else byShard.set(shard, [original[i]])
  })
  const shards = Array.from(byShard.keys()).sort((a, b) => a - b)
  if (shards.length === 1) return [{ shard: shards[0]!, payload }]
  // A subset of a payload that fit in 4096 bytes fits too.
  return shards.map((shard) => ({ shard, payload: serialisePayload(command.op, { ...command.d, guild_ids: byShard.get(shard) })! }))
}
