// A local cluster for the multi-replica test and bench: built gateways (node dist/main.js serve) behind
// Debian's haproxy (round robin), and Debian's redis-server, all on 127.0.0.1. Every process runs under
// timeout(1) (bench/quality/processes.mjs), so it ends even if its parent dies, and is stopped by PID.
import { accessSync, constants, existsSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { delimiter, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { freePort } from "../quality/gateway.mjs";
import { spawnBounded } from "../quality/processes.mjs";

/** Absolute path of `name` on PATH or in the sbin directories (haproxy lives in /usr/sbin), or undefined. */
export function findSystemBinary(name) {
  const dirs = [...(process.env.PATH ?? "").split(delimiter).filter(Boolean), "/usr/sbin", "/usr/local/sbin", "/sbin"];
  for (const dir of dirs) {
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

function accepting(port) {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.end();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

async function waitUntil(what, check, child, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exited()) throw new Error(`${what}: the process exited\n${child.tail()}`);
    if (await check()) return;
    await sleep(25);
  }
  throw new Error(`${what}: not ready after ${timeoutMs} ms\n${child.tail()}`);
}

/** SIGKILL to a bounded child's process group (the timeout(1) wrapper and its command): a crash. */
function killHard(child) {
  try {
    process.kill(-child.pid, "SIGKILL");
  } catch {
    // already gone
  }
  return child.done;
}

/**
 * redis-server on a free loopback port, without persistence; `kill` crashes it, `restart` starts an
 * empty one on the same port.
 */
export async function startRedis({ maxSeconds }) {
  const binary = findSystemBinary("redis-server");
  if (binary === undefined) throw new Error("redis-server is missing: apt-get install -y --no-install-recommends redis-server");
  const port = await freePort();
  let child;
  const launch = async () => {
    const args = ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--loglevel", "warning"];
    child = spawnBounded(binary, args, { cwd: "/", env: { PATH: process.env.PATH ?? "/usr/bin:/bin" }, maxSeconds });
    await waitUntil("redis-server", () => accepting(port), child, 10_000);
  };
  await launch();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    kill: () => killHard(child),
    restart: launch,
    stop: () => child.stop(2000),
  };
}

/**
 * `count` gateways on free ports, each from `config` (an object; its server.port is set per replica)
 * written into `dir`, with `env`. Resolves once every /readyz answers 200.
 */
export async function startReplicas({ root, dir, config, env, count, maxSeconds }) {
  const main = join(root, "dist/main.js");
  if (!existsSync(main)) throw new Error(`${main} is missing: run \`npm run build\` first`);
  const replicas = [];
  try {
    for (let index = 0; index < count; index++) {
      const port = await freePort();
      const configPath = join(dir, `gateway-${index}.json`);
      writeFileSync(configPath, JSON.stringify({ ...config, server: { ...config.server, host: "127.0.0.1", port } }));
      const child = spawnBounded(process.execPath, [main, "serve", "--config", configPath], { cwd: root, env, maxSeconds });
      const url = `http://127.0.0.1:${port}`;
      replicas.push({ url, port, child, stop: (graceMs) => child.stop(graceMs) });
      await waitUntil(
        `gateway ${index}`,
        () =>
          fetch(`${url}/readyz`).then(
            (response) => response.ok,
            () => false,
          ),
        child,
        20_000,
      );
    }
  } catch (error) {
    await Promise.all(replicas.map((replica) => replica.stop(1000)));
    throw error;
  }
  return replicas;
}

/**
 * haproxy in front of `backends` (ports on 127.0.0.1): HTTP mode, round robin, every request balanced
 * on its own (http-server-close), with its config file written into `dir`.
 */
export async function startHaproxy({ dir, backends, maxSeconds }) {
  const binary = findSystemBinary("haproxy");
  if (binary === undefined) throw new Error("haproxy is missing: apt-get install -y --no-install-recommends haproxy");
  const port = await freePort();
  const configPath = join(dir, "haproxy.cfg");
  const lines = [
    "global",
    "  maxconn 1024",
    "defaults",
    "  mode http",
    "  option http-server-close",
    "  timeout connect 2s",
    "  timeout client 60s",
    "  timeout server 60s",
    "frontend gateways",
    `  bind 127.0.0.1:${port}`,
    "  default_backend replicas",
    "backend replicas",
    "  balance roundrobin",
    ...backends.map((backendPort, index) => `  server replica${index} 127.0.0.1:${backendPort}`),
    "",
  ];
  writeFileSync(configPath, lines.join("\n"));
  const child = spawnBounded(binary, ["-f", configPath, "-db"], { cwd: dir, env: { PATH: process.env.PATH ?? "/usr/bin:/bin" }, maxSeconds });
  await waitUntil("haproxy", () => accepting(port), child, 10_000);
  return { url: `http://127.0.0.1:${port}`, stop: () => child.stop(2000) };
}
