// Debian's redis-server for tests: started on a free 127.0.0.1 port without persistence, stopped by pid.
import { spawn, type ChildProcess } from "node:child_process";
import { accessSync, constants } from "node:fs";
import { connect } from "node:net";
import { delimiter, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { freePort } from "../observability/processes.js";

/** Absolute path of `name` on PATH or in the sbin directories (haproxy lives in /usr/sbin), or undefined. */
export function findSystemBinary(name: string): string | undefined {
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

/** CI must run every test: a missing Debian binary there is a failure, not a skip. */
export const IN_CI = process.env.CI !== undefined && !["", "0", "false"].includes(process.env.CI);

export const REDIS_SERVER = findSystemBinary("redis-server");

export interface TestRedis {
  readonly port: number;
  /** redis://127.0.0.1:port (with the password when one was set). */
  readonly url: string;
  readonly pid: number | undefined;
  /** Kills the server by pid (SIGKILL: a crash, no goodbye to clients). */
  kill(): Promise<void>;
  /** Starts it again on the same port (empty: no persistence). */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

async function accepting(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.end();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

/** Starts redis-server (`--save "" --appendonly no`) on a free loopback port and waits until it accepts. */
export async function startRedis(options: { password?: string } = {}): Promise<TestRedis> {
  if (!REDIS_SERVER) throw new Error("redis-server is missing: apt-get install -y --no-install-recommends redis-server");
  const binary = REDIS_SERVER;
  const port = await freePort();
  let child: ChildProcess | undefined;
  let output = "";
  const launch = async (): Promise<void> => {
    const args = ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--loglevel", "warning"];
    if (options.password) args.push("--requirepass", options.password);
    const started = spawn(binary, args, { stdio: ["ignore", "pipe", "pipe"] });
    started.stdout.on("data", (data: Buffer) => (output = (output + data.toString()).slice(-4000)));
    started.stderr.on("data", (data: Buffer) => (output = (output + data.toString()).slice(-4000)));
    child = started;
    for (let waited = 0; waited < 10_000; waited += 25) {
      if (started.exitCode !== null) throw new Error(`redis-server exited (${started.exitCode}):\n${output}`);
      if (await accepting(port)) return;
      await sleep(25);
    }
    throw new Error(`redis-server did not accept connections on port ${port}:\n${output}`);
  };
  const halt = async (signal: NodeJS.Signals): Promise<void> => {
    const running = child;
    child = undefined;
    if (!running?.pid || running.exitCode !== null || running.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => running.once("exit", () => resolve()));
    process.kill(running.pid, signal);
    await exited;
  };
  await launch();
  const auth = options.password ? `:${encodeURIComponent(options.password)}@` : "";
  return {
    port,
    url: `redis://${auth}127.0.0.1:${port}`,
    get pid() {
      return child?.pid;
    },
    kill: () => halt("SIGKILL"),
    restart: launch,
    stop: () => halt("SIGTERM"),
  };
}
