// Runs the process's helper threads at a lower CPU priority than the event loop, so that on a core they
// share, serving requests comes first. At start-up they are V8's compiler and GC workers and libuv's
// pool, which writes the log and resolves host names.
import { execFileSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { getPriority, setPriority } from "node:os";

/** What `lowerHelperThreads` changed. */
export interface LoweredThreads {
  /** Threads lowered by the nice levels asked for. */
  readonly threads: number;
  /** Of those, threads also put under SCHED_BATCH (0 without `chrt`). */
  readonly batch: number;
}

/**
 * Lowers every thread of process `pid` (this one by default) but the main one by `steps` nice levels
 * below the main thread (at most to 19, the lowest), and puts them under SCHED_BATCH. Threads started later inherit the main
 * thread's priority and policy. Returns undefined where threads cannot be listed (no `/proc`: not Linux).
 *
 * Why: with the gateway pinned to one core (bench/README.md), a TurboFan compile or a GC step on a helper
 * thread (or a log write on the pool) of equal priority could keep the core for a scheduler slice of a
 * few milliseconds while a request waited. Ten levels lower, a helper gets about a tenth of a core under
 * full load (each level is a factor of 1.25 in CPU share).
 *
 * Nice levels do not stop a helper from preempting the event loop when the event loop wakes it, though:
 * on Linux 6.18 (EEVDF) the gateway handed a compile job to a helper mid-chunk, the helper took the core
 * at once and kept it until the next tick, 2.3 ms, while the chunk waited (`perf sched` trace in
 * bench/README.md). A SCHED_BATCH thread never preempts on wake-up, so the event loop finishes its work
 * first. Node has no call for the policy; `chrt` (util-linux) sets it, one thread at a time.
 */
export function lowerHelperThreads(steps: number, pid = process.pid): LoweredThreads | undefined {
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return undefined;
  }
  const nice = Math.min(19, getPriority(pid) + steps);
  const lowered: string[] = [];
  for (const task of tasks) {
    const tid = Number(task);
    if (tid === pid) continue;
    try {
      setPriority(tid, nice);
      lowered.push(task);
    } catch {
      // The thread ended after the listing.
    }
  }
  let batch = 0;
  for (const tid of lowered) {
    try {
      execFileSync("chrt", ["--batch", "--pid", "0", tid], { stdio: "ignore", timeout: 2000 });
      batch++;
    } catch {
      // No `chrt`, or the thread ended: the nice level still holds.
    }
  }
  return { threads: lowered.length, batch };
}
