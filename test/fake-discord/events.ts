// Realistic dispatch payload generators, shaped after real Discord v10 payloads (including
// fields clients are expected to ignore). Everything is derived from the guild id and a number
// `n`, so the same inputs always give the same payload (except timestamps and message ids).
import { createIdFactory, guildChild, userId } from "./snowflake.ts"

export type Json = null | boolean | number | string | Array<Json> | { [key: string]: Json }
export type JsonObject = { [key: string]: Json }
export interface DispatchPayload {
  readonly t: string
  readonly d: JsonObject
}

/** Small seeded PRNG (mulberry32): reproducible event streams for a given seed. */
export function createRng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const nextId = createIdFactory()

const WORDS = (
  "the gateway shard session resume heartbeat guild channel message event stream broker redis " +
  "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut " +
  "labore et dolore magna aliqua enim ad minim veniam quis nostrud exercitation ullamco laboris " +
  "anyone up for a raid tonight? lol that was wild gg wp see you tomorrow :) ok brb coffee"
).split(" ")
const NAMES = ["ava", "noah", "mia", "liam", "zoe", "kai", "ivy", "leo", "ella", "max", "ruby", "finn"]
const STATUSES = ["online", "idle", "dnd", "online", "online"] as const
const EMOJIS = ["👍", "😂", "🔥", "❤️", "🎉", "👀", "✅", "😭"]

/** Offsets of guild-relative ids (see snowflake.ts guildChild). */
const ROLE_OFFSET = 1
const CHANNEL_OFFSET = 100
const MAX_CHANNELS = 400

function hex32(n: number): string {
  let out = ""
  let x = (n * 2654435761) >>> 0
  for (let i = 0; i < 4; i++) {
    x = Math.imul(x ^ (x >>> 13), 0x5bd1e995) >>> 0
    out += x.toString(16).padStart(8, "0")
  }
  return out
}

function words(n: number, count: number): string {
  const out: Array<string> = []
  for (let i = 0; i < count; i++) out.push(WORDS[(n * 31 + i * 17 + ((i * i) >> 1)) % WORDS.length]!)
  return out.join(" ")
}

function isoTime(ms: number): string {
  return new Date(ms).toISOString().replace("Z", "+00:00")
}

export function makeUser(n: number): JsonObject {
  const name = `${NAMES[n % NAMES.length]}${n}`
  return {
    id: userId(n),
    username: name,
    global_name: n % 3 === 0 ? null : `${name[0]!.toUpperCase()}${name.slice(1)}`,
    avatar: n % 5 === 0 ? null : hex32(n),
    discriminator: "0",
    public_flags: n % 7 === 0 ? 64 : 0,
    flags: n % 7 === 0 ? 64 : 0,
    banner: null,
    accent_color: null,
    avatar_decoration_data: null,
    collectibles: null,
    display_name_styles: null,
    clan: null,
    primary_guild: null
  }
}

/** Channel `k` of a guild; one in eight is a voice channel, one in twenty a category. */
export function channelId(guildId: string, k: number): string {
  return guildChild(guildId, CHANNEL_OFFSET + (k % MAX_CHANNELS))
}

export function roleId(guildId: string, k: number): string {
  return k === 0 ? guildId : guildChild(guildId, ROLE_OFFSET + k)
}

function memberRoles(guildId: string, n: number, roles: number): Array<Json> {
  const out: Array<Json> = []
  for (let k = 1; k < roles; k++) if ((n + k) % 3 === 0) out.push(roleId(guildId, k))
  return out
}

/** A guild member without `user` (as embedded in messages), or with it. */
export function makeMember(guildId: string, n: number, withUser = true, roles = 6): JsonObject {
  const member: JsonObject = {
    avatar: null,
    banner: null,
    communication_disabled_until: null,
    deaf: false,
    flags: 0,
    joined_at: isoTime(1609459200000 + n * 3_600_000),
    mute: false,
    nick: n % 4 === 0 ? `nick ${n}` : null,
    pending: false,
    premium_since: null,
    roles: memberRoles(guildId, n, roles)
  }
  if (withUser) member.user = makeUser(n)
  return member
}

export function makeRole(guildId: string, k: number, total: number): JsonObject {
  const color = k === 0 ? 0 : (k * 0x3a5f9d) & 0xffffff
  return {
    id: roleId(guildId, k),
    name: k === 0 ? "@everyone" : `role-${k}`,
    description: null,
    color,
    colors: { primary_color: color, secondary_color: null, tertiary_color: null },
    hoist: k % 4 === 1,
    icon: null,
    unicode_emoji: null,
    position: k === 0 ? 0 : total - k,
    permissions: k === 0 ? "2222085186637376" : "2248473465835073",
    managed: false,
    mentionable: k % 2 === 0,
    flags: 0,
    tags: k === total - 1 ? { bot_id: userId(0) } : {}
  }
}

export function makeChannel(guildId: string, k: number): JsonObject {
  const id = channelId(guildId, k)
  const overwrites = [{ id: guildId, type: 0, allow: "0", deny: k % 5 === 4 ? "1024" : "0" }]
  if (k % 20 === 0) {
    return { version: 0, type: 4, position: k / 20, permission_overwrites: overwrites, name: `category ${k / 20}`, id, flags: 0 }
  }
  const parent_id = channelId(guildId, k - (k % 20))
  if (k % 8 === 7) {
    return {
      version: 0, user_limit: 0, type: 2, rtc_region: null, rate_limit_per_user: 0, position: k,
      permission_overwrites: overwrites, parent_id, nsfw: false, name: `voice-${k}`, last_message_id: null,
      id, flags: 0, bitrate: 64000
    }
  }
  return {
    version: 0, type: 0, topic: k % 3 === 0 ? words(k, 8) : null, rate_limit_per_user: 0, position: k,
    permission_overwrites: overwrites, parent_id, nsfw: false, name: `channel-${k}`,
    last_message_id: guildChild(guildId, 3000 + k), id, icon_emoji: null, flags: 0, theme_color: null
  }
}

export function makePresence(guildId: string, n: number): JsonObject {
  const status = STATUSES[n % STATUSES.length]!
  const activities: Array<Json> = []
  if (n % 3 === 0) {
    activities.push({ type: 0, name: ["Minecraft", "Factorio", "Celeste", "Hades"][n % 4]!, id: hex32(n).slice(0, 16), created_at: 1700000000000 + n, timestamps: { start: 1700000000000 } })
  } else if (n % 3 === 1) {
    activities.push({ type: 4, state: words(n, 4), name: "Custom Status", id: "custom", created_at: 1700000000000 + n })
  }
  return {
    user: { id: userId(n) },
    status,
    guild_id: guildId,
    client_status: n % 2 === 0 ? { desktop: status } : { mobile: status, web: status },
    activities,
    broadcast: null
  }
}

export interface GuildCreateOptions {
  /** Members (and presences for online ones). Default 25. Each member adds roughly 600 bytes. */
  readonly members?: number
  /** Alternative to `members`: aim for roughly this many bytes of JSON (e.g. 5_000_000). */
  readonly targetBytes?: number
  readonly channels?: number
  readonly roles?: number
  readonly presences?: boolean
  readonly name?: string
}

/** Average JSON bytes one member adds to GUILD_CREATE (member + presence for 3 in 4), measured once. */
const bytesPerMember = (() => {
  let total = 0
  for (let n = 1000; n < 1040; n++) {
    total += JSON.stringify(makeMember("81344012929875968", n)).length + 1
    if (n % 4 !== 3) total += JSON.stringify(makePresence("81344012929875968", n)).length + 1
  }
  return total / 40
})()

/** A full GUILD_CREATE `d` (the bot's own member is always user 0). */
export function makeGuildCreate(guildId: string, options: GuildCreateOptions = {}): JsonObject {
  const channels = Math.min(options.channels ?? 12, MAX_CHANNELS)
  const roles = Math.min(options.roles ?? 6, 90)
  const memberCount = options.targetBytes !== undefined
    ? Math.max(1, Math.ceil((options.targetBytes - 6000 - channels * 350) / bytesPerMember))
    : (options.members ?? 25)
  const withPresences = options.presences ?? true
  const seed = Number(BigInt(guildId) % 100000n)
  const members: Array<Json> = []
  const presences: Array<Json> = []
  for (let i = 0; i < memberCount; i++) {
    const n = i === 0 ? 0 : seed + i
    members.push(makeMember(guildId, n, true, roles))
    if (withPresences && i > 0 && n % 4 !== 3) presences.push(makePresence(guildId, n))
  }
  return {
    id: guildId,
    name: options.name ?? `Fake Guild ${seed}`,
    icon: hex32(seed),
    description: seed % 2 === 0 ? words(seed, 12) : null,
    home_header: null,
    splash: null,
    discovery_splash: null,
    banner: null,
    owner_id: userId(seed + 1),
    application_id: null,
    region: "deprecated",
    afk_channel_id: null,
    afk_timeout: 300,
    system_channel_id: channelId(guildId, 1),
    system_channel_flags: 0,
    widget_enabled: false,
    widget_channel_id: null,
    verification_level: 1,
    default_message_notifications: 1,
    mfa_level: 0,
    explicit_content_filter: 2,
    max_presences: null,
    max_members: 500000,
    max_stage_video_channel_users: 50,
    max_video_channel_users: 25,
    vanity_url_code: null,
    premium_tier: seed % 4,
    premium_subscription_count: seed % 17,
    premium_progress_bar_enabled: false,
    preferred_locale: "en-US",
    rules_channel_id: null,
    public_updates_channel_id: null,
    safety_alerts_channel_id: null,
    features: ["COMMUNITY", "NEWS", "THREADS_ENABLED"].slice(0, 1 + (seed % 3)),
    nsfw: false,
    nsfw_level: 0,
    hub_type: null,
    incidents_data: null,
    inventory_settings: null,
    latest_onboarding_question_id: null,
    profile: null,
    roles: Array.from({ length: roles }, (_, k) => makeRole(guildId, k, roles)),
    emojis: [{ id: guildChild(guildId, 900), name: "pepega", roles: [], require_colons: true, managed: false, animated: false, available: true }],
    stickers: [],
    lazy: true,
    large: memberCount > 250,
    unavailable: false,
    member_count: Math.max(memberCount, memberCount * 3),
    joined_at: isoTime(1650000000000 + seed),
    version: 1700000000000 + seed,
    channels: Array.from({ length: channels }, (_, k) => makeChannel(guildId, k)),
    threads: [],
    members,
    presences,
    voice_states: [],
    stage_instances: [],
    guild_scheduled_events: [],
    soundboard_sounds: [],
    embedded_activities: [],
    activity_instances: [],
    application_command_counts: {}
  }
}

/** A text channel of the guild (never a category or voice channel). */
function textChannel(guildId: string, n: number): string {
  let k = 1 + (n % 11)
  if (k % 8 === 7) k += 1
  return channelId(guildId, k)
}

/** MESSAGE_CREATE `d`, 1-2 KB of JSON depending on `n`. */
export function makeMessageCreate(guildId: string, n: number): JsonObject {
  const author = 1 + (n % 500)
  const now = Date.now()
  const mentions: Array<Json> = n % 5 === 0 ? [makeUser(author + 1)] : []
  const content = words(n, 20 + (n % 90))
  return {
    type: n % 9 === 0 ? 19 : 0,
    tts: false,
    timestamp: isoTime(now),
    pinned: false,
    nonce: String(now * 1000 + (n % 1000)),
    mentions,
    mention_roles: [],
    mention_everyone: false,
    member: makeMember(guildId, author, false),
    id: nextId(),
    flags: 0,
    embeds: n % 6 === 0 ? [{ type: "rich", title: words(n + 1, 4), description: words(n + 2, 20), color: 5814783, fields: [] }] : [],
    edited_timestamp: null,
    content,
    components: [],
    channel_type: 0,
    channel_id: textChannel(guildId, n),
    author: makeUser(author),
    attachments: [],
    guild_id: guildId
  }
}

export function makePresenceUpdate(guildId: string, n: number): JsonObject {
  return makePresence(guildId, 1 + (n % 500))
}

export function makeTypingStart(guildId: string, n: number): JsonObject {
  const user = 1 + (n % 500)
  return {
    user_id: userId(user),
    timestamp: Math.floor(Date.now() / 1000),
    member: makeMember(guildId, user, true),
    channel_id: textChannel(guildId, n),
    guild_id: guildId
  }
}

export function makeGuildMemberUpdate(guildId: string, n: number): JsonObject {
  return { ...makeMember(guildId, 1 + (n % 500), true), guild_id: guildId, unusual_dm_activity_until: null }
}

export function makeMessageReactionAdd(guildId: string, n: number): JsonObject {
  const user = 1 + (n % 500)
  return {
    user_id: userId(user),
    type: 0,
    message_id: guildChild(guildId, 3000 + (n % 11)),
    message_author_id: userId(1 + ((n * 7) % 500)),
    member: makeMember(guildId, user, true),
    emoji: { name: EMOJIS[n % EMOJIS.length]!, id: null },
    channel_id: textChannel(guildId, n),
    burst: false,
    burst_colors: [],
    guild_id: guildId
  }
}

export interface MembersChunkOptions {
  readonly userIds?: ReadonlyArray<string>
  readonly count?: number
  readonly nonce?: string
  readonly presences?: boolean
  readonly chunkIndex?: number
  readonly chunkCount?: number
}

/** GUILD_MEMBERS_CHUNK `d`: the requested user ids (as users 1..k) or `count` members. */
export function makeGuildMembersChunk(guildId: string, options: MembersChunkOptions = {}): JsonObject {
  const members: Array<JsonObject> = []
  if (options.userIds !== undefined) {
    options.userIds.forEach((id, i) => members.push({ ...makeMember(guildId, i + 1, true), user: { ...makeUser(i + 1), id } }))
  } else {
    for (let i = 0; i < (options.count ?? 5); i++) members.push(makeMember(guildId, i + 1, true))
  }
  const d: JsonObject = {
    guild_id: guildId,
    members,
    chunk_index: options.chunkIndex ?? 0,
    chunk_count: options.chunkCount ?? 1,
    not_found: []
  }
  if (options.presences === true) d.presences = members.map((_, i) => makePresence(guildId, i + 1))
  if (options.nonce !== undefined) d.nonce = options.nonce
  return d
}

export function makeVoiceStateUpdate(guildId: string, user: string, channel: string | null, sessionId: string, selfMute = false, selfDeaf = false): JsonObject {
  return {
    member: makeMember(guildId, 0, true),
    user_id: user,
    suppress: false,
    session_id: sessionId,
    self_video: false,
    self_mute: selfMute,
    self_deaf: selfDeaf,
    request_to_speak_timestamp: null,
    mute: false,
    guild_id: guildId,
    deaf: false,
    channel_id: channel
  }
}

/** Weighted mix used by the trickle; `rng` picks the type, `n` the content. */
export function makeRandomEvent(guildId: string, n: number, rng: () => number): DispatchPayload {
  const r = rng()
  if (r < 0.35) return { t: "MESSAGE_CREATE", d: makeMessageCreate(guildId, n) }
  if (r < 0.6) return { t: "PRESENCE_UPDATE", d: makePresenceUpdate(guildId, n) }
  if (r < 0.75) return { t: "TYPING_START", d: makeTypingStart(guildId, n) }
  if (r < 0.87) return { t: "MESSAGE_REACTION_ADD", d: makeMessageReactionAdd(guildId, n) }
  return { t: "GUILD_MEMBER_UPDATE", d: makeGuildMemberUpdate(guildId, n) }
}
