// Readings from /proc (proc(5)): a process's CPU time and memory, and the busy time of cores 0 and 1.
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";

/** Readers of CPU time, in ms; they need the kernel's clock ticks per second, asked once here. */
export function createCpuReader() {
  let tck = 100;
  try {
    tck = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
  } catch {}
  const ms = (ticks) => (ticks * 1000) / tck;

  /** utime+stime of a process, in ms. */
  function cpuMs(pid) {
    try {
      const s = readFileSync(`/proc/${pid}/stat`, "utf8");
      const f = s.slice(s.lastIndexOf(")") + 2).split(" ");
      return ms(Number(f[11]) + Number(f[12])); // fields 14 and 15 of proc(5)
    } catch {
      return NaN;
    }
  }

  /** Busy (all but idle, iowait and steal), interrupt and steal time of cores 0 and 1 from /proc/stat, in ms. */
  function coreTimes() {
    const out = {};
    try {
      for (const line of readFileSync("/proc/stat", "utf8").split("\n")) {
        const m = /^cpu([01]) (.*)$/.exec(line);
        if (!m) continue;
        const [user, nice, system, , , irq, softirq, steal] = m[2].trim().split(/\s+/).map(Number);
        // busy includes interrupt time: /proc/PID/stat charges most of our loopback softirq to our processes.
        out[`cpu${m[1]}`] = { busy: ms(user + nice + system + irq + softirq), irq: ms(irq + softirq), steal: ms(steal) };
      }
    } catch {}
    return out;
  }

  return { cpuMs, coreTimes };
}

/** VmRSS and VmHWM of a process, in MB. */
export function memMB(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/status`, "utf8");
    const kb = (k) => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(s)?.[1] ?? NaN);
    return { rss: kb("VmRSS") / 1024, hwm: kb("VmHWM") / 1024 };
  } catch {
    return { rss: NaN, hwm: NaN };
  }
}

/** Resets a process's VmHWM to its current RSS (clear_refs "5"); false when not allowed. */
export function resetPeak(pid) {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, "5");
    return true;
  } catch {
    return false;
  }
}
