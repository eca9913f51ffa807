// Real services for the end-to-end tests: reachable, or skipped loudly (and failing under
// CI=true). One implementation, shared with the broker tests.
import { AMQP_URL, REDIS_URL, serviceAvailable } from "../brokers/support.ts"

export { AMQP_URL, REDIS_URL }

export const redisAvailable = await serviceAvailable("Redis", REDIS_URL)
export const amqpAvailable = await serviceAvailable("RabbitMQ", AMQP_URL)
