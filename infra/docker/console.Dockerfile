# @tollgate/console (Next.js): `next build` plus the console's own server (src/main.ts, bundled to
# dist/main.js) in a full install, run on Node 24 LTS with production dependencies only.
# Build from the repository root:
#   docker build -f infra/docker/console.Dockerfile -t tollgate/console .
FROM node:24-bookworm-slim AS build
WORKDIR /repo
ENV CI=true NEXT_TELEMETRY_DISABLED=1 TURBO_TELEMETRY_DISABLED=1
COPY . .
RUN npm ci --no-audit --no-fund
RUN npm run build -w @tollgate/console
RUN npm prune --omit=dev --no-audit --no-fund

FROM node:24-bookworm-slim AS runtime
ENV NODE_ENV=production NEXT_TELEMETRY_DISABLED=1
WORKDIR /repo
COPY --from=build --chown=node:node /repo/package.json ./package.json
COPY --from=build --chown=node:node /repo/node_modules ./node_modules
COPY --from=build --chown=node:node /repo/packages ./packages
COPY --from=build --chown=node:node /repo/apps/console ./apps/console
WORKDIR /repo/apps/console
USER node
EXPOSE 3000
STOPSIGNAL SIGTERM
# Listens on CONSOLE_PORT (3000); the server resolves client addresses itself (ADR 0023).
CMD ["node", "dist/main.js"]
