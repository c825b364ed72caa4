# One-shot schema migration (and, on request, the demo seed). Keeps the full install: the
# migration tooling (scripts/db.mjs → Prisma's WASM schema engine) lives in devDependencies.
#   docker build -f infra/docker/migrate.Dockerfile -t tollgate/migrate .
#   docker run --rm -e DATABASE_URL=… tollgate/migrate                  # migrate
#   docker run --rm -e DATABASE_URL=… -e REDIS_URL=… tollgate/migrate npm run db:seed
FROM node:24-bookworm-slim
WORKDIR /repo
ENV CI=true
COPY . .
RUN npm ci --no-audit --no-fund
# The seed keeps the demo key it creates under .data/.
RUN mkdir -p /repo/.data && chown node:node /repo/.data
USER node
CMD ["node", "scripts/db.mjs", "migrate"]
