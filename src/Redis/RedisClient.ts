// One ioredis client for the whole process, built from [redis] urls: a single URL is a plain
// server, several are the seed nodes of a Redis Cluster. The broker, the shard store and the
// identify limiter all share it (ioredis multiplexes commands over one connection per node).
//
// Failure policy: commands never wait inside ioredis. While the connection is down they fail at
// once (no offline queue), commands in flight when it drops fail as soon as the drop is seen
// (no resend), and a server that stops answering is dropped after SOCKET_TIMEOUT_MS. Callers
// retry with their own backoff; the gateway's Outbox is the one bounded buffer during outages.
// ioredis reconnects in the background by itself. Blocking commands (XREAD BLOCK, BLPOP...) must
// not use this shared client, whose socket timeout would cut them: use a duplicate() of it with
// `socketTimeout: undefined`.
import { Context, Data, Effect, Layer, Redacted, type Scope } from "effect"
import { Cluster, Redis } from "ioredis"
import { AppConfig } from "../Config/AppConfig.ts"
import { describeUrl, errorText, scrub } from "../Config/safeUrl.ts"
import { Backoffs, backoffDelayMs } from "../Resilience/Backoff.ts"
import { outageLog } from "../Resilience/OutageLog.ts"
import { redisNode } from "../Config/RedisUrl.ts"

export class RedisClientError extends Data.TaggedError("RedisClientError")<{
  readonly endpoint: string
  readonly reason: string
  readonly cause?: unknown
}> {
  override get message() {
    return `Redis at ${this.endpoint}: ${this.reason}`
  }
}

export interface RedisConnection {
  /** The ioredis client. `Redis` and `Cluster` share the command API (both are Commanders). */
  readonly client: Redis | Cluster
  readonly cluster: boolean
  /** The server(s) without credentials, for logs and errors. */
  readonly endpoint: string
  /** True when commands can be sent now. */
  readonly ready: () => boolean
  /** ioredis' connection status ("ready", "reconnecting", ...), for error messages. */
  readonly status: () => string
}

export class RedisClient extends Context.Service<RedisClient, RedisConnection>()("gateway/RedisClient") {
  /**
   * Built from AppConfig; a constant, so every layer that needs it shares one client per process.
   * Fails when the first connection cannot be made: a wrong URL or password should stop the
   * daemon before it connects to Discord, not surface later as an endless outage.
   */
  static readonly layer: Layer.Layer<RedisClient, RedisClientError, AppConfig> = Layer.effect(
    RedisClient,
    Effect.flatMap(AppConfig, (config) => makeRedisClient(config.redis.urls))
  )
}

/** How long the first connection (and each reconnect attempt) may take before it counts as failed. */
export const CONNECT_TIMEOUT_MS = 10_000
/** A connection with a command outstanding and no byte received for this long is dropped and redialled. */
export const SOCKET_TIMEOUT_MS = 10_000

/** ioredis wants the next redial's delay as a number: the shared redial backoff, forever. */
const reconnectDelay = (attempt: number): number => backoffDelayMs(Backoffs.redial, attempt, Math.random())

/**
 * A failed command's error in our words. ioredis words its own connection states as advice about
 * its options ("Reached the max retries per request limit (which is 0). Refer to
 * "maxRetriesPerRequest" option for details."), which no operator of the gateway can act on;
 * say what happened instead. Server replies (OOM, WRONGTYPE, NOGROUP...) are kept: they are the
 * reason, and some are the fix.
 */
export const redisErrorText = (cause: unknown): string => {
  const text = cause instanceof Error ? cause.message || cause.name : String(cause)
  if (text.includes("enableOfflineQueue") || text.includes("Stream isn't writeable")) return "the connection is down"
  if (text.includes("max retries per request")) return "the connection dropped before Redis answered"
  if (text.includes("Connection is closed")) return "the connection closed"
  if (text.includes("Socket timeout")) return `Redis sent nothing for ${SOCKET_TIMEOUT_MS / 1000}s while a command waited (hung server or network)`
  if (text.includes("OOM command not allowed")) {
    return `${text.replace(/OOM command not allowed.*$/s, "").trim()} Redis refuses writes because it reached maxmemory (OOM); free memory, trim streams or raise maxmemory`.trim()
  }
  return text
}

// Options shared by a plain client and every cluster node connection.
const nodeOptions = {
  connectionName: "spectacles-gateway",
  connectTimeout: CONNECT_TIMEOUT_MS,
  socketTimeout: SOCKET_TIMEOUT_MS,
  // Reject in-flight commands on the first connection loss instead of resending them after a
  // reconnect: the caller retries the whole batch anyway, and a resend would only add a duplicate.
  maxRetriesPerRequest: 0
} as const

export const makeRedisClient = (
  urls: ReadonlyArray<Redacted.Redacted<string>>
): Effect.Effect<RedisConnection, RedisClientError, Scope.Scope> =>
  Effect.gen(function*() {
    if (urls.length === 0) {
      return yield* new RedisClientError({ endpoint: "(none)", reason: "no URL configured; set REDIS_URL or urls in [redis]" })
    }
    const endpoint = urls.map(describeUrl).join(",")
    const cluster = urls.length > 1
    const client = cluster ? yield* clusterClient(urls, endpoint) : plainClient(urls[0]!)
    const firstUrl = urls[0]!
    const context = yield* Effect.context<never>()
    const log = (effect: Effect.Effect<void>) => void Effect.runForkWith(context)(effect)

    // An outage is logged once when it starts and once when it ends, not on every redial.
    const outage = outageLog(`the connection to Redis at ${endpoint}`)
    let up = false
    let down = false
    let closing = false
    // ioredis rejects a failed connect() with a bare "Connection is closed."; the socket's own
    // error (ECONNREFUSED, WRONGPASS, ...) arrives as an event just before and says more.
    let lastError: string | undefined
    const lost = (why: string) => {
      if (closing) return
      down = true
      log(outage.failed(`connection lost (${why})`))
    }
    client.on("error", (error: unknown) => {
      const why = scrub(redisErrorText(error), firstUrl)
      lastError = why
      if (up) lost(why)
      else log(Effect.logDebug(`Redis at ${endpoint}: ${why}`))
    })
    if (cluster) client.on("node error", (error: unknown) => log(Effect.logDebug(`Redis at ${endpoint}: node error: ${errorText(error, firstUrl)}`)))
    client.on("close", () => {
      if (up) lost("closed")
    })
    client.on("ready", () => {
      up = true
      if (!down) return
      down = false
      log(outage.succeeded)
    })

    yield* Effect.tryPromise({
      try: () => client.connect(),
      catch: (cause) => cause
    }).pipe(
      Effect.timeoutOrElse({
        duration: CONNECT_TIMEOUT_MS + 2_000,
        orElse: () => Effect.fail(new Error(`no connection within ${CONNECT_TIMEOUT_MS + 2_000} ms`))
      }),
      Effect.catch((cause) =>
        Effect.andThen(
          // Stop the background reconnect loop ioredis starts after a failed first attempt.
          Effect.sync(() => client.disconnect()),
          Effect.fail(
            new RedisClientError({
              endpoint,
              reason: `cannot connect: ${lastError ?? errorText(cause, firstUrl)}; check REDIS_URL / [redis] urls and that the server is running`,
              cause
            })
          )
        )
      )
    )
    yield* Effect.logDebug(`Redis at ${endpoint}: connected${cluster ? " (cluster)" : ""}`)

    yield* Effect.addFinalizer(() =>
      Effect.tryPromise(() => {
        closing = true
        return client.quit()
      }).pipe(
        // Bounded so a hung Redis cannot hold the shutdown past its budget.
        Effect.timeout("500 millis"),
        Effect.catch(() => Effect.void),
        // quit() fails while disconnected; disconnect() also stops any pending reconnect.
        Effect.andThen(Effect.sync(() => client.disconnect()))
      )
    )

    return {
      client,
      cluster,
      endpoint,
      ready: () => client.status === "ready",
      status: () => client.status
    } satisfies RedisConnection
  })

const plainClient = (url: Redacted.Redacted<string>): Redis =>
  // ioredis reads host, port, credentials, db and rediss: (TLS) from the URL itself.
  new Redis(Redacted.value(url), {
    ...nodeOptions,
    lazyConnect: true,
    enableOfflineQueue: false,
    retryStrategy: reconnectDelay
  })

const clusterClient = (urls: ReadonlyArray<Redacted.Redacted<string>>, endpoint: string) =>
  Effect.gen(function*() {
    const nodes = []
    for (const [i, url] of urls.entries()) {
      const node = redisNode(url)
      if (typeof node === "string") {
        return yield* new RedisClientError({ endpoint, reason: `entry ${i + 1} of [redis] urls: ${node}` })
      }
      nodes.push(node)
    }
    // Credentials and TLS come from the first URL that has them (cluster nodes share them).
    const auth = nodes.find((n) => n.password !== undefined || n.username !== undefined)
    const tls = nodes.some((n) => n.tls)
    return new Cluster(nodes.map((n) => ({ host: n.host, port: n.port })), {
      lazyConnect: true,
      enableOfflineQueue: false,
      clusterRetryStrategy: reconnectDelay,
      slotsRefreshTimeout: CONNECT_TIMEOUT_MS,
      redisOptions: {
        ...nodeOptions,
        ...(auth?.username !== undefined ? { username: auth.username } : {}),
        ...(auth?.password !== undefined ? { password: auth.password } : {}),
        ...(tls ? { tls: {} } : {})
      }
    })
  })
