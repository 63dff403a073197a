// The child processes of a run: spawned pinned to a core, tracked by PID, stopped by PID.
import { spawn } from "node:child_process";
import { closeSync, openSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

/** The last `n` characters of a file, or "" when it cannot be read. */
export function tail(path, n = 2000) {
  try {
    const t = readFileSync(path, "utf8");
    return t.length > n ? `…${t.slice(-n)}` : t;
  } catch {
    return "";
  }
}

/**
 * The children of one run. Each runs `node [flags] argv` in `root`, on one core when `pinned`, with its
 * stdout and stderr in files under `workDir` (`<name>.out`, `<name>.out.err`). A child is a record
 * `{ name, child, pid, outPath, errPath, exited, url }`; `url` is set once it listens.
 */
export function createChildren({ root, workDir, pinned }) {
  const children = new Map(); // pid -> record

  function spawnPinned(name, cpu, argv, { env = process.env, flags = [] } = {}) {
    const cmd = pinned ? "taskset" : process.execPath;
    const cmdArgs = pinned ? ["-c", String(cpu), process.execPath, ...flags, ...argv] : [...flags, ...argv];
    const outPath = join(workDir, `${name}.out`);
    const errPath = `${outPath}.err`;
    const out = openSync(outPath, "w");
    const err = openSync(errPath, "w");
    const child = spawn(cmd, cmdArgs, { cwd: root, env, stdio: ["ignore", out, err] });
    closeSync(out);
    closeSync(err);
    const rec = { name, child, pid: child.pid, outPath, errPath, exited: false, url: null };
    child.on("exit", () => (rec.exited = true));
    children.set(child.pid, rec);
    return rec;
  }

  /** Waits for the child's {"msg":"listening","url":...} line on its stdout (a file), bounded. */
  async function waitListening(rec, timeoutMs = 20_000) {
    const deadline = performance.now() + timeoutMs;
    while (performance.now() < deadline) {
      if (rec.exited) throw new Error(`${rec.name} exited before listening:\n${tail(rec.errPath)}\n${tail(rec.outPath)}`);
      const text = readFileSync(rec.outPath, "utf8");
      for (const line of text.split("\n")) {
        if (!line.includes('"listening"')) continue;
        try {
          const j = JSON.parse(line);
          if (j.msg === "listening" && typeof j.url === "string") {
            rec.url = j.url.replace("localhost", "127.0.0.1").replace(/\/$/, "");
            return rec;
          }
        } catch {}
      }
      await sleep(25);
    }
    throw new Error(`${rec.name} did not print a listening line within ${timeoutMs} ms:\n${tail(rec.errPath)}\n${tail(rec.outPath)}`);
  }

  /** SIGCONT and SIGTERM, then SIGKILL after `graceMs`. */
  async function stop(rec, graceMs = 2000) {
    if (!children.has(rec.pid)) return;
    if (!rec.exited) {
      try {
        process.kill(rec.pid, "SIGCONT");
        process.kill(rec.pid, "SIGTERM");
      } catch {}
      const deadline = performance.now() + graceMs;
      while (!rec.exited && performance.now() < deadline) await sleep(20);
      if (!rec.exited) {
        try {
          process.kill(rec.pid, "SIGKILL");
        } catch {}
        while (!rec.exited && performance.now() < deadline + 2000) await sleep(20);
      }
    }
    children.delete(rec.pid);
  }

  /** Stops every child still tracked, each with the default grace. */
  const stopAll = () => Promise.all([...children.values()].map((rec) => stop(rec)));

  /** SIGKILLs every child still running: for process exit, where nothing can be awaited. */
  function killAllSync() {
    for (const rec of children.values()) {
      if (rec.exited) continue;
      try {
        process.kill(rec.pid, "SIGKILL");
      } catch {}
    }
    children.clear();
  }

  return { spawnPinned, waitListening, stop, stopAll, killAllSync };
}
