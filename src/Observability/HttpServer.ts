// The operator's HTTP port (prometheus.address): metrics for Prometheus, /healthz for "the process
// lives" and /readyz for "every owned shard is READY and the broker is reachable". Served by
// Effect's HTTP server (HttpRouter over @effect/platform-node's NodeHttpServer); what each route
// answers is the pure `route` below, so it is tested without a socket.
import { createServer, type Server } from "node:http"
import type { AddressInfo } from "node:net"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import { Data, Effect, Layer, Option } from "effect"
import * as HttpRouter from "effect/http/HttpRouter"
import type { HttpServerRequest } from "effect/http/HttpServerRequest"
import * as HttpServerResponse from "effect/http/HttpServerResponse"
import { CommandStats } from "../Commands/CommandStats.ts"
import { AppConfig } from "../Config/AppConfig.ts"
import { ShardPlan } from "../Cluster/ShardPlan.ts"
import type { ShardState } from "../Shard/ShardStatus.ts"
import { LiveGeneration } from "./LiveGeneration.ts"
import { GatewayStats } from "../Metrics/GatewayStats.ts"
import { Readiness } from "../Resilience/Readiness.ts"
import { observeGatewayScoped } from "./GatewayMetrics.ts"
import { renderMetrics } from "./MetricsText.ts"
import { observeRuntimeScoped } from "./RuntimeMetrics.ts"

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
  readonly shards: () => {
    readonly allReady: boolean
    readonly ready: number
    readonly total: number
    /** A cluster member that has not had its first look at the shards yet: it owns none so far. */
    readonly joining?: boolean
  }
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
  const { allReady, ready, total, joining } = probes.shards()
  if (joining === true) reasons.push("joining the cluster (no shards assigned yet)")
  else if (!allReady) reasons.push(`shards ready ${ready}/${total}`)
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

const reasonFor = (error: unknown): string => {
  const code = typeof error === "object" && error !== null ? (error as { code?: unknown }).code : undefined
  switch (code) {
    case "EADDRINUSE":
      return "the port is already in use by another process"
    case "EACCES":
      return "permission denied (ports below 1024 need privileges)"
    case "EADDRNOTAVAIL":
      return "this host has no such address"
    case "ENOTFOUND":
      return "the host name does not resolve"
    default:
      return error instanceof Error ? error.message : String(error)
  }
}

const formatBound = (server: Server): string => {
  const bound = server.address() as AddressInfo
  return bound.family === "IPv6" ? `[${bound.address}]:${bound.port}` : `${bound.address}:${bound.port}`
}

const respond = (reply: Reply) =>
  HttpServerResponse.text(reply.body, {
    status: reply.status,
    contentType: reply.contentType,
    ...(reply.headers === undefined ? {} : { headers: reply.headers })
  })

/** The routes as HttpRouter layers: each known path answers through `route`, anything else 404. */
export const routes = (endpoint: string, probes: Probes) => {
  const handler = (request: HttpServerRequest) =>
    Effect.sync(() => {
      try {
        return respond(route(request.method, request.url, endpoint, probes))
      } catch (error) {
        return respond(text(500, `failed: ${error instanceof Error ? error.message : String(error)}`))
      }
    })
  const paths = [...new Set([endpoint, "/healthz", "/readyz"])]
  return Layer.mergeAll(
    HttpRouter.add("*", "*", handler),
    ...paths.map((path) => HttpRouter.add("*", path as HttpRouter.PathInput, handler))
  )
}

/** Listens until the scope closes; fails at once when the address cannot be bound. */
export const serveHttp = (address: string, endpoint: string, probes: Probes) =>
  Effect.gen(function*() {
    const { host, port } = parseListenAddress(address)
    const server = createServer()
    const http = yield* NodeHttpServer.make(() => server, { host, port }).pipe(
      Effect.mapError((error) => new MetricsServerError({ address, reason: reasonFor(error.cause) }))
    )
    // Runs before the server's own close (finalizers run last-in first-out): keep-alive scrapers
    // would otherwise hold the close open.
    yield* Effect.addFinalizer(() => Effect.sync(() => server.closeAllConnections()))
    yield* http.serve(yield* HttpRouter.toHttpEffect(routes(endpoint, probes)))
    return { server, bound: formatBound(server) }
  })
/** The metrics and health server, reading every service it reports on (the live generation's through LiveGeneration). */
export const HttpServerLive = Layer.effectDiscard(
  Effect.gen(function*() {
    const config = yield* AppConfig
    const address = config.prometheus.address
    if (address === undefined) return
    const endpoint = config.prometheus.endpoint
    const stats = yield* GatewayStats
    const live = yield* LiveGeneration
    const plan = yield* ShardPlan
    const commands = Option.getOrUndefined(yield* Effect.serviceOption(CommandStats))
    const readiness = yield* Readiness
    const none: ReadonlyMap<number, ShardState> = new Map()
    const brokerConnected = () => live.current()?.broker.connected() ?? false
    const gateway = yield* observeGatewayScoped({
      stats,
      shards: () => live.current()?.status.snapshot() ?? none,
      outbox: { size: () => live.current()?.outbox.size() ?? 0, capacity: config.broker.bufferSize },
      broker: { name: config.broker.type, connected: brokerConnected },
      commands,
      sessionBudget: () => stats.sessionBudget() ?? plan.sessionStartLimit.remaining
    })
    const runtime = yield* observeRuntimeScoped
    const context = yield* Effect.context<never>()
    const probes: Probes = {
      metrics: () => renderMetrics(context, [gateway.collect, runtime.collect]),
      shards: () => {
        const status = live.current()?.status
        return status === undefined
          ? { allReady: false, ready: 0, total: 0 }
          : { allReady: status.allReady(), ready: status.readyCount(), total: status.snapshot().size, joining: !status.settled() }
      },
      brokerConnected,
      stopping: () => live.current()?.status.stopping() ?? false,
      problems: () => readiness.problems(),
      broken: () => readiness.brokenParts()
    }
    const { bound } = yield* serveHttp(address, endpoint, probes)
    yield* Effect.logInfo(`serving metrics at http://${bound}${endpoint}, health at /healthz and /readyz`)
  })
)
