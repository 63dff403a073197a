# syntax=docker/dockerfile:1
# Subsecond gateway image: a build stage compiles TypeScript, the final stage holds production dependencies,
# dist/ and config/, and runs as the unprivileged `node` user.
#
#   docker build -t subsecond .
#   docker run --rm -p 8080:8080 \
#     -e OPENROUTER_API_KEY -e SUBSECOND_API_KEYS=key-1,key-2 \
#     -v "$PWD/config:/app/config:ro" subsecond
#
# The config is read from /app/config/gateway.yaml: the image ships the repository's config/ there, and
# mounting -v "$PWD/config:/app/config" replaces it (edits are hot-reloaded). HOST=0.0.0.0 makes the gateway
# reachable from outside the container, so it refuses to start without client keys (SUBSECOND_API_KEYS,
# comma-separated) unless the config sets auth.allowOpen: true. docker-compose.yml adds Prometheus and Grafana.
ARG NODE_VERSION=22

FROM node:${NODE_VERSION}-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

FROM node:${NODE_VERSION}-slim
ENV NODE_ENV=production PORT=8080 HOST=0.0.0.0
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY config ./config
USER node
EXPOSE 8080
# No curl in slim images: Node's own fetch checks liveness (GET /healthz needs no key).
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
CMD ["node", "dist/main.js", "serve", "--config", "/app/config/gateway.yaml"]
