// GET /gateway/bot: the gateway url, Discord's recommended shard count and the session budget.
import { USER_AGENT } from "./UserAgent.ts"
import { Context, Data, Duration, Effect, Layer, Redacted, Schedule, Schema } from "effect"
import { AppConfig } from "../Config/AppConfig.ts"

export const SessionStartLimit = Schema.Struct({
  total: Schema.Number,
  remaining: Schema.Number,
  reset_after: Schema.Number,
  max_concurrency: Schema.Number
})

export const GatewayBot = Schema.Struct({
  url: Schema.String,
  shards: Schema.Number,
  session_start_limit: SessionStartLimit
})
export type GatewayBot = typeof GatewayBot.Type

const decodeGatewayBot = Schema.decodeUnknownResult(GatewayBot)

/** 401: the token is wrong. Retrying cannot help. */
export class DiscordUnauthorized extends Data.TaggedError("DiscordUnauthorized")<{}> {
  override get message() {
    return "Discord refused the bot token (HTTP 401 on /gateway/bot): copy a fresh token from the Discord Developer Portal (Bot tab) into DISCORD_TOKEN"
  }
}

/** Anything worth retrying: 5xx, 429, network errors, an answer we cannot read. */
export class DiscordRestError extends Data.TaggedError("DiscordRestError")<{
  readonly reason: string
  readonly retryAfterMs?: number
}> {
  override get message() {
    return `GET /gateway/bot failed: ${this.reason}`
  }
}

export class DiscordRest extends Context.Service<DiscordRest, {
  /** Retries transient failures with capped, jittered backoff; fails only on 401. */
  readonly gatewayBot: Effect.Effect<GatewayBot, DiscordUnauthorized>
}>()("gateway/DiscordRest") {
  static readonly layer = Layer.effect(
    DiscordRest,
    Effect.gen(function*() {
      const config = yield* AppConfig
      const { scheme, host, version } = config.api
      const url = `${scheme}://${host}/api/v${version}/gateway/bot`
      const once = fetchGatewayBot(url, config.token)
      const retrying = once.pipe(
        Effect.tapError((e) =>
          e._tag === "DiscordRestError" ? Effect.logWarning(`${e.message}; retrying`) : Effect.void
        ),
        Effect.retry({
          while: (e) => e._tag === "DiscordRestError",
          schedule: restBackoff
        })
      ) as Effect.Effect<GatewayBot, DiscordUnauthorized>
      return DiscordRest.of({ gatewayBot: retrying })
    })
  )
}

/**
 * 0.5 s doubling to a 30 s cap, jittered; a 429 waits at least what Discord asked for.
 * The schedule sees the error as input, so it can honour retry_after.
 */
const restBackoff = Schedule.min([Schedule.exponential("500 millis"), Schedule.spaced("30 seconds")]).pipe(
  Schedule.jittered,
  Schedule.setInputType<DiscordUnauthorized | DiscordRestError>(),
  Schedule.modifyDelay(({ input, duration }) =>
    Effect.succeed(
      input._tag === "DiscordRestError" && input.retryAfterMs !== undefined
        ? Duration.max(duration, Duration.millis(input.retryAfterMs))
        : duration
    )
  )
)

const fetchGatewayBot = (url: string, token: Redacted.Redacted<string>) =>
  Effect.gen(function*() {
    const response = yield* Effect.tryPromise({
      try: (signal) =>
        fetch(url, {
          headers: { Authorization: `Bot ${Redacted.value(token)}`, "User-Agent": USER_AGENT },
          signal: AbortSignal.any([signal, AbortSignal.timeout(15_000)])
        }),
      catch: (cause) => new DiscordRestError({ reason: describeNetworkError(cause) })
    })
    if (response.status === 401) return yield* new DiscordUnauthorized()
    const body = yield* Effect.tryPromise({
      try: () => response.text(),
      catch: (cause) => new DiscordRestError({ reason: describeNetworkError(cause) })
    })
    if (response.status === 429) {
      return yield* new DiscordRestError({ reason: "rate limited (HTTP 429)", retryAfterMs: retryAfterMs(response, body) })
    }
    if (!response.ok) return yield* new DiscordRestError({ reason: `HTTP ${response.status}` })
    const json = yield* Effect.try({
      try: () => JSON.parse(body) as unknown,
      catch: () => new DiscordRestError({ reason: "the answer is not JSON" })
    })
    const decoded = decodeGatewayBot(json)
    if (decoded._tag === "Failure") {
      return yield* new DiscordRestError({ reason: `unexpected answer: ${decoded.failure.message.split("\n")[0]}` })
    }
    return decoded.success
  })

const retryAfterMs = (response: Response, body: string): number => {
  try {
    const parsed = JSON.parse(body) as { retry_after?: unknown }
    if (typeof parsed.retry_after === "number") return Math.ceil(parsed.retry_after * 1000)
  } catch {
    // fall through to the header
  }
  const header = Number(response.headers.get("retry-after"))
  return Number.isFinite(header) && header > 0 ? header * 1000 : 1000
}

const describeNetworkError = (cause: unknown): string => {
  if (cause instanceof Error) {
    const inner = (cause as { cause?: unknown }).cause
    return inner instanceof Error ? `${cause.message} (${inner.message})` : cause.message
  }
  return String(cause)
}
