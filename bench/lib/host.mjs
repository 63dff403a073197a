// The host under a run: the bench pinned to core 0, its precedence over other work, and how fast idle
// CPUs wake up.
import { execFileSync } from "node:child_process";
import { openSync, writeSync } from "node:fs";
import { availableParallelism, getPriority, setPriority } from "node:os";

/** Pins this process (all its threads) to core 0; false when the host has one core or no taskset. */
export function pinSelf(log) {
  if (availableParallelism() < 2) {
    log("WARN: fewer than 2 CPUs; running unpinned, ratios will be meaningless");
    return false;
  }
  try {
    execFileSync("taskset", ["-a", "-p", "-c", "0", String(process.pid)], { stdio: "ignore" });
    return true;
  } catch {
    log("WARN: taskset failed (apt-get install -y util-linux); running unpinned");
    return false;
  }
}

/**
 * Sets this process's nice value, which every child inherits, and returns the value it has. The host
 * may be shared with other work (builds, test runs): a negative value gives the benchmark's processes
 * precedence over it, and needs root or CAP_SYS_NICE; without them the value stays as it was.
 */
export function renice(n) {
  try {
    setPriority(n);
  } catch {}
  return getPriority();
}

/**
 * With `hold`, keeps idle CPUs polling instead of halting while this process lives, with a PM QoS request
 * of 0 µs wake-up latency (Linux, /dev/cpu_dma_latency; tuned's latency-performance profile does the
 * same). The request lasts while the file stays open, so it ends with this process; it needs root. Off
 * by default: the floor figures look like those of halting CPUs (docs/performance-log.md,
 * "Idle CPUs"). Returns how the run's CPUs wake up, for the report.
 */
export function holdCpuLatency(hold) {
  if (!hold) return "as the machine is set (idle CPUs may halt)";
  try {
    const fd = openSync("/dev/cpu_dma_latency", "r+");
    writeSync(fd, Buffer.alloc(4));
    return "held at 0 µs (idle CPUs poll)";
  } catch (error) {
    throw new Error(`--pm-qos: cannot hold /dev/cpu_dma_latency (${error.code ?? error.message}); it needs root`);
  }
}
