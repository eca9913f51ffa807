// A minimal Chrome DevTools Protocol client for a process started with --inspect=127.0.0.1:0:
// enough to read memory figures, take a heap snapshot and run the sampling heap profiler in the
// gateway while it works, without changing the gateway.
import WebSocket from "ws"
import { waitUntil } from "./proc.ts"

export class Inspector {
  readonly #ws: WebSocket
  readonly #pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>()
  readonly #listeners = new Map<string, Array<(params: unknown) => void>>()
  #next = 0

  private constructor(ws: WebSocket) {
    this.#ws = ws
    ws.on("message", (data: Buffer) => {
      const message = JSON.parse(data.toString("utf8")) as { id?: number; result?: unknown; error?: { message: string }; method?: string; params?: unknown }
      if (message.id !== undefined) {
        const waiter = this.#pending.get(message.id)
        this.#pending.delete(message.id)
        if (message.error !== undefined) waiter?.reject(new Error(`inspector: ${message.error.message}`))
        else waiter?.resolve(message.result)
      } else if (message.method !== undefined) {
        for (const listener of this.#listeners.get(message.method) ?? []) listener(message.params)
      }
    })
    ws.on("close", () => {
      for (const waiter of this.#pending.values()) waiter.reject(new Error("inspector connection closed"))
      this.#pending.clear()
    })
  }

  /** Finds "Debugger listening on ws://…" in the child's stderr and connects. */
  static async attach(stderr: () => string, timeoutMs = 30_000): Promise<Inspector> {
    let url: string | undefined
    await waitUntil(() => (url = /Debugger listening on (ws:\/\/\S+)/.exec(stderr())?.[1]) !== undefined, timeoutMs, "the inspector's address")
    const ws = new WebSocket(url!, { perMessageDeflate: false, maxPayload: 0 })
    await new Promise<void>((resolve, reject) => {
      ws.once("open", resolve)
      ws.once("error", reject)
    })
    return new Inspector(ws)
  }

  call<T = unknown>(method: string, params: object = {}): Promise<T> {
    const id = ++this.#next
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (value: unknown) => void, reject })
      this.#ws.send(JSON.stringify({ id, method, params }))
    })
  }

  on(method: string, listener: (params: unknown) => void): () => void {
    const list = this.#listeners.get(method) ?? []
    list.push(listener)
    this.#listeners.set(method, list)
    return () => this.#listeners.set(method, (this.#listeners.get(method) ?? []).filter((l) => l !== listener))
  }

  /** Evaluates an expression in the gateway's main context; returns its JSON value. */
  async evaluate<T>(expression: string): Promise<T> {
    const result = await this.call<{ result: { value?: T }; exceptionDetails?: { text: string } }>("Runtime.evaluate", { expression, returnByValue: true })
    if (result.exceptionDetails !== undefined) throw new Error(`inspector: ${expression}: ${result.exceptionDetails.text}`)
    return result.result.value as T
  }

  /** process.memoryUsage() and the V8 heap spaces of the gateway, bytes. */
  memory(): Promise<MemoryReading> {
    return this.evaluate<MemoryReading>(
      "(() => { const m = process.memoryUsage(); const spaces = {}; " +
        "for (const s of process.getBuiltinModule('v8').getHeapSpaceStatistics()) spaces[s.space_name] = { size: s.space_size, used: s.space_used_size }; " +
        "return { rss: m.rss, heapTotal: m.heapTotal, heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers, spaces } })()"
    )
  }

  /** A full heap snapshot (after a GC), as its JSON text. */
  async heapSnapshot(): Promise<string> {
    const chunks: Array<string> = []
    const off = this.on("HeapProfiler.addHeapSnapshotChunk", (params) => chunks.push((params as { chunk: string }).chunk))
    try {
      await this.call("HeapProfiler.enable")
      await this.call("HeapProfiler.collectGarbage")
      await this.call("HeapProfiler.takeHeapSnapshot", { reportProgress: false })
      return chunks.join("")
    } finally {
      off()
    }
  }

  close(): void {
    this.#ws.close()
  }
}

export interface MemoryReading {
  readonly rss: number
  readonly heapTotal: number
  readonly heapUsed: number
  readonly external: number
  readonly arrayBuffers: number
  readonly spaces: Record<string, { size: number; used: number }>
}
