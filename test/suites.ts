// Which test files run where. `npm test` (the default config) is the fast suite: unit and
// in-process tests, broker integration, and a small smoke set of the built daemon (start, one
// resume, SIGTERM and SIGKILL restarts, one broker outage, startup errors). `npm run test:slow`
// runs the slower end-to-end suites: the full protocol matrix through the daemon, outages,
// multi-process, cluster and load tests. CI runs both.
export const SLOW_TESTS = [
  "test/commands/burst.e2e.test.ts",
  "test/commands/flood.e2e.test.ts",
  "test/commands/redis.e2e.test.ts",
  "test/commands/amqp.e2e.test.ts",
  "test/commands/stdin.e2e.test.ts",
  "test/e2e/resilience.test.ts",
  "test/e2e/fatal.test.ts",
  "test/e2e/scale.test.ts",
  "test/e2e/cluster.test.ts",
  "test/e2e/leases.test.ts",
  "test/e2e/elastic.test.ts",
  "test/e2e/reshard.test.ts",
  "test/e2e/long-outage.test.ts",
  "test/e2e/oversized.test.ts",
  "test/e2e/rest-answers.test.ts",
  "test/e2e/secrets.test.ts",
  "test/e2e/shard-store.test.ts",
  "test/migration/gateway.e2e.test.ts",
  "test/observability/daemon.e2e.test.ts"
]
