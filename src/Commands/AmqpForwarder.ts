// Forwarding over AMQP: publish each payload to the group exchange with key SEND:<shard>
// (persistent, mandatory) on the command connection's confirm channel. The inbox queue is declared
// first, so a payload for a shard whose gateway never started yet waits for it. A batch succeeds
// once RabbitMQ confirmed every message and returned none as unroutable.
import { Effect, Layer } from "effect"
import type { ConfirmChannel, Message } from "amqplib"
import { AmqpCommandLink, declareInbox, inboxKey } from "./AmqpCommandLink.ts"
import { CommandForwarder, ForwardError } from "./Forwarder.ts"
import { errorText } from "../Resilience/OutageLog.ts"
import type { Part } from "./Targets.ts"

const FORWARD_TIMEOUT_MS = 10_000

const fail = (reason: string, cause?: unknown) => new ForwardError({ broker: "amqp", reason, cause })

export const AmqpForwarderLive: Layer.Layer<CommandForwarder, never, AmqpCommandLink> = Layer.effect(
  CommandForwarder,
  Effect.gen(function*() {
    const shared = yield* AmqpCommandLink
    const { link, group, generation } = shared
    let sequence = 0

    const send = async (channel: ConfirmChannel, parts: ReadonlyArray<Part>) => {
      let known = shared.declared.get(channel)
      if (known === undefined) shared.declared.set(channel, known = new Set())
      for (const part of parts) {
        if (known.has(part.shard)) continue
        await declareInbox(channel, group, part.shard, generation)
        known.add(part.shard)
      }
      const returned = new Set<string>()
      const onReturn = (message: Message) => void returned.add(String(message.properties.messageId))
      channel.on("return", onReturn)
      try {
        const ids = parts.map(() => `command-${process.pid}-${++sequence}`)
        await Promise.all(parts.map((part, i) =>
          new Promise<void>((resolve, reject) => {
            channel.publish(group, inboxKey(part.shard, generation), Buffer.from(part.payload), {
              persistent: true,
              mandatory: true,
              contentType: "application/json",
              messageId: ids[i]!
            }, (error: unknown) => (error ? reject(new Error("RabbitMQ refused (nacked) the message")) : resolve()))
          })
        ))
        // A return precedes its confirm, so by now every unroutable message is known.
        const lost = parts.filter((_, i) => returned.has(ids[i]!))
        if (lost.length > 0) {
          for (const part of lost) known.delete(part.shard)
          throw new Error(`RabbitMQ returned commands for shard(s) ${lost.map((p) => p.shard).join(", ")} as unroutable; declaring their queues again`)
        }
      } finally {
        channel.removeListener("return", onReturn)
      }
    }

    return CommandForwarder.of({
      broker: "amqp",
      forward: (parts) =>
        Effect.suspend(() => {
          const channel = link.channel()
          if (channel === undefined) {
            const why = link.lastError()
            return Effect.fail(fail(`not connected to ${link.endpoint}${why ? ` (${why})` : ""}; reconnecting`))
          }
          return Effect.tryPromise({ try: () => send(channel, parts), catch: (cause) => fail(`${link.endpoint}: ${errorText(cause)}`, cause) }).pipe(
            Effect.timeoutOrElse({
              duration: FORWARD_TIMEOUT_MS,
              orElse: () =>
                Effect.andThen(
                  Effect.sync(() => link.reset("command forward timed out")),
                  Effect.fail(fail(`no confirmation from ${link.endpoint} within ${FORWARD_TIMEOUT_MS / 1000}s`))
                )
            })
          )
        })
    })
  })
)
