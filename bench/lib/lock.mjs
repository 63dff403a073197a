// One run at a time per checkout. Two runs would share the two cores, and bench/gateway-bench.yaml,
// which the gateway hot-reloads, would point one run's gateway at the other run's mock.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

/** A PID file at `path`; `acquire()` waits at most `waitSeconds` for a live bench run that holds it. */
export function createRunLock({ path, waitSeconds, log }) {
  let haveLock = false;

  /** The PID of another live bench run that holds the lock, or null. */
  function holder() {
    try {
      const pid = Number(readFileSync(path, "utf8").trim());
      if (!pid || pid === process.pid) return null;
      process.kill(pid, 0);
      return readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("run.mjs") ? pid : null;
    } catch {
      return null;
    }
  }

  async function acquire() {
    mkdirSync(dirname(path), { recursive: true });
    const deadline = performance.now() + waitSeconds * 1000;
    let told = false;
    for (;;) {
      const pid = holder();
      if (!pid) {
        // A stale lock (its run died) is simply taken over.
        writeFileSync(path, String(process.pid));
        haveLock = true;
        return;
      } else if (!told) {
        log(`another bench run (pid ${pid}) is in progress; waiting for it (at most ${waitSeconds} s)`);
        told = true;
      }
      if (performance.now() > deadline) throw new Error(`bench run ${pid} still holds ${path}`);
      await sleep(500);
    }
  }

  /** Removes the lock if this process holds it; safe to call more than once. */
  function release() {
    if (!haveLock) return;
    haveLock = false;
    try {
      if (readFileSync(path, "utf8").trim() === String(process.pid)) rmSync(path, { force: true });
    } catch {}
  }

  return { acquire, release };
}
