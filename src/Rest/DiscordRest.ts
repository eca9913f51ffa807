// GET /gateway/bot: the gateway url, Discord's recommended shard count and the session budget.
import { USER_AGENT } from "../Discord/UserAgent.ts"
import { Context, Data, Duration, Effect, Layer, Redacted, Schedule, Schema } from "effect"
import { AppConfig } from "../Config/AppConfig.ts"
import { Backoffs, backoffSchedule } from "../Resilience/Backoff.ts"
import { type HttpAnswer, httpGet } from "./HttpGet.ts"

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

/**
 * Discord's JSON error codes that mean the token itself is bad, whatever the HTTP status: 40001
 * ("Unauthorized") and 50014 ("Invalid authentication token provided"). Compatible servers answer
 * a bad token with 400 or 403 and one of these.
 */
export const TOKEN_ERROR_CODES: ReadonlySet<number> = new Set([40001, 50014])

/** What the server said in an error answer: Discord's `{ code, message }`, or a piece of the text. */
export interface ServerAnswer {
  readonly status: number
  readonly code?: number | undefined
  readonly message?: string | undefined
}

const describeAnswer = (answer: ServerAnswer) => {
  const parts = [`HTTP ${answer.status}`]
  if (answer.code !== undefined) parts.push(`code ${answer.code}`)
  const said = answer.message === undefined ? "" : `: ${answer.message}`
  return `${parts.join(", ")}${said}`
}

/** The token was refused (401, or a token error code). Retrying cannot help. */
export class DiscordUnauthorized extends Data.TaggedError("DiscordUnauthorized")<{
  readonly answer?: ServerAnswer
}> {
  override get message() {
    const what = this.answer === undefined ? "HTTP 401" : describeAnswer(this.answer)
    return `Discord refused the bot token (${what} on /gateway/bot): copy a fresh token from the Discord Developer Portal (Bot tab) into DISCORD_TOKEN`
  }
}

/** Any other 4xx but 429: the request itself is refused, so retrying cannot help either. */
export class DiscordRequestRefused extends Data.TaggedError("DiscordRequestRefused")<{
  readonly url: string
  readonly answer: ServerAnswer
}> {
  override get message() {
    const hint = this.answer.status === 404 || this.answer.status === 405
      ? "check DISCORD_API_HOST / api.host and DISCORD_API_VERSION / api.version (the server has no such route)"
      : "retrying cannot help: the server's message says what it refused (and check that DISCORD_API_HOST / api.host is Discord or a server compatible with it)"
    return `Discord refused GET ${this.url} (${describeAnswer(this.answer)}); ${hint}`
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

export type GatewayBotError = DiscordUnauthorized | DiscordRequestRefused

export class DiscordRest extends Context.Service<DiscordRest, {
  /** Retries transient failures (5xx, 429, network) with the REST backoff; fails on any other 4xx. */
  readonly gatewayBot: Effect.Effect<GatewayBot, GatewayBotError>
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
          schedule: restRetrySchedule
        })
      ) as Effect.Effect<GatewayBot, GatewayBotError>
      return DiscordRest.of({ gatewayBot: retrying })
    })
  )
}

/**
 * The shared REST backoff (Backoffs.rest); a 429 waits at least what the server asked for.
 * The schedule sees the error as input, so it can honour retry_after.
 */
const restRetrySchedule = backoffSchedule(Backoffs.rest).pipe(
  Schedule.setInputType<DiscordRestError | GatewayBotError>(),
  Schedule.modifyDelay(({ input, duration }) =>
    Effect.succeed(
      input._tag === "DiscordRestError" && input.retryAfterMs !== undefined
        ? Duration.max(duration, Duration.millis(input.retryAfterMs))
        : duration
    )
  )
)

/** Discord's error body `{ code, message }`, else the first line of the text (bounded). */
export const readServerAnswer = (status: number, body: string): ServerAnswer => {
  try {
    const parsed = JSON.parse(body) as { code?: unknown; message?: unknown }
    if (parsed !== null && typeof parsed === "object") {
      return {
        status,
        code: typeof parsed.code === "number" ? parsed.code : undefined,
        message: typeof parsed.message === "string" ? oneLine(parsed.message) : undefined
      }
    }
  } catch {
    // not JSON: the text itself
  }
  const text = oneLine(body)
  return { status, message: text === "" ? undefined : text }
}

const oneLine = (text: string) => {
  const flat = text.replace(/\s+/g, " ").trim()
  return flat.length > 200 ? `${flat.slice(0, 200)}...` : flat
}

/** A 4xx other than 429, as the error that stops the start. */
export const refusal = (url: string, answer: ServerAnswer): GatewayBotError =>
  answer.status === 401 || (answer.code !== undefined && TOKEN_ERROR_CODES.has(answer.code))
    ? new DiscordUnauthorized({ answer })
    : new DiscordRequestRefused({ url: new URL(url).pathname, answer })

const fetchGatewayBot = (url: string, token: Redacted.Redacted<string>) =>
  Effect.gen(function*() {
    const response = yield* Effect.tryPromise({
      try: (signal) =>
        httpGet(
          url,
          { Authorization: `Bot ${Redacted.value(token)}`, "User-Agent": USER_AGENT },
          AbortSignal.any([signal, AbortSignal.timeout(15_000)])
        ),
      catch: (cause) => new DiscordRestError({ reason: describeNetworkError(cause) })
    })
    const body = response.body
    if (response.status === 429) {
      return yield* new DiscordRestError({ reason: "rate limited (HTTP 429)", retryAfterMs: retryAfterMs(response, body) })
    }
    if (response.status >= 400 && response.status < 500) {
      // A server that echoes the request must not put the token into our error line. Only the
      // error text is redacted: the answer itself is data (and a short test token is in every word).
      return yield* refusal(url, readServerAnswer(response.status, body.split(Redacted.value(token)).join("<token>")))
    }
    if (response.status < 200 || response.status > 299) return yield* new DiscordRestError({ reason: `HTTP ${response.status}` })
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

const retryAfterMs = (response: HttpAnswer, body: string): number => {
  try {
    const parsed = JSON.parse(body) as { retry_after?: unknown }
    if (typeof parsed.retry_after === "number") return Math.ceil(parsed.retry_after * 1000)
  } catch {
    // fall through to the header
  }
  const header = Number(response.header("retry-after"))
  return Number.isFinite(header) && header > 0 ? header * 1000 : 1000
}

const describeNetworkError = (cause: unknown): string => {
  if (cause instanceof Error) {
    const inner = (cause as { cause?: unknown }).cause
    return inner instanceof Error ? `${cause.message} (${inner.message})` : cause.message
  }
  return String(cause)
}
