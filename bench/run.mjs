// Benchmark entry: Subsecond against the physical floor (a bare Node proxy) and the direct path,
// interleaved within one run, over several fresh process pairs; or, with --profile, CPU profiles of both
// proxies. `node bench/run.mjs --help` lists the flags; bench/README.md explains the figures.
//
// Layout (2 cores): this process (the load driver) and the mock upstream on core 0; the proxy under
// test on core 1. While one target is measured the other proxy is SIGSTOPped, so the two proxies never
// share core 1. Every child is spawned by this process, tracked by PID, and killed by PID on exit,
// error or signal. The work itself lives in bench/lib/; this file only wires it and owns the process.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { createChildren } from "./lib/children.mjs";
import { runComparison, runDeadlineMs } from "./lib/compare.mjs";
import { pinSelf, renice } from "./lib/host.mjs";
import { createRemeasureBudget } from "./lib/interference.mjs";
import { createRunLock } from "./lib/lock.mjs";
import { USAGE, UsageError, parseOptions } from "./lib/options.mjs";
import { log } from "./lib/output.mjs";
import { createPhaseRunner } from "./lib/phases.mjs";
import { createCpuReader } from "./lib/proc.mjs";
import { runGc } from "./lib/gc.mjs";
import { runProfile } from "./lib/profile.mjs";
import { createTargets } from "./lib/targets.mjs";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");

// The fault soak is a run of its own, with its own flags.
if (process.argv.includes("--soak-faults")) {
  const soak = spawnSync(process.execPath, [join(ROOT, "bench/soak-faults.mjs"), ...process.argv.slice(2)], { stdio: "inherit" });
  process.exit(soak.status ?? 2);
}

function readOptions() {
  try {
    return parseOptions(process.argv.slice(2), ROOT);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`${error.message}\n`);
    process.exit(2);
  }
}

const options = readOptions();
if (options.help) {
  process.stdout.write(USAGE);
  process.exit(0);
}

const workDir = mkdtempSync(join(tmpdir(), "subsecond-bench-"));
const pinned = pinSelf(log);
const niceness = renice(options.nice);
const cpu = createCpuReader();
const children = createChildren({ root: ROOT, workDir, pinned });
const lock = createRunLock({ path: join(ROOT, "bench/results/run.lock"), waitSeconds: options.waitLockSeconds, log });
const deps = {
  root: ROOT,
  options,
  pinned,
  niceness,
  log,
  children,
  targets: createTargets({ root: ROOT, options, children, log }),
  runner: createPhaseRunner({ options, cpu, log }),
  budget: createRemeasureBudget({ quick: options.quick, coreTimes: cpu.coreTimes }),
};

let cleaning = null;
/** Stops the children, releases the lock and removes the logs, once; later calls wait for the first. */
function cleanup() {
  cleaning ??= (async () => {
    await children.stopAll();
    lock.release();
    if (!options.keepLogs) rmSync(workDir, { recursive: true, force: true });
    else log(`logs kept in ${workDir}`);
  })();
  return cleaning;
}
process.on("exit", () => {
  children.killAllSync();
  lock.release();
});
for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.on(sig, () => {
    log(`\n${sig}: stopping children`);
    cleanup().finally(() => process.exit(130));
  });
}

async function run() {
  await lock.acquire();
  if (options.profile) return runProfile(deps);
  if (options.gc) return runGc(deps);
  const deadlineMs = runDeadlineMs(options);
  const watchdog = setTimeout(() => {
    log(`ERROR: run exceeded ${deadlineMs / 1000} s; aborting`);
    cleanup().finally(() => process.exit(3));
  }, deadlineMs);
  watchdog.unref();
  return runComparison(deps);
}

run()
  .then(async (code) => {
    await cleanup();
    process.exit(code);
  })
  .catch(async (err) => {
    log(`ERROR: ${err?.stack ?? err}`);
    await cleanup();
    process.exit(2);
  });
