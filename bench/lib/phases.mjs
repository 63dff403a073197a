// One phase against one target: closed-loop load from this process (load.mjs), with the target's CPU and
// memory, the mock's CPU and the cores' interference read around the measured window; and the warm-ups.
import { request } from "undici";
import { runLoad, summarize } from "../load.mjs";
import { tail } from "./children.mjs";
import { memMB, resetPeak } from "./proc.mjs";
import { BENCH_KEY, BODIES } from "./workload.mjs";

/** Unmeasured load at c=16: JSON, short streams, or long streams that the client cancels mid-way. */
const WARM_LOADS = {
  json: { body: "json" },
  stream: { body: "short", stream: true },
  cancel: { body: "stream", stream: true, abortAtEnd: true },
};

/** The mock's counters since its start: {connections, requests, streams}; null when it does not answer. */
async function mockStats(mock) {
  try {
    const r = await request(`${mock.url}/mock/stats`, { headersTimeout: 2000, bodyTimeout: 2000 });
    return await r.body.json();
  } catch {
    return null;
  }
}

/**
 * Runs phases. A target is `{ name, url, proc }` (`proc` is null for direct, which is the mock itself);
 * `others` are the proxies SIGSTOPped while it is measured, unless --no-freeze. `cpu` is createCpuReader()'s.
 */
export function createPhaseRunner({ options, cpu, log }) {
  const T = options.durations;

  const signalProc = (rec, sig) => {
    if (!options.freeze || !rec || rec.exited) return;
    try {
      process.kill(rec.pid, sig);
    } catch {}
  };

  /** Measures one phase (a row of phaseTable()) against `target`; the result is what a repeat records. */
  async function runPhase(target, spec, mock, others) {
    const s0 = await mockStats(mock);
    for (const o of others) signalProc(o.proc, "SIGSTOP");
    signalProc(target.proc, "SIGCONT");
    const pid = target.proc?.pid;
    let c0, c1, m0, m1, rssTimer, k0, k1;
    let rssMax = 0;
    let peakReset = false;
    const sampleRss = () => {
      const m = memMB(pid);
      if (m.rss > rssMax) rssMax = m.rss;
    };
    const r = await runLoad({
      url: target.url,
      body: BODIES[spec.body],
      key: BENCH_KEY,
      concurrency: spec.concurrency,
      durationMs: spec.warm + (spec.stagger ?? 0) + spec.win,
      warmMs: spec.warm + (spec.stagger ?? 0),
      staggerMs: spec.stagger ?? 0,
      thinkMs: spec.think ?? 0,
      stream: Boolean(spec.stream),
      abortAtEnd: Boolean(spec.abortAtEnd),
      drainTimeoutMs: spec.stream ? 5000 : 10_000,
      onWindowStart: () => {
        k0 = cpu.coreTimes();
        m0 = cpu.cpuMs(mock.pid);
        if (pid) {
          c0 = cpu.cpuMs(pid);
          if (spec.rss) {
            peakReset = resetPeak(pid);
            rssTimer = setInterval(sampleRss, 200);
          }
        }
      },
      onWindowEnd: () => {
        k1 = cpu.coreTimes();
        m1 = cpu.cpuMs(mock.pid);
        if (pid) {
          c1 = cpu.cpuMs(pid);
          if (spec.rss) {
            clearInterval(rssTimer);
            sampleRss();
          }
        }
      },
    });
    const s1 = await mockStats(mock);
    const out = {
      rps: r.rps,
      completed: r.completed,
      errors: r.errors,
      errorKinds: r.errorKinds,
      lat: summarize(r.lat),
      driverMsPerReq: r.driverCpuMs / Math.max(1, r.completed),
      mockMsPerReq: (m1 - m0) / Math.max(1, r.completed),
    };
    if (pid) out.cpuMsPerReq = (c1 - c0) / Math.max(1, r.completed);
    // New TCP connections the mock accepted per request it served (the whole phase): ~0 when the proxy
    // keeps its upstream connections alive; ~1 when it opens one per request.
    if (s0 && s1) out.upstreamConnsPerReq = (s1.connections - s0.connections) / Math.max(1, s1.requests - s0.requests);
    // Interference: core time not spent in our processes (other work on the machine, plus kernel
    // softirq time that /proc does not charge to a process), as a share of the window.
    if (k0?.cpu0 && k1?.cpu1) {
      const w = r.windowMs;
      out.foreign = {
        core0: (k1.cpu0.busy - k0.cpu0.busy - r.driverCpuMs - (m1 - m0)) / w,
        core1: (k1.cpu1.busy - k0.cpu1.busy - (pid ? c1 - c0 : 0)) / w,
        steal: (k1.cpu0.steal - k0.cpu0.steal + k1.cpu1.steal - k0.cpu1.steal) / w,
        irq0: (k1.cpu0.irq - k0.cpu0.irq) / w,
        irq1: (k1.cpu1.irq - k0.cpu1.irq) / w,
      };
    }
    if (spec.stream) {
      out.ttfc = summarize(r.ttfc);
      out.gaps = summarize(r.gaps);
      out.chunkDelay = summarize(r.chunkDelays);
    }
    if (spec.rss && pid) {
      const m = memMB(pid);
      out.rssPeakMB = Math.max(rssMax, peakReset ? m.hwm : 0);
      out.rssEndMB = m.rss;
      out.hwmLifetimeMB = peakReset ? undefined : m.hwm;
    }
    if (r.errors > 0) log(`  WARN ${target.name} ${spec.key}: ${r.errors} errors ${JSON.stringify(r.errorKinds)}`);
    if (target.proc?.exited) {
      const code = target.proc.child.exitCode ?? target.proc.child.signalCode;
      throw new Error(`${target.name} (pid ${pid}) died during ${spec.key} (${code}):\n${tail(target.proc.errPath)}\n${tail(target.proc.outPath, 1000)}`);
    }
    return out;
  }

  const warmLoad = (target, kind, ms, mock, others) =>
    runPhase(target, { key: `warmup-${kind}`, concurrency: 16, warm: 0, win: ms, ...WARM_LOADS[kind] }, mock, others);

  /**
   * Brings a target to its steady state for the given kinds of work ("stream", "json"), in that order,
   * and for no other: a major GC later frees the object maps only that other kind used, and V8 drops the
   * code compiled against them. Cancelled streams come first: a process's first client cancellation
   * deoptimises dozens of hot functions in Node's and undici's stream code at once (`--trace-deopt`:
   * "code dependencies"), and V8 then recompiles them over the next seconds on the proxy's one core.
   * Without this, the first phase after the first cut, `stream_c16`, measured that
   * (docs/performance-log.md, "Warm-up").
   */
  async function warmUp(target, mock, others, kinds) {
    for (const kind of kinds) {
      if (kind === "stream") await warmLoad(target, "cancel", T.cancelWarmup, mock, others);
      await warmLoad(target, kind, T.warmup, mock, others);
    }
  }

  /** Lets a proxy stopped for another target's phase run again (a no-op with --no-freeze). */
  const resume = (rec) => signalProc(rec, "SIGCONT");

  return { runPhase, warmUp, resume };
}
