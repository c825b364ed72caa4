# @tollgate/gateway: bundled by esbuild (workspace packages inlined), run on Node 24 LTS with
# production dependencies only. Build from the repository root:
#   docker build -f infra/docker/gateway.Dockerfile -t tollgate/gateway .
FROM node:24-bookworm-slim AS build
WORKDIR /repo
ENV CI=true NEXT_TELEMETRY_DISABLED=1 TURBO_TELEMETRY_DISABLED=1
COPY . .
RUN npm ci --no-audit --no-fund
RUN npm run build -w @tollgate/gateway
# Dev tooling (vitest, prisma CLI, eslint…) stays behind in this stage.
RUN npm prune --omit=dev --no-audit --no-fund

FROM node:24-bookworm-slim AS runtime
ENV NODE_ENV=production
WORKDIR /repo
COPY --from=build --chown=node:node /repo/package.json ./package.json
COPY --from=build --chown=node:node /repo/node_modules ./node_modules
COPY --from=build --chown=node:node /repo/packages ./packages
COPY --from=build --chown=node:node /repo/apps/gateway ./apps/gateway
WORKDIR /repo/apps/gateway
# Usage batches wait here while Redis is unreachable; mount a volume so a restart keeps them.
RUN mkdir -p /var/lib/tollgate/spool && chown node:node /var/lib/tollgate/spool
ENV GATEWAY_SPOOL_DIR=/var/lib/tollgate/spool
USER node
EXPOSE 8080 8443 9091
STOPSIGNAL SIGTERM
# Garbage collection on the JavaScript thread only (docs/adr/0014); cluster workers inherit it.
CMD ["node", "--single-threaded-gc", "dist/main.js"]
