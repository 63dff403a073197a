// The gateway under test: a config derived from config/demo.yaml, and the built gateway (dist/main.js
// serve) started on it as a child process, configured through that file only.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { Pool } from "undici";
import { parse as parseYaml, stringify as stringifyYaml } from "yaml";
import { spawnBounded } from "./processes.mjs";

/** The route every bench request names. */
export const ROUTE = "realtime-chat";
/** The route's objective, as the issue states it: p95 time to first token ≤ 800 ms. */
export const TARGET = Object.freeze({ metric: "ttft", percentile: 95, ms: 800 });

/**
 * The gateway config of one run: config/demo.yaml (its catalog, priors, deadlines, stats and
 * exploration settings) with the simulator provider pointed at `simulatorUrl`, the listener on
 * 127.0.0.1:`port`, warnings-only logs, a short drain, and the route `realtime-chat` pinned to
 * `cheapest-within-target` for TARGET (so an edit of the demo's defaults cannot change what is measured),
 * and the default hedge budget.
 * @param {string} demoConfigPath
 * @param {{ simulatorUrl: string, port: number }} where
 * @returns {{ yaml: string, models: { id: string, pricePerMTok: { input: number, output: number } }[] }}
 */
export function deriveGatewayConfig(demoConfigPath, { simulatorUrl, port }) {
  const config = parseYaml(readFileSync(demoConfigPath, "utf8"));
  const provider = config.providers?.simulator;
  if (provider === undefined) throw new Error(`${demoConfigPath}: no provider "simulator" to point at the simulator`);
  provider.baseUrl = simulatorUrl;
  config.server = { ...config.server, host: "127.0.0.1", port, logLevel: "warn", drainTimeoutMs: 2000 };
  const route = config.routes?.[ROUTE];
  if (route === undefined) throw new Error(`${demoConfigPath}: no route "${ROUTE}"`);
  config.routes[ROUTE] = { ...route, strategy: "cheapest-within-target", target: { ...TARGET } };
  // The hedge budget is the product's default (the promise of at most 5 extra attempts per 100 requests),
  // whatever an edit of the demo's config sets.
  if (config.defaults !== undefined) delete config.defaults.hedging;
  const models = config.models.map((model) => ({ id: model.id, pricePerMTok: model.pricePerMTok }));
  return { yaml: stringifyYaml(config), models };
}

/** A port that was free on 127.0.0.1 a moment ago. */
export async function freePort() {
  const server = createServer();
  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/**
 * @typedef {object} RunningGateway
 * @property {string} url                  e.g. http://127.0.0.1:41234 (no /v1)
 * @property {Pool} dispatcher             an undici pool on that origin, for the traffic and /metrics; destroyed by stop()
 * @property {{ id: string, pricePerMTok: { input: number, output: number } }[]} candidates  the route's candidates, as /admin/routes lists them, with catalog prices
 * @property {(graceMs?: number) => Promise<void>} stop
 */

/**
 * Writes the derived config into `dir` and starts `node dist/main.js serve --config <it>` with an
 * environment holding no keys (the gateway is open, on loopback). Resolves once /readyz answers 200.
 * The process is bounded by `maxSeconds` (timeout(1)) and stopped with `stop()`.
 * @param {{ root: string, dir: string, simulatorUrl: string, maxSeconds: number }} options
 * @returns {Promise<RunningGateway>}
 */
export async function startGatewayProcess({ root, dir, simulatorUrl, maxSeconds }) {
  const main = join(root, "dist/main.js");
  if (!existsSync(main)) throw new Error(`${main} is missing: run \`npm run build\` first`);
  let lastError;
  for (let tries = 0; tries < 3; tries++) {
    const port = await freePort();
    const { yaml, models } = deriveGatewayConfig(join(root, "config/demo.yaml"), { simulatorUrl, port });
    const configPath = join(dir, "gateway.yaml");
    writeFileSync(configPath, yaml);
    const env = { PATH: process.env.PATH ?? "/usr/bin:/bin", LANG: "C.UTF-8" };
    const child = spawnBounded(process.execPath, [main, "serve", "--config", configPath], { cwd: root, env, maxSeconds });
    const url = `http://127.0.0.1:${port}`;
    const dispatcher = new Pool(url, { connections: 512 });
    const stop = async (graceMs) => {
      await dispatcher.destroy();
      await child.stop(graceMs);
    };
    try {
      await waitReady(dispatcher, child);
      const candidates = await routeCandidates(dispatcher, models);
      return { url, dispatcher, candidates, stop };
    } catch (error) {
      lastError = error;
      await stop(1000);
    }
  }
  throw lastError;
}

async function waitReady(dispatcher, child) {
  const deadline = performance.now() + 15_000;
  while (performance.now() < deadline) {
    if (child.exited()) throw new Error(`the gateway exited before it was ready:\n${child.tail()}`);
    try {
      const response = await dispatcher.request({ method: "GET", path: "/readyz", headersTimeout: 1000, bodyTimeout: 1000 });
      await response.body.dump();
      if (response.statusCode === 200) return;
    } catch {
      // not listening yet
    }
    await sleep(100);
  }
  throw new Error(`the gateway was not ready within 15 s:\n${child.tail()}`);
}

async function routeCandidates(dispatcher, models) {
  const response = await dispatcher.request({ method: "GET", path: "/admin/routes", headersTimeout: 5000, bodyTimeout: 5000 });
  if (response.statusCode !== 200) throw new Error(`GET /admin/routes answered ${response.statusCode}: ${await response.body.text()}`);
  const body = await response.body.json();
  const route = body.routes?.find((entry) => entry.name === ROUTE);
  if (route === undefined) throw new Error(`GET /admin/routes lists no route "${ROUTE}"`);
  const prices = new Map(models.map((model) => [model.id, model.pricePerMTok]));
  return route.candidates.map((candidate) => ({ id: candidate.id, pricePerMTok: prices.get(candidate.id) }));
}
