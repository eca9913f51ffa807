// The original Go Spectacles gateway's documented examples (its README, as published on GitHub as
// spec-tacles/gateway), kept verbatim so tests prove that they run here unchanged.

/** The README's "Config file" block. */
export const GO_CONFIG_FILE = `token = "" # Discord token
events = [] # array of gateway event names to publish

# https://discord.com/developers/docs/topics/gateway#gateway-intents
intents = [] # array of gateway intents to send when identifying

# everything below is optional

[shards]
count = 2
ids = [0, 1]

[broker]
type = "redis" # can also use "amqp"
group = "gateway"
message_timeout = "2m" # this is the default value: https://golang.org/pkg/time/#ParseDuration

[api]
version = 10
scheme = "https"
host = "discord.com"

# exposes Prometheus-compatible statistics
[prometheus]
address = ":8080"
endpoint = "/metrics"

[shard_store]
type = "redis" # if left empty, shard info is stored locally
prefix = "gateway" # string to prefix shard-store keys

[presence]
# https://discord.com/developers/docs/topics/gateway#update-status

[redis]
urls = ["localhost:6379"] # more than 1 URL will be interpreted as a cluster
pool_size = 5 # size of Redis connection pool

# required for AMQP broker type
[amqp]
url = "amqp://localhost"
`

/** The README's "Example presence" block. */
export const GO_PRESENCE_EXAMPLE = `[presence]
status = "online"

[presence.game]
name = "test"
type = 0
`

/** The README's Docker example's environment (`docker run -e ...`). */
export const GO_DOCKER_ENV = {
  DISCORD_TOKEN: "your token",
  DISCORD_EVENTS: "MESSAGE_CREATE",
  DISCORD_INTENTS: "GUILD,GUILD_MESSAGES"
} as const
