// Gateway opcodes (DISCORD_GATEWAY.md §3). Plain constants: erasable syntax, no enum.
export const Op = {
  Dispatch: 0,
  Heartbeat: 1,
  Identify: 2,
  PresenceUpdate: 3,
  VoiceStateUpdate: 4,
  Resume: 6,
  Reconnect: 7,
  RequestGuildMembers: 8,
  InvalidSession: 9,
  Hello: 10,
  HeartbeatAck: 11,
  RequestSoundboardSounds: 31,
  RequestChannelInfo: 43
} as const

/** Opcodes a bot may send through the gateway as commands (the rest are the gateway's own business). */
export const COMMAND_OPCODES: ReadonlySet<number> = new Set([
  Op.PresenceUpdate,
  Op.VoiceStateUpdate,
  Op.RequestGuildMembers,
  Op.RequestSoundboardSounds,
  Op.RequestChannelInfo
])

/** Largest payload Discord accepts from a client; bigger ones close the connection with 4002. */
export const MAX_SEND_BYTES = 4096
