// Other work on a shared host: how much of a core a phase lost to it, and the bounded budget a run has
// for waiting until the host is quiet and measuring such a phase again.
import { setTimeout as sleep } from "node:timers/promises";

/**
 * A phase that lost more than this share of a core to other work is unreliable. About 5–10% of a core
 * goes to background work and accounting slack even on a quiet host.
 */
export const FOREIGN_LIMIT = 0.2;

/** Largest share of a core that went to work other than ours during the window. */
export const foreignMax = (out) => Math.max(out.foreign?.core0 ?? 0, out.foreign?.core1 ?? 0);

/** How many measured phases of the repeats went over FOREIGN_LIMIT, and the worst share, for the report. */
export function interferenceOf(reps) {
  const phaseOuts = reps.flatMap((rep) =>
    Object.entries(rep.phases)
      .filter(([k]) => k !== "start")
      .flatMap(([, ph]) => Object.values(ph)),
  );
  const busyPhases = phaseOuts.filter((o) => foreignMax(o) > FOREIGN_LIMIT).length;
  return { phases: phaseOuts.length, busyPhases, limit: FOREIGN_LIMIT, worst: Math.max(0, ...phaseOuts.map(foreignMax)) };
}

/**
 * The run's budget for measuring a phase again. Quick runs must stay under 2 minutes, so they only flag
 * interference; full runs measure again at most 6 times and wait at most 45 s in all, which keeps a run
 * under 10 minutes (8–8.5 without re-measuring). `coreTimes` is createCpuReader()'s.
 */
export function createRemeasureBudget({ quick, coreTimes }) {
  let quietBudgetMs = (quick ? 0 : 45) * 1000;
  let retriesLeft = quick ? 0 : 6;
  return {
    /** Spends one of the retries; false when none is left. */
    take() {
      if (retriesLeft <= 0) return false;
      retriesLeft--;
      return true;
    },
    /** Waits (from the budget for the whole run) until neither core is busier than FOREIGN_LIMIT. */
    async waitQuiet() {
      const t0 = performance.now();
      while (quietBudgetMs > 0) {
        const a = coreTimes();
        await sleep(300);
        const b = coreTimes();
        quietBudgetMs -= 300;
        const busy = Math.max(b.cpu0.busy - a.cpu0.busy, b.cpu1.busy - a.cpu1.busy) / 300;
        if (busy <= FOREIGN_LIMIT) return { quiet: true, ms: performance.now() - t0 };
      }
      return { quiet: false, ms: performance.now() - t0 };
    },
  };
}
