// Gateway intents (DISCORD_GATEWAY.md §11): the names users write in config, their bits, and
// which of them Discord treats as privileged (close 4014 when not enabled in the portal).

/** Current names, in bit order. */
export const INTENTS = {
  GUILDS: 1 << 0,
  GUILD_MEMBERS: 1 << 1,
  GUILD_MODERATION: 1 << 2,
  GUILD_EXPRESSIONS: 1 << 3,
  GUILD_INTEGRATIONS: 1 << 4,
  GUILD_WEBHOOKS: 1 << 5,
  GUILD_INVITES: 1 << 6,
  GUILD_VOICE_STATES: 1 << 7,
  GUILD_PRESENCES: 1 << 8,
  GUILD_MESSAGES: 1 << 9,
  GUILD_MESSAGE_REACTIONS: 1 << 10,
  GUILD_MESSAGE_TYPING: 1 << 11,
  DIRECT_MESSAGES: 1 << 12,
  DIRECT_MESSAGE_REACTIONS: 1 << 13,
  DIRECT_MESSAGE_TYPING: 1 << 14,
  MESSAGE_CONTENT: 1 << 15,
  GUILD_SCHEDULED_EVENTS: 1 << 16,
  AUTO_MODERATION_CONFIGURATION: 1 << 20,
  AUTO_MODERATION_EXECUTION: 1 << 21,
  GUILD_MESSAGE_POLLS: 1 << 24,
  DIRECT_MESSAGE_POLLS: 1 << 25
} as const

export type IntentName = keyof typeof INTENTS

/**
 * Old names still found in configs: Discord's names before renaming, and `GUILD`, which the
 * original Go gateway's README example writes for GUILDS.
 */
export const INTENT_ALIASES: Readonly<Record<string, IntentName>> = {
  GUILD: "GUILDS",
  GUILD_BANS: "GUILD_MODERATION",
  GUILD_EMOJIS: "GUILD_EXPRESSIONS",
  GUILD_EMOJIS_AND_STICKERS: "GUILD_EXPRESSIONS"
}

const intentNames = Object.keys(INTENTS) as ReadonlyArray<IntentName>

/** Every bit Discord documents (53608447); other bits are rejected with close 4013. */
export const ALL_DOCUMENTED_INTENTS: number = intentNames.reduce((bits, name) => bits | INTENTS[name], 0)

/** Intents that must be switched on in the Developer Portal (33026). */
export const PRIVILEGED_INTENTS: number = INTENTS.GUILD_MEMBERS | INTENTS.GUILD_PRESENCES | INTENTS.MESSAGE_CONTENT

/** Every documented intent that needs no approval (53575421): the default when none are configured. */
export const NON_PRIVILEGED_INTENTS: number = ALL_DOCUMENTED_INTENTS & ~PRIVILEGED_INTENTS

/** Bits to current names, in bit order; undocumented bits are skipped. */
export const intentNamesOf = (bits: number): Array<IntentName> =>
  intentNames.filter((name) => (bits & INTENTS[name]) !== 0)

/** The privileged intents set in `bits`, by name: what to enable in the portal after a 4014 close. */
export const privilegedIntentNames = (bits: number): Array<string> => intentNamesOf(bits & PRIVILEGED_INTENTS)

/** The bit for a name or old alias, case-insensitive; undefined when unknown. */
export const intentBit = (name: string): number | undefined => {
  const upper = name.trim().toUpperCase()
  if (Object.hasOwn(INTENTS, upper)) return INTENTS[upper as IntentName]
  const alias = currentIntentName(upper)
  return alias === undefined ? undefined : INTENTS[alias]
}

/** The current name an old alias stands for (case-insensitive); undefined for current or unknown names. */
export const currentIntentName = (alias: string): IntentName | undefined => {
  const upper = alias.trim().toUpperCase()
  return Object.hasOwn(INTENT_ALIASES, upper) ? INTENT_ALIASES[upper] : undefined
}

