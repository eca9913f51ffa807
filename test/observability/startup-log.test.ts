// The startup lines an operator reads first: where the settings came from, and the intents by name.
import { describe, expect, it } from "vitest"
import { INTENTS } from "../../src/Discord/Intents.ts"
import { configSourceLine, intentsLine } from "../../src/Observability/StartupLog.ts"

describe("startup log", () => {
  it("names the config file read, or says environment only", () => {
    expect(configSourceLine({ configFile: "/etc/gateway/gateway.toml" })).toBe("configuration: /etc/gateway/gateway.toml (environment variables override it)")
    expect(configSourceLine({ configFile: undefined })).toBe("configuration: environment only (no config file read)")
  })
  it("names the intents in bit order, with the bitfield, and any undocumented bits", () => {
    expect(intentsLine(INTENTS.GUILDS | INTENTS.GUILD_MESSAGES | INTENTS.MESSAGE_CONTENT)).toBe("intents: GUILDS, GUILD_MESSAGES, MESSAGE_CONTENT (33281)")
    expect(intentsLine(0)).toBe("intents: none (0)")
    expect(intentsLine(INTENTS.GUILDS | (1 << 30))).toBe(`intents: GUILDS, undocumented bits ${1 << 30} (${1 | (1 << 30)})`)
  })
})
