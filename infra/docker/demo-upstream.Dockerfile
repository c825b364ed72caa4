# @tollgate/demo-upstream: bundled by esbuild (workspace packages inlined), run on Node 24 LTS with
# production dependencies only. Build from the repository root:
#   docker build -f infra/docker/demo-upstream.Dockerfile -t tollgate/demo-upstream .
FROM node:24-bookworm-slim AS build
WORKDIR /repo
ENV CI=true NEXT_TELEMETRY_DISABLED=1 TURBO_TELEMETRY_DISABLED=1
COPY . .
RUN npm ci --no-audit --no-fund
RUN npm run build -w @tollgate/demo-upstream
# Dev tooling (vitest, prisma CLI, eslint…) stays behind in this stage.
RUN npm prune --omit=dev --no-audit --no-fund

FROM node:24-bookworm-slim AS runtime
ENV NODE_ENV=production
# Reachable from the gateway's container, not only from its own loopback.
ENV DEMO_UPSTREAM_HOST=0.0.0.0 DEMO_UPSTREAM_PORT=4000
WORKDIR /repo
COPY --from=build --chown=node:node /repo/package.json ./package.json
COPY --from=build --chown=node:node /repo/node_modules ./node_modules
COPY --from=build --chown=node:node /repo/packages ./packages
COPY --from=build --chown=node:node /repo/apps/demo-upstream ./apps/demo-upstream
WORKDIR /repo/apps/demo-upstream
USER node
EXPOSE 4000
STOPSIGNAL SIGTERM
CMD ["node", "dist/main.js"]
