// Real services for the tests: reachable, or skipped loudly (and failed under CI=true).
import { connect } from "node:net"

export const REDIS_URL = process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379"
export const AMQP_URL = process.env.TEST_AMQP_URL ?? "amqp://guest:guest@127.0.0.1:5672"

const reachable = (port: number, host = "127.0.0.1") =>
  new Promise<boolean>((resolve) => {
    const socket = connect({ port, host })
    socket.setTimeout(1_000)
    socket.once("connect", () => {
      socket.destroy()
      resolve(true)
    })
    socket.once("error", () => resolve(false))
    socket.once("timeout", () => {
      socket.destroy()
      resolve(false)
    })
  })

/** True when the service answers; otherwise warns (outside CI) or throws (under CI=true). */
export const requireService = async (name: string, port: number): Promise<boolean> => {
  if (await reachable(port)) return true
  const message = `${name} is not reachable on 127.0.0.1:${port}`
  if (process.env.CI === "true") throw new Error(`${message}; CI needs it (see .ci/run)`)
  console.warn(`\n!!!!! SKIPPING: ${message}. Start it to run these tests. !!!!!\n`)
  return false
}

export const redisAvailable = await requireService("Redis", 6379)
export const amqpAvailable = await requireService("RabbitMQ", 5672)
