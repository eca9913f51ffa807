import { createServer, type Server } from "node:http"
import type { AddressInfo } from "node:net"
import { afterEach, describe, expect, it } from "vitest"
import { httpGet, MAX_ANSWER_BYTES } from "../../src/Rest/HttpGet.ts"

let server: Server | undefined
afterEach(() => new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve())))

/** A server answering every request with `handler`; resolves to its base url. */
const serve = (handler: Parameters<typeof createServer>[1]) =>
  new Promise<string>((resolve) => {
    server = createServer(handler)
    server.listen(0, "127.0.0.1", () => resolve(`http://127.0.0.1:${(server!.address() as AddressInfo).port}`))
  })

const never = new AbortController().signal

describe("httpGet", () => {
  it("returns status, headers (any case) and body, and sends the headers given", async () => {
    const base = await serve((request, response) => {
      response.writeHead(429, { "Retry-After": "3", "Content-Type": "application/json" })
      response.end(JSON.stringify({ auth: request.headers["authorization"], path: request.url }))
    })
    const answer = await httpGet(`${base}/api/v10/gateway/bot?x=1`, { Authorization: "Bot t" }, never)
    expect(answer.status).toBe(429)
    expect(answer.header("retry-after")).toBe("3")
    expect(answer.header("Retry-After")).toBe("3")
    expect(JSON.parse(answer.body)).toEqual({ auth: "Bot t", path: "/api/v10/gateway/bot?x=1" })
  })

  it("refuses an answer past its size cap, and one cut off before its end", async () => {
    const big = await serve((_request, response) => {
      response.writeHead(200)
      response.end(Buffer.alloc(MAX_ANSWER_BYTES + 10, 0x61))
    })
    await expect(httpGet(big, {}, never)).rejects.toThrow(/larger than/)
    await new Promise<void>((resolve) => server!.close(() => resolve()))
    const cut = await serve((_request, response) => {
      response.writeHead(200, { "Content-Length": "100" })
      response.write("partial")
      setTimeout(() => response.socket?.destroy(), 20)
    })
    await expect(httpGet(cut, {}, never)).rejects.toThrow()
  })

  it("gives up when its signal aborts (a server that never answers)", async () => {
    const base = await serve(() => {})
    const started = Date.now()
    await expect(httpGet(base, {}, AbortSignal.timeout(200))).rejects.toThrow(/abort/i)
    expect(Date.now() - started).toBeLessThan(5_000)
    server!.closeAllConnections()
  })

  it("rejects when nothing listens", async () => {
    await expect(httpGet("http://127.0.0.1:1/", {}, never)).rejects.toThrow(/ECONNREFUSED/)
  })
})
