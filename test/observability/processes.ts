// Child processes for the live observability test: the built gateway and a real Prometheus, on loopback.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { accessSync, constants, existsSync } from "node:fs";
import { createServer, type AddressInfo } from "node:net";
import { delimiter, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

/** Absolute path of an executable found on PATH, or undefined. */
export function findBinary(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? "").split(delimiter).filter(Boolean)) {
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

/** Polls `check` every `intervalMs` until it returns a value other than undefined, at most `timeoutMs`. */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined> | T | undefined, timeoutMs: number, intervalMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (let attempt = 0; Date.now() < deadline; attempt++) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (error) {
      lastError = error;
    }
    await sleep(intervalMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? ` (last error: ${String(lastError)})` : ""}`);
}

/** A port that was free on 127.0.0.1 a moment ago (for programs that cannot listen on port 0 and report it). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export interface ChildHandle {
  readonly pid: number;
  readonly child: ChildProcess;
  /** Last lines of stdout and stderr, for failure messages. */
  tail(lines?: number): string;
  /** Undefined while running; how it ended otherwise (exit code or signal). */
  exit(): string | undefined;
  /** SIGTERM by pid, then SIGKILL by pid if it has not exited after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}

function track(child: ChildProcess, name: string, onLine?: (line: string) => void): ChildHandle {
  if (child.pid === undefined) throw new Error(`${name} did not start`);
  const pid = child.pid;
  const lines: string[] = [];
  const keep = (prefix: string) => {
    let partial = "";
    return (data: Buffer): void => {
      const parts = (partial + data.toString("utf8")).split("\n");
      partial = parts.pop() ?? "";
      for (const line of parts) {
        lines.push(prefix + line);
        if (lines.length > 400) lines.shift();
        onLine?.(line);
      }
    };
  };
  child.stdout?.on("data", keep(""));
  child.stderr?.on("data", keep("[stderr] "));
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once("exit", () => resolve());
  });
  return {
    pid,
    child,
    tail: (n = 30) => lines.slice(-n).join("\n"),
    exit: () => (child.exitCode !== null ? `exit code ${child.exitCode}` : child.signalCode !== null ? `signal ${child.signalCode}` : undefined),
    async stop(graceMs = 5000) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      process.kill(pid, "SIGTERM");
      const stopped = await Promise.race([exited.then(() => true), sleep(graceMs).then(() => false)]);
      if (!stopped) {
        process.kill(pid, "SIGKILL");
        await exited;
      }
    },
  };
}

export interface RunningGateway {
  readonly url: string;
  readonly handle: ChildHandle;
}

/**
 * Starts `node dist/main.js serve --config <path>` from the repository root (build first: `npm test` does)
 * and resolves with the URL of its `"msg":"listening"` log line.
 */
export async function startGateway(repoRoot: string, configPath: string, env: NodeJS.ProcessEnv, timeoutMs = 15000): Promise<RunningGateway> {
  const main = join(repoRoot, "dist", "main.js");
  if (!existsSync(main)) throw new Error(`${main} is missing: run \`npm run build\` first (\`npm test\` does)`);
  let url: string | undefined;
  const child = spawn(process.execPath, [main, "serve", "--config", configPath], { cwd: repoRoot, env, stdio: ["ignore", "pipe", "pipe"] });
  const handle = track(child, "gateway", (line) => {
    if (url !== undefined || !line.startsWith("{")) return;
    try {
      const entry = JSON.parse(line) as { msg?: unknown; url?: unknown };
      if (entry.msg === "listening" && typeof entry.url === "string") url = entry.url;
    } catch {
      // not a JSON log line
    }
  });
  try {
    const found = await waitFor(
      'the gateway\'s "listening" log line',
      () => {
        if (child.exitCode !== null || child.signalCode !== null) throw new Error(`gateway exited (${child.exitCode ?? child.signalCode})`);
        return url;
      },
      timeoutMs,
      50,
    );
    return { url: found, handle };
  } catch (error) {
    await handle.stop(1000);
    throw new Error(`${(error as Error).message}\n--- gateway output ---\n${handle.tail()}`, { cause: error });
  }
}

export interface RunningPrometheus {
  readonly url: string;
  readonly handle: ChildHandle;
}

/** Starts Prometheus on a free loopback port and waits for `/-/ready`. */
export async function startPrometheus(binary: string, configFile: string, dataDir: string, timeoutMs = 15000): Promise<RunningPrometheus> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child = spawn(binary, [`--config.file=${configFile}`, `--storage.tsdb.path=${dataDir}`, `--web.listen-address=127.0.0.1:${port}`, "--log.level=warn"], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  const handle = track(child, "prometheus");
  try {
    await waitFor(
      `Prometheus ready on ${url}`,
      async () => {
        if (child.exitCode !== null || child.signalCode !== null) throw new Error(`prometheus exited (${child.exitCode ?? child.signalCode})`);
        const res = await fetch(`${url}/-/ready`);
        return res.ok ? true : undefined;
      },
      timeoutMs,
    );
    return { url, handle };
  } catch (error) {
    await handle.stop(1000);
    throw new Error(`${(error as Error).message}\n--- prometheus output ---\n${handle.tail()}`, { cause: error });
  }
}

export interface ToolResult {
  status: number | null;
  output: string;
}

/** Runs a tool to completion (stdout and stderr merged in the result), with an optional stdin. */
export function runTool(binary: string, args: readonly string[], options: { input?: string; cwd?: string; timeoutMs?: number } = {}): ToolResult {
  const result = spawnSync(binary, args, { input: options.input, cwd: options.cwd, encoding: "utf8", timeout: options.timeoutMs ?? 20000 });
  if (result.error) throw result.error;
  return { status: result.status, output: `${result.stdout ?? ""}${result.stderr ?? ""}` };
}
