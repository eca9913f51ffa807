import { defineConfig } from "vitest/config"
import { SLOW_TESTS } from "./test/suites.ts"

// `npm run test:slow`: the slower end-to-end suites (see test/suites.ts). CI runs it after `npm test`.
export default defineConfig({
  test: {
    include: SLOW_TESTS,
    testTimeout: 180_000,
    hookTimeout: 60_000,
    maxWorkers: 2,
    reporters: ["default"]
  }
})
