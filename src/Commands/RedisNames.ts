// Redis keys for commands. SEND is where bots add commands. Each shard has an inbox stream that
// only the process running it reads; its name carries the SEND hash tag ({SEND}) so that, on a
// Redis Cluster, SEND and every inbox share a slot and one XREADGROUP can read them all. The
// group is part of the name so gateways of different groups never read each other's inboxes.

export const SEND_STREAM = "SEND"

export const inboxStream = (group: string, shard: number): string => `{${SEND_STREAM}}:${group}:${shard}`

/** Approximate cap of an inbox's backlog (entries are deleted once sent; this only bounds a dead shard's). */
export const INBOX_MAX_LENGTH = 10_000
