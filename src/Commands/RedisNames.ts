// Redis keys for commands. SEND is where bots add commands. Each shard has an inbox stream that
// only the process running it reads; its name carries the SEND hash tag ({SEND}) so that, on a
// Redis Cluster, SEND and every inbox share a slot and one XREADGROUP can read them all. The
// group is part of the name so gateways of different groups never read each other's inboxes.

export const SEND_STREAM = "SEND"

export const inboxStream = (group: string, shard: number): string => `{${SEND_STREAM}}:${group}:${shard}`

/**
 * The group part of a generation's inbox names (resharding): shard 1 of 4 is not shard 1 of 8, so
 * a later generation's inboxes are named apart. Generation 0 keeps the names it always had; SEND's
 * consumer group is the same for every generation.
 */
export const inboxNamespace = (group: string, generation = 0): string => (generation === 0 ? group : `${group}:g${generation}`)

/**
 * Most entries (unread or pending) an inbox may hold. An inbox is never trimmed: at this length
 * nothing more is appended to it, so reading SEND waits until the shard catches up (about 85
 * minutes of Discord's pacing), or, if it does not shrink at all, the commands are refused and
 * counted (see RedisForwarder.ts).
 */
export const INBOX_MAX_LENGTH = 10_000
