import { configDefaults, defineConfig } from "vitest/config"
import { SLOW_TESTS } from "./test/suites.ts"

// The fast suite (`npm test`); the slow end-to-end suites are vitest.slow.config.ts.
export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    exclude: [...configDefaults.exclude, ...SLOW_TESTS],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // End-to-end tests spawn processes and bind ports; two workers suit this 2-core machine.
    maxWorkers: 2,
    reporters: ["default"]
  }
})
