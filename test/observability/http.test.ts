// The metrics and health endpoints, on a real socket (Effect's HTTP server): routes, readiness
// and health reasons, a taken port named in the error, and the port released when the scope
// closes even while a scraper keeps its connection alive.
import { Agent, request } from "node:http"
import { createServer } from "node:net"
import type { AddressInfo } from "node:net"
import { Effect, Exit, Scope } from "effect"
import { describe, expect, it } from "vitest"
import { METRICS_CONTENT_TYPE, parseListenAddress, type Probes, route, serveHttp } from "../../src/Observability/HttpServer.ts"

const probes = (state: { ready: number; total: number; broker: boolean }): Probes => ({
  metrics: () => "# HELP x_total x\n# TYPE x_total counter\nx_total 1\n",
  shards: () => ({ allReady: state.ready === state.total, ready: state.ready, total: state.total }),
  brokerConnected: () => state.broker
})

describe("route", () => {
  const up = probes({ ready: 4, total: 4, broker: true })
  it("serves the metrics text on the configured endpoint only", () => {
    expect(route("GET", "/metrics", "/metrics", up)).toMatchObject({ status: 200, contentType: METRICS_CONTENT_TYPE })
    expect(route("GET", "/custom?x=1", "/custom", up).status).toBe(200)
    expect(route("GET", "/metrics", "/custom", up).status).toBe(404)
    expect(route("POST", "/metrics", "/metrics", up)).toMatchObject({ status: 405, headers: { allow: "GET, HEAD" } })
  })
  it("/healthz is ok whatever the shards and broker", () => {
    expect(route("GET", "/healthz", "/metrics", probes({ ready: 0, total: 4, broker: false }))).toMatchObject({ status: 200, body: "ok\n" })
  })
  it("/readyz of a cluster member that has not looked at the shards yet is 503, and says so", () => {
    const joining: Probes = { ...up, shards: () => ({ allReady: false, ready: 0, total: 0, joining: true }) }
    expect(route("GET", "/readyz", "/metrics", joining)).toMatchObject({ status: 503, body: "joining the cluster (no shards assigned yet)\n" })
  })
  it("/readyz needs every shard ready and the broker connected, and says what is missing", () => {
    expect(route("GET", "/readyz", "/metrics", up)).toMatchObject({ status: 200, body: "ready\n" })
    expect(route("GET", "/readyz", "/metrics", probes({ ready: 3, total: 4, broker: true }))).toMatchObject({ status: 503, body: "shards ready 3/4\n" })
    expect(route("GET", "/readyz", "/metrics", probes({ ready: 4, total: 4, broker: false }))).toMatchObject({ status: 503, body: "broker disconnected\n" })
    expect(route("GET", "/readyz", "/metrics", probes({ ready: 0, total: 2, broker: false })).body).toBe("shards ready 0/2; broker disconnected\n")
  })
  it("/healthz fails with every part broken for good; /readyz lists every reported problem", () => {
    const broken = { ...up, broken: () => ["publisher: cannot be restarted", "checkpointer: died"] }
    expect(route("GET", "/healthz", "/metrics", broken)).toMatchObject({ status: 503, body: "publisher: cannot be restarted; checkpointer: died\n" })
    const problems = { ...probes({ ready: 1, total: 2, broker: true }), problems: () => ["shard store: cannot write /data: EACCES"] }
    expect(route("GET", "/readyz", "/metrics", problems)).toMatchObject({ status: 503, body: "shards ready 1/2; shard store: cannot write /data: EACCES\n" })
    expect(route("GET", "/healthz", "/metrics", problems).status).toBe(200)
  })
  it("/readyz turns 503 as soon as a graceful shutdown begins, while /healthz stays ok", () => {
    const stopping = { ...up, stopping: () => true }
    expect(route("GET", "/readyz", "/metrics", stopping)).toMatchObject({ status: 503, body: "shutting down\n" })
    expect(route("GET", "/healthz", "/metrics", stopping).status).toBe(200)
  })
})

describe("parseListenAddress", () => {
  it.each([
    [":9100", { host: undefined, port: 9100 }],
    ["127.0.0.1:9100", { host: "127.0.0.1", port: 9100 }],
    ["localhost:0", { host: "localhost", port: 0 }],
    ["[::1]:9100", { host: "::1", port: 9100 }]
  ])("%s", (address, expected) => {
    expect(parseListenAddress(address)).toEqual(expected)
  })
})

const freePort = () =>
  new Promise<number>((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address() as AddressInfo
      s.close(() => resolve(port))
    })
  })

describe("serveHttp", () => {
  it("answers on the bound port and releases it when the scope closes", async () => {
    const state = { ready: 1, total: 2, broker: true }
    const scope = Effect.runSync(Scope.make())
    const { bound } = await Effect.runPromise(Scope.provide(scope)(serveHttp("127.0.0.1:0", "/metrics", probes(state))))
    const base = `http://${bound}`
    const metrics = await fetch(`${base}/metrics`)
    expect(metrics.status).toBe(200)
    expect(metrics.headers.get("content-type")).toBe(METRICS_CONTENT_TYPE)
    expect(await metrics.text()).toContain("x_total 1")
    expect((await fetch(`${base}/healthz`)).status).toBe(200)
    const notReady = await fetch(`${base}/readyz`)
    expect([notReady.status, await notReady.text()]).toEqual([503, "shards ready 1/2\n"])
    state.ready = 2
    expect((await fetch(`${base}/readyz`)).status).toBe(200)
    const head = await fetch(`${base}/metrics`, { method: "HEAD" })
    expect([head.status, await head.text()]).toEqual([200, ""])
    const post = await fetch(`${base}/readyz`, { method: "POST" })
    expect([post.status, post.headers.get("allow")]).toEqual([405, "GET, HEAD"])
    const missing = await fetch(`${base}/nope`)
    expect([missing.status, await missing.text()]).toEqual([404, "not found\n"])
    // A scraper that keeps its connection open must not hold the shutdown.
    const agent = new Agent({ keepAlive: true })
    const kept = await new Promise<number>((resolve, reject) => {
      const req = request(`${base}/metrics`, { agent }, (res) => {
        res.resume()
        res.on("end", () => resolve(res.statusCode ?? 0))
      })
      req.on("error", reject)
      req.end()
    })
    expect(kept).toBe(200)
    await Effect.runPromise(Scope.close(scope, Exit.void))
    agent.destroy()
    await expect(fetch(`${base}/healthz`)).rejects.toThrow()
  })

  it("serves a custom endpoint, and /metrics is then unknown", async () => {
    const scope = Effect.runSync(Scope.make())
    const { bound } = await Effect.runPromise(Scope.provide(scope)(serveHttp("127.0.0.1:0", "/custom/metrics", probes({ ready: 1, total: 1, broker: true }))))
    try {
      expect((await fetch(`http://${bound}/custom/metrics?format=text`)).status).toBe(200)
      expect((await fetch(`http://${bound}/metrics`)).status).toBe(404)
      expect((await fetch(`http://${bound}/readyz`)).status).toBe(200)
    } finally {
      await Effect.runPromise(Scope.close(scope, Exit.void))
    }
  })

  it("fails with the address named when the port is taken", async () => {
    const port = await freePort()
    const holder = createServer()
    await new Promise<void>((resolve) => holder.listen(port, "127.0.0.1", resolve))
    try {
      const exit = await Effect.runPromiseExit(Effect.scoped(serveHttp(`127.0.0.1:${port}`, "/metrics", probes({ ready: 0, total: 0, broker: true }))))
      expect(Exit.isFailure(exit)).toBe(true)
      const error = Exit.isFailure(exit) ? exit.cause.reasons[0] : undefined
      expect(error?._tag).toBe("Fail")
      const message = error?._tag === "Fail" ? (error.error as Error).message : ""
      expect(message).toContain(`127.0.0.1:${port}`)
      expect(message).toContain("already in use")
    } finally {
      holder.close()
    }
  })
})
