// The text printed for --help.
export const usage = `Usage: spectacles-gateway [options]

Options:
  --config PATH       TOML configuration file (default: ./gateway.toml if it exists)
  --log-level LEVEL   trace | debug | info | warn | error (overrides LOG_LEVEL and log_level)
  -h, --help          show this help and exit

The original Go gateway's flags work too: -config PATH, -loglevel LEVEL (its "suppress" level
logs errors only here).

Environment variables override the file key by key (DISCORD_TOKEN, DISCORD_EVENTS, DISCORD_INTENTS,
DISCORD_SHARD_COUNT, BROKER_TYPE, REDIS_URL, ...). See the configuration reference in README.md for every setting.
`
