import { describe, expect, it } from "vitest"
import { inboxKey, inboxQueue } from "../../src/Commands/AmqpCommandLink.ts"
import { inboxNamespace, inboxStream } from "../../src/Commands/RedisNames.ts"

describe("command inbox names per shard generation (resharding)", () => {
  it("keeps generation 0's names as they always were, and names a later generation's inboxes apart", () => {
    expect(inboxStream(inboxNamespace("gateway", 0), 1)).toBe("{SEND}:gateway:1")
    expect(inboxStream(inboxNamespace("gateway", 1), 1)).toBe("{SEND}:gateway:g1:1")
    expect(inboxQueue("gateway", 1)).toBe("gateway:SEND:1")
    expect(inboxQueue("gateway", 1, 2)).toBe("gateway:SEND:g2:1")
    expect(inboxKey(1, 2)).not.toBe(inboxKey(1, 0))
  })
})
