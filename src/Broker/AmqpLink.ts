// A self-healing AMQP connection with one confirm channel. amqplib hands out connections that stay
// dead once closed, so this module redials (jittered backoff, forever) and runs `setup` on every
// new channel before anyone may publish on it. While there is no channel, `channel()` returns
// undefined and callers fail fast instead of waiting: the gateway's Outbox holds the events.
//
// (amqplib 2.x also offers `recovery` on connect; it only redials the connection, and the channel,
// its listeners and the topology would still need rebuilding on each reconnect, so we do it all here.)
import { Deferred, Effect, Redacted, type Scope } from "effect"
import * as amqp from "amqplib"
import type { ChannelModel, ConfirmChannel } from "amqplib"
import { describeUrl, errorText } from "../Config/safeUrl.ts"
import { Backoffs, backoffSchedule } from "../Resilience/Backoff.ts"
import { outageLog } from "../Resilience/OutageLog.ts"
import { BrokerError } from "./Broker.ts"

export const CONNECT_TIMEOUT_MS = 10_000
/** AMQP heartbeat asked for when the URL does not set one: a silent peer is dropped after ~2x. */
export const HEARTBEAT_SECONDS = 10
const CLOSE_TIMEOUT = "5 seconds"

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
}

/** A connection attempt's failure: `setup` when the connection worked but `setup` threw. */
interface Failure {
  readonly setup: boolean
  readonly reason: string
}

class SetupFailed extends Error {}

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

    const outage = outageLog(`the connection to RabbitMQ at ${endpoint}`)
    const supervise = Effect.gen(function*() {
      while (!closing) {
        const live = current
        if (live === undefined) return
        const reason = yield* Deferred.await(live.lost)
        if (closing) return
        current = undefined
        yield* outage.failed(`connection lost (${reason})`)
        current = yield* connect.pipe(
          Effect.tapError((failure) => outage.failed(`reconnect failed: ${failure.reason}`)),
          Effect.retry(backoffSchedule(Backoffs.redial))
        )
        yield* outage.succeeded
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
