// Child processes of the quality bench: each runs under timeout(1), so it stops by itself even if the
// bench dies, and is tracked by PID so the bench kills it (and only it) on exit.
import { spawn } from "node:child_process";

/** PIDs of timeout(1) wrappers still running; each leads the process group of its command. */
const live = new Set();
let exitHookInstalled = false;

/** SIGKILL to a wrapper's process group (the wrapper and its command), or to the wrapper alone before it made the group. */
function killGroup(pid, signal) {
  try {
    process.kill(-pid, signal);
  } catch {
    try {
      process.kill(pid, signal);
    } catch {
      // already gone
    }
  }
}

/** Kills every child still running, synchronously (used on exit). */
export function killAllChildren() {
  for (const pid of live) killGroup(pid, "SIGKILL");
  live.clear();
}

/**
 * @typedef {object} BoundedChild
 * @property {number} pid            the timeout(1) wrapper's PID (also its process group id)
 * @property {() => string} tail     the last lines of the command's stdout and stderr
 * @property {() => boolean} exited
 * @property {Promise<void>} done    resolves when the wrapper has exited
 * @property {(graceMs?: number) => Promise<void>} stop  SIGTERM (forwarded by timeout to the command), SIGKILL to the group after graceMs (default 5000)
 */

/**
 * Starts `command args` under `timeout --kill-after=5 maxSeconds`: TERM after maxSeconds, KILL 5 s later.
 * @param {string} command
 * @param {readonly string[]} args
 * @param {{ cwd: string, env: Record<string, string>, maxSeconds: number }} options
 * @returns {BoundedChild}
 */
export function spawnBounded(command, args, { cwd, env, maxSeconds }) {
  if (!exitHookInstalled) {
    process.on("exit", killAllChildren);
    exitHookInstalled = true;
  }
  const child = spawn("timeout", ["--kill-after=5", String(Math.ceil(maxSeconds)), command, ...args], { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
  if (child.pid === undefined) throw new Error(`could not start ${command}`);
  const pid = child.pid;
  live.add(pid);
  const lines = [];
  const keep = (data) => {
    lines.push(
      ...data
        .toString("utf8")
        .split("\n")
        .filter((line) => line.trim() !== ""),
    );
    if (lines.length > 40) lines.splice(0, lines.length - 40);
  };
  child.stdout.on("data", keep);
  child.stderr.on("data", keep);
  let hasExited = false;
  const done = new Promise((resolve) => {
    child.once("exit", () => {
      hasExited = true;
      live.delete(pid);
      resolve();
    });
  });
  return {
    pid,
    tail: () => lines.join("\n"),
    exited: () => hasExited,
    done,
    async stop(graceMs = 5000) {
      if (hasExited) return;
      try {
        process.kill(pid, "SIGTERM");
      } catch {
        // already gone
      }
      let timer;
      const timedOut = await Promise.race([done.then(() => false), new Promise((resolve) => (timer = setTimeout(() => resolve(true), graceMs)))]);
      clearTimeout(timer);
      if (timedOut) {
        killGroup(pid, "SIGKILL");
        await done;
      }
    },
  };
}
