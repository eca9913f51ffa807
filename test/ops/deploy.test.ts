// The deployment examples (deploy/ and the compose files) stay consistent with the gateway: they
// parse, their probes hit paths and the port the gateway serves, their variables are ones the
// gateway reads, and the grace period outlasts a graceful shutdown plus a shard handoff.
import { execFileSync } from "node:child_process"
import { existsSync, readdirSync, readFileSync } from "node:fs"
import { join, relative } from "node:path"
import { Result } from "effect"
import { describe, expect, it } from "vitest"
import { LEASE_TTL_MS } from "../../src/Cluster/ShardLeases.ts"
import { parseDuration } from "../../src/Config/duration.ts"
import { parseListenAddress, route } from "../../src/Observability/HttpServer.ts"
import { parseYamlDocuments, YamlSubsetError } from "../support/miniYaml.ts"
import type { YamlValue } from "../support/miniYaml.ts"

const ROOT = join(import.meta.dirname, "..", "..")
/** Announced by the cluster work (TOML shards.max); not read by src/Config yet on every branch. */
const NEW_VARIABLES = new Set(["DISCORD_SHARD_MAX"])
/** The gateway exits by itself this long after shutdown_timeout (README, "Stop"). */
const SHUTDOWN_OVERRUN_MS = 2_000

type Obj = { [key: string]: YamlValue }
const obj = (value: YamlValue | undefined): Obj => {
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw new Error(`expected a mapping, got ${JSON.stringify(value)}`)
  return value
}
const list = (value: YamlValue | undefined): Array<YamlValue> => {
  if (!Array.isArray(value)) throw new Error(`expected a sequence, got ${JSON.stringify(value)}`)
  return value
}

function yamlFiles(dir: string): Array<string> {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) return yamlFiles(path)
    return /\.ya?ml$/.test(entry.name) ? [path] : []
  })
}

const FILES = [...yamlFiles(join(ROOT, "deploy")), join(ROOT, "docker-compose.yml")].sort()
const parsed = new Map(FILES.map((file) => [relative(ROOT, file), parseYamlDocuments(readFileSync(file, "utf8"), relative(ROOT, file))]))
const docsOf = (file: string): Array<YamlValue> => parsed.get(file) ?? []

/** Every environment variable name the gateway's configuration reads (string literals in src/Config). */
const KNOWN_VARIABLES: ReadonlySet<string> = (() => {
  const dir = join(ROOT, "src", "Config")
  const names = new Set<string>()
  for (const file of readdirSync(dir)) {
    for (const m of readFileSync(join(dir, file), "utf8").matchAll(/"([A-Z][A-Z0-9_]{2,})"/g)) names.add(m[1]!)
  }
  return names
})()

function expectKnownVariables(names: Iterable<string>): void {
  const unknown = [...names].filter((name) => !KNOWN_VARIABLES.has(name) && !NEW_VARIABLES.has(name))
  expect(unknown, "variables the gateway does not read").toEqual([])
}

/** Runs the gateway's own router: what status does `path` get on a healthy, ready process? */
function servedStatus(path: string): number {
  return route("GET", path, "/metrics", { metrics: () => "", shards: () => ({ allReady: true, ready: 1, total: 1 }), brokerConnected: () => true }).status
}

const k8s = (kind: string, name?: string): Obj => {
  const docs = [...parsed].filter(([file]) => file.startsWith("deploy/kubernetes/")).flatMap(([, d]) => d.map(obj))
  const found = docs.find((d) => d.kind === kind && (name === undefined || obj(d.metadata).name === name))
  if (found === undefined) throw new Error(`no ${kind} ${name ?? ""} under deploy/kubernetes`)
  return found
}

describe("deployment files", () => {
  it("every YAML file parses into mappings", () => {
    expect(FILES.map((f) => relative(ROOT, f))).toEqual(expect.arrayContaining([
      "deploy/compose/docker-compose.cluster.yml",
      "deploy/kubernetes/deployment.yaml",
      "docker-compose.yml"
    ]))
    for (const [file, docs] of parsed) {
      expect(docs.length, file).toBeGreaterThan(0)
      for (const doc of docs) obj(doc)
    }
  })

  // The subset reader against a real YAML implementation, where one is installed.
  const python = (() => {
    try {
      execFileSync("python3", ["-c", "import yaml"], { stdio: "ignore" })
      return true
    } catch {
      return false
    }
  })()
  it.skipIf(!python)("reads every file as PyYAML does", () => {
    for (const file of FILES) {
      const json = execFileSync("python3", ["-c", "import sys, json, yaml; print(json.dumps(list(yaml.safe_load_all(open(sys.argv[1])))))", file], { encoding: "utf8" })
      expect(parsed.get(relative(ROOT, file)), relative(ROOT, file)).toEqual(JSON.parse(json))
    }
  })

  it("kubernetes: probes hit /readyz and /healthz on the port PROMETHEUS_ADDRESS opens", () => {
    const config = obj(k8s("ConfigMap", "spectacles-gateway").data)
    const port = parseListenAddress(String(config.PROMETHEUS_ADDRESS)).port
    const spec = obj(obj(k8s("Deployment", "spectacles-gateway").spec))
    const pod = obj(obj(spec.template).spec)
    const [container] = list(pod.containers).map(obj)
    const ports = list(container!.ports).map(obj)
    const portNumber = (ref: YamlValue | undefined): number | undefined =>
      typeof ref === "number" ? ref : ports.find((p) => p.name === ref)?.containerPort as number | undefined
    const probe = (name: string): { path: string; port: number | undefined } => {
      const get = obj(obj(container![name]).httpGet)
      return { path: String(get.path), port: portNumber(get.port) }
    }
    expect(probe("readinessProbe")).toEqual({ path: "/readyz", port })
    expect(probe("livenessProbe")).toEqual({ path: "/healthz", port })
    for (const path of ["/readyz", "/healthz"]) expect(servedStatus(path), path).toBe(200)
    expect(servedStatus("/nope")).toBe(404)

    const service = obj(k8s("Service", "spectacles-gateway-metrics").spec)
    const [servicePort] = list(service.ports).map(obj)
    expect(portNumber(servicePort!.targetPort)).toBe(port)
    const labels = obj(obj(obj(spec.template).metadata).labels)
    expect(labels).toMatchObject(obj(service.selector))
    expect(labels).toMatchObject(obj(obj(spec.selector).matchLabels))
    expect(labels).toMatchObject(obj(obj(obj(k8s("PodDisruptionBudget").spec).selector).matchLabels))
  })

  it("kubernetes: three replicas sharing one Redis, token from a Secret, only variables the gateway reads", () => {
    const config = obj(k8s("ConfigMap", "spectacles-gateway").data)
    const spec = obj(k8s("Deployment", "spectacles-gateway").spec)
    expect(spec.replicas).toBe(3)
    const pod = obj(obj(spec.template).spec)
    const container = obj(list(pod.containers)[0])
    expect(list(container.envFrom).map((e) => obj(obj(e).configMapRef).name)).toEqual(["spectacles-gateway"])
    const env = list(container.env).map(obj)
    expect(env).toEqual([{ name: "DISCORD_TOKEN", valueFrom: { secretKeyRef: { name: "spectacles-gateway", key: "DISCORD_TOKEN" } } }])
    expect(config).toMatchObject({ BROKER_TYPE: "redis", SHARD_STORE_TYPE: "redis" })
    expect(String(config.REDIS_URL)).toMatch(/^redis:\/\/spectacles-redis:6379$/)
    // A static shard list would make every replica claim the same shards.
    expect(Object.keys(config)).not.toContain("DISCORD_SHARD_IDS")
    expect(Object.keys(config)).not.toContain("DISCORD_TOKEN")
    expectKnownVariables([...Object.keys(config), ...env.map((e) => String(e.name))])
    const secret = obj(parseYamlDocuments(readFileSync(join(ROOT, "deploy/kubernetes/secret.example.yaml"), "utf8"))[0])
    expect(Object.keys(obj(secret.stringData))).toEqual(["DISCORD_TOKEN"])
    const resources = list(obj(parseYamlDocuments(readFileSync(join(ROOT, "deploy/kubernetes/kustomization.yaml"), "utf8"))[0]).resources)
    for (const file of resources) expect(existsSync(join(ROOT, "deploy/kubernetes", String(file))), String(file)).toBe(true)
    expect(resources).not.toContain("secret.example.yaml")
  })

  it("kubernetes and compose: the grace period outlasts shutdown_timeout plus a lease handoff", () => {
    const config = obj(k8s("ConfigMap", "spectacles-gateway").data)
    const shutdownMs = Result.getOrThrow(parseDuration(String(config.SHUTDOWN_TIMEOUT)))
    const needed = shutdownMs + SHUTDOWN_OVERRUN_MS + LEASE_TTL_MS
    const pod = obj(obj(obj(k8s("Deployment", "spectacles-gateway").spec).template).spec)
    expect(Number(pod.terminationGracePeriodSeconds) * 1000).toBeGreaterThan(needed)
    const gateway = obj(obj(obj(docsOf("deploy/compose/docker-compose.cluster.yml")[0]).services).gateway)
    expect(Result.getOrThrow(parseDuration(String(gateway.stop_grace_period)))).toBeGreaterThan(needed)
  })

  it("compose cluster: three gateway replicas against one Redis, health checked on /healthz", () => {
    const compose = obj(docsOf("deploy/compose/docker-compose.cluster.yml")[0])
    const services = obj(compose.services)
    const gateway = obj(services.gateway)
    expect(obj(gateway.deploy).replicas).toBe(3)
    const env = obj(gateway.environment)
    expect(env).toMatchObject({ BROKER_TYPE: "redis", SHARD_STORE_TYPE: "redis", REDIS_URL: "redis://redis:6379" })
    expect(Object.keys(services).sort()).toEqual(["gateway", "redis"])
    expect(Object.keys(env)).not.toContain("DISCORD_SHARD_IDS")
    expectKnownVariables(Object.keys(env))
    const port = parseListenAddress(String(env.PROMETHEUS_ADDRESS)).port
    const check = list(obj(gateway.healthcheck).test).map(String).join(" ")
    expect(check).toContain(`http://127.0.0.1:${port}/healthz`)
    expect(servedStatus("/healthz")).toBe(200)
  })

  it("root compose: only variables the gateway reads", () => {
    const gateway = obj(obj(obj(docsOf("docker-compose.yml")[0]).services).gateway)
    expectKnownVariables(Object.keys(obj(gateway.environment)))
  })
})

describe("miniYaml", () => {
  it("reads the block subset", () => {
    const text = [
      "# comment",
      "a: 1",
      "b: \"x # not a comment\" # comment",
      "c:",
      "  - d: e",
      "    f: [1, 'g''h', \"i\"]",
      "  - plain text: with colon",
      "  -",
      "    nested: {}",
      "k:",
      "- same-indent item",
      "folded: >-",
      "  one",
      "  two",
      "",
      "  three",
      "literal: |",
      "  x",
      "    y",
      "url: redis://redis:6379",
      "---",
      "second: true"
    ].join("\n")
    expect(parseYamlDocuments(text)).toEqual([
      {
        a: 1,
        b: "x # not a comment",
        c: [{ d: "e", f: [1, "g'h", "i"] }, { "plain text": "with colon" }, { nested: {} }],
        k: ["same-indent item"],
        folded: "one two\nthree",
        literal: "x\n  y\n",
        url: "redis://redis:6379"
      },
      { second: true }
    ])
  })

  it("refuses what it does not read instead of guessing", () => {
    expect(() => parseYamlDocuments("a: &anchor 1")).toThrow(YamlSubsetError)
    expect(() => parseYamlDocuments("a: one\n  two")).toThrow(/multi-line plain/)
    expect(() => parseYamlDocuments("a: 1\na: 2")).toThrow(/duplicate key/)
    expect(() => parseYamlDocuments("a:\n  b: 1\n   c: 2")).toThrow(YamlSubsetError)
  })
})
