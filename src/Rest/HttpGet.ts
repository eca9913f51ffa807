// One GET over node:http or node:https. The gateway asks Discord for /gateway/bot once at start and
// once per shard-count check; `fetch` would load undici for that, about 100 ms of every start
// (measured: the first fetch in a process takes 95-105 ms, the next one under 1 ms).
import { request as httpRequest } from "node:http"
import { request as httpsRequest } from "node:https"

export interface HttpAnswer {
  readonly status: number
  /** A response header by name (any case); the first value when repeated. */
  readonly header: (name: string) => string | undefined
  readonly body: string
}

/** /gateway/bot answers are a few hundred bytes; anything past this is not Discord's answer. */
export const MAX_ANSWER_BYTES = 1024 * 1024

/** GET `url`; rejects on a network error, an abort through `signal`, or an answer over MAX_ANSWER_BYTES. */
export const httpGet = (url: string, headers: Readonly<Record<string, string>>, signal: AbortSignal): Promise<HttpAnswer> =>
  new Promise((resolve, reject) => {
    const target = new URL(url)
    const send = target.protocol === "https:" ? httpsRequest : httpRequest
    // A connection of its own (agent: false): one request now and then, nothing to keep open.
    const request = send(target, { method: "GET", headers, signal, agent: false }, (response) => {
      const chunks: Array<Buffer> = []
      let size = 0
      response.on("data", (chunk: Buffer) => {
        size += chunk.length
        if (size > MAX_ANSWER_BYTES) return void response.destroy(new Error(`the answer is larger than ${MAX_ANSWER_BYTES} bytes`))
        chunks.push(chunk)
      })
      response.on("error", reject)
      response.on("close", () => {
        if (!response.complete) return reject(new Error("the connection closed before the answer was complete"))
        resolve({
          status: response.statusCode ?? 0,
          header: (name) => {
            const value = response.headers[name.toLowerCase()]
            return Array.isArray(value) ? value[0] : value
          },
          body: Buffer.concat(chunks).toString("utf8")
        })
      })
    })
    request.on("error", reject)
    request.end()
  })
