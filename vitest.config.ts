import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // End-to-end tests spawn processes and bind ports; two workers suit this 2-core machine.
    maxWorkers: 2,
    reporters: ["default"]
  }
})
