// deploy/: the Grafana dashboard and the Prometheus alert rules read only metrics the gateway
// exposes (so a renamed metric breaks this test, not an operator's dashboard), every PromQL
// expression parses, and every alert fires and stays silent as its unit tests in alerts.test.yml
// say (`promtool test rules`). Without promtool these last checks skip loudly; under CI=true
// they fail.
import { spawnSync } from "node:child_process"
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { Context, Metric } from "effect"
import { describe, expect, it } from "vitest"
import { CommandCounters } from "../../src/Commands/CommandStats.ts"
import { observeGateway } from "../../src/Observability/GatewayMetrics.ts"
import { GatewayCounters } from "../../src/Metrics/GatewayStats.ts"
import { renderMetrics } from "../../src/Observability/MetricsText.ts"
import { observeRuntime } from "../../src/Observability/RuntimeMetrics.ts"
import type { ShardState } from "../../src/Shard/ShardStatus.ts"
import { parseExposition } from "./exposition.ts"

const DEPLOY = resolve(import.meta.dirname, "../../deploy")
const DASHBOARD = join(DEPLOY, "grafana/spectacles-gateway.json")
const ALERTS = join(DEPLOY, "prometheus/alerts.yml")
const ALERT_TESTS = join(DEPLOY, "prometheus/alerts.test.yml")

/** Every metric family the gateway can expose, from an in-process render with each one touched. */
const exposedFamilies = (): Map<string, string> => {
  const context = Context.make(Metric.MetricRegistry, new Map())
  const stats = new GatewayCounters(context)
  stats.eventsOf(0).add("MESSAGE_CREATE")
  stats.reconnected(0, "op7")
  const gateway = observeGateway({
    stats,
    shards: () => new Map<number, ShardState>([[0, "ready"]]),
    outbox: { size: () => 0, capacity: 1 },
    broker: { name: "redis", connected: () => true },
    commands: new CommandCounters(),
    sessionBudget: () => 1
  }, context)
  const runtime = observeRuntime(context)
  try {
    return parseExposition(renderMetrics(context, [gateway.collect, runtime.collect])).types
  } finally {
    runtime.remove()
  }
}

/** Metric names in a PromQL expression (our families' prefixes), with histogram suffixes folded. */
const metricNames = (expr: string): Array<string> =>
  [...expr.matchAll(/\b(?:gateway|process|nodejs)_[a-z0-9_]+/g)].map((m) => m[0])

const resolveName = (name: string, families: Map<string, string>): string | undefined => {
  if (families.has(name)) return name
  const base = name.replace(/_(bucket|sum|count)$/, "")
  return families.get(base) === "histogram" ? base : undefined
}

interface Panel {
  readonly id: number
  readonly type: string
  readonly title: string
  readonly datasource?: { readonly uid: string }
  readonly targets?: ReadonlyArray<{ readonly expr: string }>
}

const dashboard = JSON.parse(readFileSync(DASHBOARD, "utf8")) as { panels: ReadonlyArray<Panel>; uid: string }
const dashboardExprs = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr })))
const alertExprs = [...readFileSync(ALERTS, "utf8").matchAll(/expr: (?:>-\n((?:\s{10}.+\n)+)|(.+)\n)/g)].map((m) => (m[1] ?? m[2]!).replace(/\s+/g, " ").trim())

describe("deploy/grafana dashboard", () => {
  const families = exposedFamilies()

  it("is one dashboard of distinct panels, each on the datasource variable", () => {
    expect(dashboard.uid).toBe("spectacles-gateway")
    const ids = dashboard.panels.map((p) => p.id)
    expect(new Set(ids).size).toBe(ids.length)
    for (const panel of dashboard.panels.filter((p) => p.type !== "row")) {
      expect(panel.datasource?.uid, panel.title).toBe("${datasource}")
      expect(panel.targets?.length ?? 0, panel.title).toBeGreaterThan(0)
    }
  })

  it("reads only metrics the gateway exposes", () => {
    expect(dashboardExprs.length).toBeGreaterThan(20)
    for (const { panel, expr } of dashboardExprs) {
      const names = metricNames(expr)
      expect(names.length, `${panel}: ${expr}`).toBeGreaterThan(0)
      for (const name of names) expect(resolveName(name, families), `${panel}: ${name} in ${expr}`).toBeDefined()
    }
  })
})

describe("deploy/prometheus alert rules", () => {
  const families = exposedFamilies()

  it("cover shards not ready, reconnect storms, broker outage, outbox, session starts and event-loop lag", () => {
    const text = readFileSync(ALERTS, "utf8")
    const alerts = [...text.matchAll(/- alert: (\w+)/g)].map((m) => m[1])
    expect(alerts).toEqual([
      "GatewayShardNotReady",
      "GatewayReconnectStorm",
      "GatewayBrokerDisconnected",
      "GatewayPublishFailing",
      "GatewayOutboxNearlyFull",
      "GatewaySessionStartsLow",
      "GatewaySessionStartsExhausted",
      "GatewayEventLoopLag"
    ])
    // Each has a test in alerts.test.yml.
    const tested = new Set([...readFileSync(ALERT_TESTS, "utf8").matchAll(/alertname: (\w+)/g)].map((m) => m[1]))
    for (const alert of alerts) expect(tested.has(alert), alert).toBe(true)
  })

  it("read only metrics the gateway exposes", () => {
    expect(alertExprs).toHaveLength(8)
    for (const expr of alertExprs) {
      for (const name of metricNames(expr)) expect(resolveName(name, families), `${name} in ${expr}`).toBeDefined()
    }
  })
})

const CI = process.env.CI === "true"
const promtool = spawnSync("promtool", ["--version"], { encoding: "utf8" }).status === 0
if (!promtool) {
  const what = CI ? "CI=true, so these tests FAIL" : "SKIPPING them (apt-get install prometheus provides it)"
  console.warn(`\n!!! promtool is not installed: the alert rule tests and PromQL checks need it; ${what}.\n`)
}

const run = (args: ReadonlyArray<string>, cwd = DEPLOY) => {
  const result = spawnSync("promtool", args, { cwd, encoding: "utf8" })
  return { code: result.status, output: `${result.stdout}${result.stderr}` }
}

describe.skipIf(!promtool && !CI)("promtool", () => {
  it("checks the alert rules", () => {
    const { code, output } = run(["check", "rules", "prometheus/alerts.yml"])
    expect(code, output).toBe(0)
  })

  it("passes the alert rules' unit tests (each alert firing and silent)", () => {
    const { code, output } = run(["test", "rules", "prometheus/alerts.test.yml"])
    expect(code, output).toBe(0)
    expect(output).toContain("SUCCESS")
  })

  it("parses every dashboard expression as PromQL", () => {
    const dir = mkdtempSync(join(tmpdir(), "dashboard-promql-"))
    const rules = dashboardExprs.map(({ expr }, i) =>
      `      - record: dashboard:expr_${i}\n        expr: ${JSON.stringify(expr.replaceAll("$__rate_interval", "5m").replaceAll("$instance", ".*"))}`)
    writeFileSync(join(dir, "dashboard.rules.yml"), `groups:\n  - name: dashboard\n    rules:\n${rules.join("\n")}\n`)
    const { code, output } = run(["check", "rules", "dashboard.rules.yml"], dir)
    expect(code, output).toBe(0)
  })
})
