import { describe, expect, it } from "vitest"
import { userSizedYoungGeneration } from "../../src/Process/youngGeneration.ts"

describe("the young generation's size", () => {
  it("is the gateway's choice unless the user passed a semi-space flag", () => {
    expect(userSizedYoungGeneration([], undefined)).toBe(false)
    expect(userSizedYoungGeneration(["--enable-source-maps"], "--max-old-space-size=512")).toBe(false)
    expect(userSizedYoungGeneration(["--max-semi-space-size=2"], undefined)).toBe(true)
    expect(userSizedYoungGeneration([], "--max-old-space-size=512 --max_semi_space_size=8")).toBe(true)
    expect(userSizedYoungGeneration([], "--semi-space-growth-factor=2")).toBe(true)
  })
})
