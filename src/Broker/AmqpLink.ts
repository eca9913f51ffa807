// A self-healing AMQP connection with one confirm channel. amqplib hands out connections that stay
// dead once closed, so this module redials (jittered backoff, forever) and runs `setup` on every
// new channel before anyone may publish on it. While there is no channel, `channel()` returns
// undefined and callers fail fast instead of waiting: the gateway's Outbox holds the events.
//
// (amqplib 2.x also offers `recovery` on connect; it only redials the connection, and the channel,
// its listeners and the topology would still need rebuilding on each reconnect, so we do it all here.)
import { Deferred, Effect, Redacted, Schedule, type Scope } from "effect"
import * as amqp from "amqplib"
import type { ChannelModel, ConfirmChannel } from "amqplib"
import { describeUrl, errorText } from "../Observability/safeUrl.ts"
import { BrokerError } from "./Broker.ts"

export const CONNECT_TIMEOUT_MS = 10_000
/** AMQP heartbeat asked for when the URL does not set one: a silent peer is dropped after ~2x. */
export const HEARTBEAT_SECONDS = 10
const CLOSE_TIMEOUT = "5 seconds"

const reconnectBackoff = Schedule.min([Schedule.exponential("200 millis"), Schedule.spaced("5 seconds")]).pipe(
  Schedule.jittered
)

export interface AmqpLink {
  /** Server address without credentials, for logs and errors. */
  readonly endpoint: string
  /** The ready confirm channel, or undefined while (re)connecting or after close. */
  readonly channel: () => ConfirmChannel | undefined
  /** Why RabbitMQ blocked publishing on this connection (a resource alarm), if it does. */
  readonly blocked: () => string | undefined
  /** The most recent connection problem, for "not connected" errors. */
  readonly lastError: () => string | undefined
  /** Drops the current connection (it is redialled); for a channel in an unknown state. */
  readonly reset: (reason: string) => void
}

export interface AmqpLinkOptions {
  readonly url: Redacted.Redacted<string>
  /** Runs on every new confirm channel before it is handed out (declare exchanges, queues...). */
  readonly setup: (channel: ConfirmChannel) => Promise<void>
  /** Shown in RabbitMQ's management UI. */
  readonly connectionName: string
  /**
   * The group's direct exchange, declared (durable) on every new connection before `setup` runs;
   * one that already exists with other settings is used as it is (see `declareExchange`).
   */
  readonly exchange?: string
}

/** A connection attempt's failure: `setup` when the connection worked but `setup` threw. */
interface Failure {
  readonly setup: boolean
  readonly reason: string
}

class SetupFailed extends Error {}

/** Exchanges found declared with other settings, so that each is warned about once per process. */
const foreignExchanges = new Set<string>()

/**
 * Declares `name` as a durable direct exchange. RabbitMQ refuses a redeclaration with other
 * settings (PRECONDITION_FAILED), e.g. the original Go gateway's older releases declared the
 * group's exchange auto_delete; rather than stop, the existing exchange is then checked passively
 * and used as it is, and the difference is returned for a warning. Only an exchange that cannot
 * route events by name (fanout, headers, internal) still stops the start. Each attempt has its own
 * throwaway channel, because a refused declaration closes the channel it was made on.
 */
const declareExchange = async (model: ChannelModel, name: string): Promise<string | undefined> => {
  const attempt = async <A>(use: (channel: amqp.Channel) => Promise<A>): Promise<A> => {
    const channel = await model.createChannel()
    // The server closing this channel is expected here; the promise below carries the reason.
    channel.on("error", () => undefined)
    try {
      return await use(channel)
    } finally {
      await channel.close().catch(() => undefined)
    }
  }
  try {
    await attempt((channel) => channel.assertExchange(name, "direct", { durable: true }))
    return undefined
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error)
    if (!reason.includes("PRECONDITION_FAILED")) throw error
    // amqplib: `Operation failed: ExchangeDeclare; 406 (...) with message "PRECONDITION_FAILED - <what differs>"`
    const difference = /with message "(?:PRECONDITION_FAILED - )?(.*)"$/.exec(reason)?.[1] ?? reason
    // RabbitMQ names the first setting that differs, the type before the others. Events are
    // routed by exact event name: a topic exchange does that too, a fanout or headers exchange
    // cannot, and nobody may publish to an internal one.
    const type = /inequivalent arg 'type' .* current is '([^']*)'/.exec(difference)?.[1]
    if ((type !== undefined && type !== "topic") || difference.includes("inequivalent arg 'internal'")) {
      throw new Error(
        `${reason}; the gateway publishes to "${name}" by event name and needs a direct (or topic) exchange that is not internal: ` +
          `delete it or choose another [broker] group`
      )
    }
    await attempt((channel) => channel.checkExchange(name))
    return difference
  }
}

interface Live {
  readonly model: ChannelModel
  readonly channel: ConfirmChannel
  /** Completed with the reason when the connection or the channel goes away. */
  readonly lost: Deferred.Deferred<string>
}

/** The URL with a heartbeat added unless the user chose one (appended, the rest left byte for byte). */
const withHeartbeat = (url: string): string => {
  if (new URL(url).searchParams.has("heartbeat")) return url
  const [base, fragment] = url.split("#", 2)
  return `${base}${base!.includes("?") ? "&" : "?"}heartbeat=${HEARTBEAT_SECONDS}${fragment === undefined ? "" : `#${fragment}`}`
}

export const makeAmqpLink = (options: AmqpLinkOptions): Effect.Effect<AmqpLink, BrokerError, Scope.Scope> =>
  Effect.gen(function*() {
    const endpoint = describeUrl(options.url)
    const dialUrl = withHeartbeat(Redacted.value(options.url))
    const context = yield* Effect.context<never>()
    const log = (effect: Effect.Effect<void>) => void Effect.runForkWith(context)(effect)
    const text = (cause: unknown) => errorText(cause, options.url)

    let current: Live | undefined
    let blocked: string | undefined
    let lastError: string | undefined
    let closing = false

    const open = async (signal: AbortSignal): Promise<Live> => {
      const model = await amqp.connect(dialUrl, {
        timeout: CONNECT_TIMEOUT_MS,
        clientProperties: { connection_name: options.connectionName }
      })
      const lost = Deferred.makeUnsafe<string>()
      const lose = (reason: string) => {
        lastError = reason
        Deferred.doneUnsafe(lost, Effect.succeed(reason))
      }
      // 'error' (connection or channel) precedes 'close' and carries the reason; without a
      // listener it would throw.
      let reason = "connection closed"
      const noteError = (error: unknown) => void (reason = text(error))
      model.on("error", noteError)
      model.on("close", () => lose(reason))
      model.on("blocked", (why: string) => {
        blocked = why
        log(Effect.logWarning(`RabbitMQ at ${endpoint} blocked publishing (${why}); events are held until it unblocks`))
      })
      model.on("unblocked", () => {
        blocked = undefined
        log(Effect.logInfo(`RabbitMQ at ${endpoint} unblocked publishing`))
      })
      try {
        if (signal.aborted) throw new Error("aborted")
        const channel = await model.createConfirmChannel()
        channel.on("error", noteError)
        // A channel the server closed (e.g. on a failed declare) takes its connection along, so
        // recovery is always the same: redial and set up again.
        channel.on("close", () => {
          lose(reason)
          model.close().catch(() => undefined)
        })
        if (options.exchange !== undefined) {
          const exchange = options.exchange
          const difference = await declareExchange(model, exchange).catch((error: unknown) => {
            throw new SetupFailed(text(error))
          })
          if (difference !== undefined && !foreignExchanges.has(exchange)) {
            foreignExchanges.add(exchange)
            log(Effect.logWarning(
              `RabbitMQ exchange "${exchange}" already exists with other settings than the durable direct exchange ` +
                `the gateway declares (${difference}); using it as it is. It must route by event name (direct); ` +
                `to have the gateway's settings, delete it while no gateway runs`
            ))
          }
        }
        await options.setup(channel).catch((error: unknown) => {
          throw new SetupFailed(text(error))
        })
        if (signal.aborted) throw new Error("aborted")
        blocked = undefined
        return { model, channel, lost }
      } catch (error) {
        await model.close().catch(() => undefined)
        throw error
      }
    }

    const connect = Effect.tryPromise({
      try: (signal) => open(signal),
      catch: (cause): Failure => cause instanceof SetupFailed ? { setup: true, reason: cause.message } : { setup: false, reason: text(cause) }
    }).pipe(
      Effect.timeoutOrElse({
        duration: CONNECT_TIMEOUT_MS + 2_000,
        orElse: () => Effect.fail<Failure>({ setup: false, reason: `no connection within ${(CONNECT_TIMEOUT_MS + 2_000) / 1000}s` })
      }),
      Effect.tapError((failure) => Effect.sync(() => void (lastError = failure.reason)))
    )

    // Close last (registered first): the supervisor below is interrupted before this runs.
    yield* Effect.addFinalizer(() =>
      Effect.gen(function*() {
        closing = true
        const live = current
        current = undefined
        if (live === undefined) return
        // Let outstanding publishes be confirmed, then close politely; never fail or hang.
        yield* Effect.tryPromise(() => live.channel.waitForConfirms()).pipe(Effect.timeout(CLOSE_TIMEOUT), Effect.ignore)
        yield* Effect.tryPromise(() => live.channel.close()).pipe(Effect.timeout(CLOSE_TIMEOUT), Effect.ignore)
        yield* Effect.tryPromise(() => live.model.close()).pipe(Effect.timeout(CLOSE_TIMEOUT), Effect.ignore)
      })
    )

    // The first connection must succeed: a wrong URL or password should stop the daemon at once.
    current = yield* connect.pipe(
      Effect.mapError((failure) =>
        new BrokerError({
          broker: "amqp",
          reason: failure.setup
            ? `connected to ${endpoint}, but setting up exchanges and queues failed: ${failure.reason}`
            : `cannot connect to ${endpoint}: ${failure.reason}; check AMQP_URL / [amqp] url and that RabbitMQ is running`
        })
      )
    )
    yield* Effect.logDebug(`RabbitMQ at ${endpoint}: connected`)

    const supervise = Effect.gen(function*() {
      while (!closing) {
        const live = current
        if (live === undefined) return
        const reason = yield* Deferred.await(live.lost)
        if (closing) return
        current = undefined
        const since = Date.now()
        yield* Effect.logWarning(`RabbitMQ at ${endpoint}: connection lost (${reason}); reconnecting in the background`)
        current = yield* connect.pipe(
          Effect.tapError((failure) => Effect.logDebug(`RabbitMQ at ${endpoint}: reconnect failed: ${failure.reason}`)),
          Effect.retry(reconnectBackoff)
        )
        yield* Effect.logInfo(`RabbitMQ at ${endpoint}: connection restored after ${((Date.now() - since) / 1000).toFixed(1)}s`)
      }
    })
    yield* Effect.forkScoped(supervise)

    return {
      endpoint,
      channel: () => current?.channel,
      blocked: () => blocked,
      lastError: () => lastError,
      reset: (reason) => {
        const live = current
        if (live === undefined) return
        Deferred.doneUnsafe(live.lost, Effect.succeed(reason))
        live.model.close().catch(() => undefined)
      }
    } satisfies AmqpLink
  })
