// Discord ids are unsigned 64-bit integers; JavaScript numbers lose precision above 2^53, so
// routing math is done on bigint (DISCORD_GATEWAY.md §1, §8).

const MAX_SNOWFLAKE = (1n << 64n) - 1n
const DIGITS = /^[0-9]{1,20}$/

/** The id as a bigint, or undefined when `value` is not a snowflake (string, safe integer or bigint). */
export const parseSnowflake = (value: unknown): bigint | undefined => {
  if (typeof value === "string") {
    if (!DIGITS.test(value)) return undefined
    const id = BigInt(value)
    return id <= MAX_SNOWFLAKE ? id : undefined
  }
  if (typeof value === "number") return Number.isSafeInteger(value) && value >= 0 ? BigInt(value) : undefined
  if (typeof value === "bigint") return value >= 0n && value <= MAX_SNOWFLAKE ? value : undefined
  return undefined
}

/** The shard that holds a guild: `(guild_id >> 22) % shard_count`. */
export const shardOfGuild = (guildId: bigint, shardCount: number): number => Number((guildId >> 22n) % BigInt(shardCount))
