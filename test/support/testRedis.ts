// A Redis of a test's own, as a single server or a three-node Cluster: what the gateways are pointed
// at (REDIS_URL), a client, and how to empty it between tests. Cluster tests run each scenario on both.
import { Cluster, Redis } from "ioredis"
import { startRedisCluster } from "./redisCluster.ts"
import { startOwnRedis } from "./redisServer.ts"

export interface TestRedis {
  readonly url: string
  readonly client: Redis | Cluster
  readonly flush: () => Promise<unknown>
  readonly stop: () => Promise<void>
}

export const redisBackends: ReadonlyArray<{ readonly name: string; readonly start: () => Promise<TestRedis> }> = [
  {
    name: "a Redis server",
    start: async () => {
      const server = await startOwnRedis()
      const client = new Redis(server.url)
      return { url: server.url, client, flush: () => client.flushall(), stop: async () => (client.disconnect(), await server.kill()) }
    }
  },
  {
    name: "a three-node Redis Cluster",
    start: async () => {
      const cluster = await startRedisCluster()
      const client = new Cluster(cluster.ports.map((port) => ({ host: "127.0.0.1", port })))
      return {
        url: cluster.urls,
        client,
        flush: () => Promise.all(client.nodes("master").map((node) => node.flushall())),
        stop: async () => (client.disconnect(), await cluster.stop())
      }
    }
  }
]
