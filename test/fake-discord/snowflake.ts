// Snowflake helpers. Ids are bigint internally and strings on the wire, like Discord.
// Guild ids are invented so that `(id >> 22n) % shardCount === shardId` holds, which is the
// routing rule the gateway must apply (DISCORD_GATEWAY.md §8).

export const DISCORD_EPOCH = 1420070400000n

/** A fixed point (2021-01-01) used as the timestamp of invented ids, so runs are reproducible. */
const BASE_DELTA = 1609459200000n - DISCORD_EPOCH

export function snowflake(deltaMs: bigint, worker = 0n, processId = 0n, increment = 0n): bigint {
  return (deltaMs << 22n) | ((worker & 31n) << 17n) | ((processId & 31n) << 12n) | (increment & 4095n)
}

export function shardOf(guildId: string | bigint, shardCount: number): number {
  return Number((BigInt(guildId) >> 22n) % BigInt(shardCount))
}

/**
 * The `index`-th guild id of shard `shardId` out of `shardCount`. Deterministic; the increment
 * bits are 0 so guild-relative ids (channels, roles) can be derived by adding small numbers.
 */
export function guildIdForShard(shardId: number, shardCount: number, index: number): string {
  const count = BigInt(shardCount)
  const aligned = BASE_DELTA - (BASE_DELTA % count)
  // Spread guilds roughly one second apart so ids look like distinct creation times.
  const delta = aligned + BigInt(shardId) + BigInt(index) * count * 1000n
  return snowflake(delta, 1n, 0n, 0n).toString()
}

/** Ids derived from a guild id: @everyone role equals the guild id, as on Discord. */
export function guildChild(guildId: string, offset: number): string {
  return (BigInt(guildId) + BigInt(offset)).toString()
}

/** User `n`'s id: stable, so members and authors refer to the same users across events. */
export function userId(n: number): string {
  return snowflake(BASE_DELTA - 86_400_000n * 200n + BigInt(n) * 7919n, 2n, 1n, BigInt(n % 4096)).toString()
}

/** Monotonic ids for messages and other "new" objects: current time, counter in low bits. */
export function createIdFactory(): () => string {
  let last = 0n
  let increment = 0n
  return () => {
    const delta = BigInt(Date.now()) - DISCORD_EPOCH
    if (delta === last) increment = (increment + 1n) & 4095n
    else {
      last = delta
      increment = 0n
    }
    return snowflake(delta, 3n, 2n, increment).toString()
  }
}
