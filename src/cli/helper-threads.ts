// Runs the process's helper threads at a lower CPU priority than the event loop, so that on a core they
// share, serving requests comes first. At start-up they are V8's compiler and GC workers and libuv's
// pool, which writes the log and resolves host names.
import { readdirSync } from "node:fs";
import { getPriority, setPriority } from "node:os";

/**
 * Lowers every thread of this process but the main one by `steps` nice levels below the main thread
 * (at most to 19, the lowest). Threads started later inherit the main thread's priority. Returns the
 * number of threads lowered, or undefined where threads cannot be listed (no `/proc`: not Linux).
 *
 * Why: with the gateway pinned to one core (as the bench runs it), a TurboFan compile or a GC step on a helper
 * thread (or a log write on the pool) of equal priority could keep the core for a scheduler slice of a
 * few milliseconds while a request waited. Ten levels lower, a helper yields to the event loop at once
 * and runs when it idles; each level is a factor of 1.25 in CPU share, so ten leave it about a tenth of
 * a core under full load.
 */
export function lowerHelperThreads(steps: number): number | undefined {
  let tasks: string[];
  try {
    tasks = readdirSync("/proc/self/task");
  } catch {
    return undefined;
  }
  const nice = Math.min(19, getPriority(process.pid) + steps);
  let lowered = 0;
  for (const task of tasks) {
    const tid = Number(task);
    if (tid === process.pid) continue;
    try {
      setPriority(tid, nice);
      lowered++;
    } catch {
      // The thread ended after the listing.
    }
  }
  return lowered;
}
