# @tollgate/worker: bundled by esbuild (workspace packages inlined), run on Node 24 LTS with
# production dependencies only. Build from the repository root:
#   docker build -f infra/docker/worker.Dockerfile -t tollgate/worker .
FROM node:24-bookworm-slim AS build
WORKDIR /repo
ENV CI=true NEXT_TELEMETRY_DISABLED=1 TURBO_TELEMETRY_DISABLED=1
COPY . .
RUN npm ci --no-audit --no-fund
RUN npm run build -w @tollgate/worker
# Dev tooling (vitest, prisma CLI, eslint…) stays behind in this stage.
RUN npm prune --omit=dev --no-audit --no-fund

FROM node:24-bookworm-slim AS runtime
ENV NODE_ENV=production
WORKDIR /repo
COPY --from=build --chown=node:node /repo/package.json ./package.json
COPY --from=build --chown=node:node /repo/node_modules ./node_modules
COPY --from=build --chown=node:node /repo/packages ./packages
COPY --from=build --chown=node:node /repo/apps/worker ./apps/worker
WORKDIR /repo/apps/worker
USER node
EXPOSE 9090
STOPSIGNAL SIGTERM
CMD ["node", "dist/main.js"]
