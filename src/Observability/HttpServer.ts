// The operator's HTTP port (prometheus.address): metrics for Prometheus, /healthz for "the process
// lives" and /readyz for "every owned shard is READY and the broker is reachable". Plain node:http:
// three fixed routes do not need a router, and a scrape renders synchronously from plain counters.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"
import { Data, Effect, Layer, Option } from "effect"
import { Broker } from "../Broker/Broker.ts"
import { Outbox } from "../Broker/Outbox.ts"
import { CommandStats } from "../Commands/CommandStats.ts"
import { AppConfig } from "../Config/AppConfig.ts"
import { ShardPlan } from "../Shard/ShardPlan.ts"
import { ShardStatus } from "../Shard/ShardStatus.ts"
import { GatewayStats } from "./GatewayStats.ts"
import { Readiness } from "./Readiness.ts"
import { renderMetrics } from "./MetricsText.ts"

export class MetricsServerError extends Data.TaggedError("MetricsServerError")<{
  readonly address: string
  readonly reason: string
}> {
  override get message() {
    return `cannot serve metrics on ${this.address} (prometheus.address / PROMETHEUS_ADDRESS): ${this.reason}`
  }
}

export const METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

/** What the routes read; each call is synchronous and cheap. */
export interface Probes {
  readonly metrics: () => string
  /** `allReady` decides; the counts only word the 503. */
  readonly shards: () => { readonly allReady: boolean; readonly ready: number; readonly total: number }
  readonly brokerConnected: () => boolean
  /** True once a graceful shutdown began: a load balancer should stop sending work here. */
  readonly stopping?: () => boolean
  /** Problems the parts reported (store failing, publishes failing, ...). */
  readonly problems?: () => ReadonlyArray<string>
  /** Parts broken for good: /healthz fails. */
  readonly broken?: () => ReadonlyArray<string>
}

export interface Reply {
  readonly status: number
  readonly contentType: string
  readonly body: string
  readonly headers?: Readonly<Record<string, string>>
}

const text = (status: number, body: string, headers?: Record<string, string>): Reply =>
  headers === undefined
    ? { status, contentType: "text/plain; charset=utf-8", body: `${body}\n` }
    : { status, contentType: "text/plain; charset=utf-8", body: `${body}\n`, headers }

/** Why the process is not ready, or undefined when it is. */
export const notReadyReason = (
  probes: Pick<Probes, "shards" | "brokerConnected" | "stopping" | "problems">
): string | undefined => {
  const reasons: Array<string> = []
  if (probes.stopping?.()) reasons.push("shutting down")
  const { allReady, ready, total } = probes.shards()
  if (!allReady) reasons.push(`shards ready ${ready}/${total}`)
  if (!probes.brokerConnected()) reasons.push("broker disconnected")
  if (probes.problems) reasons.push(...probes.problems())
  return reasons.length === 0 ? undefined : reasons.join("; ")
}

/** The routes, as a pure function of the request line (tested without a socket). */
export const route = (method: string, url: string, endpoint: string, probes: Probes): Reply => {
  const path = url.split("?", 1)[0]!
  const known = path === endpoint || path === "/healthz" || path === "/readyz"
  if (!known) return text(404, "not found")
  if (method !== "GET" && method !== "HEAD") return text(405, "method not allowed", { allow: "GET, HEAD" })
  if (path === "/healthz") {
    const broken = probes.broken?.() ?? []
    return broken.length === 0 ? text(200, "ok") : text(503, broken.join("; "))
  }
  if (path === "/readyz") {
    const reason = notReadyReason(probes)
    return reason === undefined ? text(200, "ready") : text(503, reason)
  }
  return { status: 200, contentType: METRICS_CONTENT_TYPE, body: probes.metrics() }
}

/** `host:port`, `:port` (every interface) or `[v6]:port`, as validated by the config loader. */
export const parseListenAddress = (address: string): { readonly host: string | undefined; readonly port: number } => {
  const colon = address.lastIndexOf(":")
  let host = address.slice(0, colon)
  if (host.startsWith("[") && host.endsWith("]")) host = host.slice(1, -1)
  return { host: host === "" ? undefined : host, port: Number(address.slice(colon + 1)) }
}

const reasonFor = (error: NodeJS.ErrnoException): string => {
  switch (error.code) {
    case "EADDRINUSE":
      return "the port is already in use by another process"
    case "EACCES":
      return "permission denied (ports below 1024 need privileges)"
    case "EADDRNOTAVAIL":
      return "this host has no such address"
    case "ENOTFOUND":
      return "the host name does not resolve"
    default:
      return error.message
  }
}

const formatBound = (server: Server): string => {
  const bound = server.address() as AddressInfo
  return bound.family === "IPv6" ? `[${bound.address}]:${bound.port}` : `${bound.address}:${bound.port}`
}

/** Listens until the scope closes; fails at once when the address cannot be bound. */
export const serveHttp = (address: string, endpoint: string, probes: Probes) =>
  Effect.acquireRelease(
    Effect.callback<Server, MetricsServerError>((resume) => {
      const server = createServer((req: IncomingMessage, res: ServerResponse) => {
        let reply: Reply
        try {
          reply = route(req.method ?? "GET", req.url ?? "/", endpoint, probes)
        } catch (error) {
          reply = text(500, `failed: ${error instanceof Error ? error.message : String(error)}`)
        }
        res.writeHead(reply.status, { "content-type": reply.contentType, ...reply.headers })
        res.end(req.method === "HEAD" ? undefined : reply.body)
      })
      const { host, port } = parseListenAddress(address)
      const onListenError = (error: NodeJS.ErrnoException) =>
        resume(Effect.fail(new MetricsServerError({ address, reason: reasonFor(error) })))
      server.once("error", onListenError)
      server.listen({ host, port }, () => {
        server.off("error", onListenError)
        // Once listening, a failed request socket must not take the daemon down.
        server.on("error", () => {})
        server.on("clientError", (_error, socket) => socket.destroy())
        resume(Effect.succeed(server))
      })
      return Effect.sync(() => void server.close())
    }),
    (server) =>
      Effect.callback<void>((resume) => {
        server.close(() => resume(Effect.void))
        // Keep-alive scrapers would otherwise hold the close open.
        server.closeAllConnections()
      })
  ).pipe(Effect.map((server) => ({ server, bound: formatBound(server) })))

/** The metrics and health server, reading every service it reports on. */
export const HttpServerLive = Layer.effectDiscard(
  Effect.gen(function*() {
    const config = yield* AppConfig
    const address = config.prometheus.address
    if (address === undefined) return
    const endpoint = config.prometheus.endpoint
    const stats = yield* GatewayStats
    const status = yield* ShardStatus
    const outbox = yield* Outbox
    const broker = yield* Broker
    const plan = yield* ShardPlan
    const commands = Option.getOrUndefined(yield* Effect.serviceOption(CommandStats))
    const readiness = yield* Readiness
    const probes: Probes = {
      metrics: () =>
        renderMetrics({
          stats,
          shards: status.snapshot(),
          outbox: { size: outbox.size(), capacity: outbox.capacity },
          broker: { name: broker.name, connected: broker.connected() },
          commands,
          sessionBudget: stats.sessionBudget() ?? plan.sessionStartLimit.remaining
        }),
      shards: () => ({ allReady: status.allReady(), ready: status.readyCount(), total: status.snapshot().size }),
      brokerConnected: () => broker.connected(),
      stopping: () => status.stopping(),
      problems: () => readiness.problems(),
      broken: () => readiness.brokenParts()
    }
    const { bound } = yield* serveHttp(address, endpoint, probes)
    yield* Effect.logInfo(`serving metrics at http://${bound}${endpoint}, health at /healthz and /readyz`)
  })
)
