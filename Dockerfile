# Spectacles Gateway. Build: docker build -t spectacles-gateway .
# Run:   docker run --rm -e DISCORD_TOKEN=... -e DISCORD_EVENTS=MESSAGE_CREATE spectacles-gateway
# Settings come from environment variables, or from a file mounted at /app/gateway.toml
# (-v ./gateway.toml:/app/gateway.toml:ro); see README.md for the keys.

# ---- build: type-check and bundle with the dev dependencies ----
FROM node:24 AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json rolldown.config.ts ./
COPY src ./src
RUN npm run build

# ---- runtime: the bundle only ----
# dist/ holds the gateway with its dependencies bundled in (npm run build): no node_modules needed.
FROM node:24-slim
ENV NODE_ENV=production
# No V8 flags: the gateway keeps its young generation small itself (src/Process/youngGeneration.ts).
WORKDIR /app
COPY --from=build /app/dist ./dist
# The `file` shard store writes under the working directory; everything else is read-only.
RUN mkdir .gateway-state && chown node:node .gateway-state
# The node image's unprivileged user.
USER node
# The gateway handles SIGTERM itself: it delivers what it read, checkpoints, closes resumably.
CMD ["node", "dist/main.js"]
