// Discord asks every client to say who it is (DISCORD_GATEWAY.md: REST and the websocket upgrade);
// some Discord-compatible servers refuse an upgrade without it (close 4002).
export const USER_AGENT = "SpectaclesGateway (https://github.com/spec-tacles, 0.1)"
