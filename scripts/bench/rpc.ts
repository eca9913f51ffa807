// Request/response over the Node IPC channel between the bench and its helper processes (fake
// Discord runner, peer clients, stdout sink). Keeping helpers in their own processes is what lets
// the bench charge CPU and memory to the right program.
import type { ChildProcess } from "node:child_process"

interface Request {
  readonly rpc: number
  readonly method: string
  readonly params: unknown
}

type Response = { readonly rpc: number; readonly ok: true; readonly value: unknown } | { readonly rpc: number; readonly ok: false; readonly error: string }

const isResponse = (m: unknown): m is Response => typeof m === "object" && m !== null && "rpc" in m && "ok" in m

/** Parent side: `call` sends a request to the child and resolves with its answer. */
export class RpcClient {
  readonly #child: ChildProcess
  readonly #name: string
  readonly #pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>()
  #next = 0

  constructor(child: ChildProcess, name: string) {
    this.#child = child
    this.#name = name
    child.on("message", (message: unknown) => {
      if (!isResponse(message)) return
      const waiter = this.#pending.get(message.rpc)
      if (waiter === undefined) return
      this.#pending.delete(message.rpc)
      if (message.ok) waiter.resolve(message.value)
      else waiter.reject(new Error(`${this.#name}: ${message.error}`))
    })
    child.once("exit", (code, signal) => {
      for (const waiter of this.#pending.values()) waiter.reject(new Error(`${this.#name} exited (code ${code}, signal ${signal})`))
      this.#pending.clear()
    })
  }

  call<T>(method: string, params: unknown = null, timeoutMs = 60_000): Promise<T> {
    const rpc = ++this.#next
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(rpc)
        reject(new Error(`${this.#name}: ${method} timed out after ${timeoutMs} ms`))
      }, timeoutMs)
      this.#pending.set(rpc, {
        resolve: (value) => {
          clearTimeout(timer)
          resolve(value as T)
        },
        reject: (error) => {
          clearTimeout(timer)
          reject(error)
        }
      })
      const request: Request = { rpc, method, params }
      this.#child.send(request)
    })
  }
}

export type Handlers = Record<string, (params: never) => unknown>

/** Child side: answers requests with the handlers; exits when the parent goes away. */
export function serve(handlers: Handlers): void {
  if (process.send === undefined) throw new Error("this helper must be started by the bench (it needs an IPC channel)")
  const send = process.send.bind(process)
  process.on("message", (message: Request) => {
    const handler = handlers[message.method] as ((params: unknown) => unknown) | undefined
    const reply = (response: Response): void => {
      send(response)
    }
    if (handler === undefined) return reply({ rpc: message.rpc, ok: false, error: `unknown method ${message.method}` })
    Promise.resolve()
      .then(() => handler(message.params))
      .then(
        (value) => reply({ rpc: message.rpc, ok: true, value: value ?? null }),
        (error: unknown) => reply({ rpc: message.rpc, ok: false, error: error instanceof Error ? error.message : String(error) })
      )
  })
  // An orphaned helper would keep ports and CPU: leave with the parent.
  process.on("disconnect", () => process.exit(0))
}

/**
 * Shared by the counting helpers: a running count of received events, and `target(n)` which
 * resolves once the count reaches n (no polling, so waiting costs the helper nothing).
 */
export class Counter {
  count = 0
  bytes = 0
  #targets: Array<{ n: number; resolve: (count: number) => void }> = []

  add(events: number, bytes: number): void {
    this.count += events
    this.bytes += bytes
    if (this.#targets.length === 0) return
    this.#targets = this.#targets.filter((t) => {
      if (this.count < t.n) return true
      t.resolve(this.count)
      return false
    })
  }

  target(n: number): Promise<number> {
    if (this.count >= n) return Promise.resolve(this.count)
    return new Promise((resolve) => this.#targets.push({ n, resolve }))
  }

  handlers(): Handlers {
    return {
      count: () => ({ count: this.count, bytes: this.bytes }),
      target: (n: number) => this.target(n)
    }
  }
}
