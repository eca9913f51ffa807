// The two REST routes a gateway needs: GET /api/v{N}/gateway and GET /api/v{N}/gateway/bot,
// with Discord's auth and rate-limit error shapes, plus injectable answers for /gateway/bot (any
// status, with Discord's error body or a chosen one).
import type { IncomingMessage, ServerResponse } from "node:http"
import type { FakeContext } from "./options.ts"

function reply(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  // A string body goes out as it is (an HTML error page from a proxy, say); anything else as JSON.
  const raw = typeof body === "string"
  const text = raw ? body : JSON.stringify(body)
  const contentType = raw ? "text/plain; charset=utf-8" : "application/json"
  res.writeHead(status, { "content-type": contentType, "content-length": Buffer.byteLength(text), ...headers })
  res.end(text)
}

export function createRestHandler(ctx: FakeContext): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const at = Date.now()
    const method = req.method ?? "GET"
    const path = new URL(req.url ?? "/", "http://fake-discord").pathname
    const match = /^\/api\/v(\d+)(\/.*?)\/?$/.exec(path)
    const version = match === null ? undefined : Number(match[1])
    const route = match === null ? undefined : match[2]
    const authorized = req.headers.authorization === `Bot ${ctx.options.token}`
    const record = (status: number): void => {
      ctx.records.restCalls.push({ method, path, version, status, authorized, at })
      ctx.notify()
    }
    req.on("error", () => {})
    res.on("error", () => {})
    req.resume()

    if (method !== "GET" || (route !== "/gateway" && route !== "/gateway/bot")) {
      record(404)
      return reply(res, 404, { message: "404: Not Found", code: 0 })
    }
    if (route === "/gateway") {
      record(200)
      return reply(res, 200, { url: ctx.gatewayUrl })
    }

    const failure = ctx.restFailures
    if (failure !== undefined && failure.remaining > 0) {
      failure.remaining--
      if (failure.remaining === 0) ctx.restFailures = undefined
      record(failure.status)
      if (failure.status === 429) {
        const retryAfter = failure.retryAfterSec
        const body = failure.body ?? { message: "You are being rate limited.", retry_after: retryAfter, global: false }
        return reply(res, 429, body, {
          "retry-after": String(Math.ceil(retryAfter)),
          "x-ratelimit-global": "false",
          "x-ratelimit-scope": "user"
        })
      }
      return reply(res, failure.status, failure.body ?? { message: `${failure.status}: Injected failure`, code: 0 })
    }
    if (!authorized) {
      record(401)
      return reply(res, 401, { message: "401: Unauthorized", code: 0 })
    }
    const limit = ctx.limiter.snapshot(at)
    record(200)
    reply(res, 200, {
      url: ctx.gatewayUrl,
      shards: ctx.shardCount,
      session_start_limit: {
        total: limit.total,
        remaining: limit.remaining,
        reset_after: limit.resetAfter,
        max_concurrency: ctx.limiter.maxConcurrency
      }
    })
  }
}
