// The comparison run (the default mode): direct, the floor and the gateway, interleaved phase by phase
// over fresh process pairs; then the optional soak, the decision micro-benchmark, the report and the JSON.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { dirname, join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { acceptance, baselineChecks } from "./acceptance.mjs";
import { holdCpuLatency } from "./host.mjs";
import { FOREIGN_LIMIT, foreignMax, interferenceOf } from "./interference.mjs";
import { pct } from "./output.mjs";
import { memMB } from "./proc.mjs";
import { reportLines } from "./report.mjs";
import { runDecision } from "./run-decision.mjs";
import { runSoak } from "./soak.mjs";
import { aggregate } from "./stats.mjs";
import { PAUSE_BETWEEN_PHASES_MS, SHORT, STREAM, kindOf, kindsOf } from "./workload.mjs";

/** The bound on a whole comparison run, in ms: 4 minutes quick, 15 full, plus the soak and a minute. */
export const runDeadlineMs = (options) => (options.quick ? 240 : 900) * 1000 + (options.soak ? (options.soakSeconds + 60) * 1000 : 0);

const rotate = (a, k) => a.map((_, i) => a[(i + k) % a.length]);

function gitInfo(root) {
  const g = (...a) => {
    try {
      return execFileSync("git", a, { cwd: root, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
    } catch {
      return null;
    }
  };
  return { commit: g("rev-parse", "HEAD"), dirtySrc: Boolean(g("status", "--porcelain", "src")) };
}

/**
 * Repeat `r`: a fresh floor and gateway, sanity-checked, then every selected phase for each target in an
 * order rotated by repeat and phase, each proxy warmed up whenever the kind of work changes. A phase that
 * lost too much of a core to other work is measured once more while the run's budget lasts.
 */
async function runRepeat(r, { options, children, targets, runner, budget, log }, mock, direct) {
  const tRep = performance.now();
  const [floorProc, gwProc] = await Promise.all([targets.startFloor(`floor-${r}`, mock.url), targets.startGateway(`gateway-${r}`, mock.url)]);
  const floor = { name: "floor", url: floorProc.url, proc: floorProc };
  const sub = { name: "subsecond", url: gwProc.url, proc: gwProc };
  const all = [direct, floor, sub];
  const rep = { repeat: r, phases: {} };
  rep.phases.start = {
    direct: {},
    floor: { rssMB: memMB(floorProc.pid).rss },
    subsecond: { rssMB: memMB(gwProc.pid).rss },
  };
  await targets.sanity("floor", floor.url);
  const gwSanity = await targets.sanity("subsecond", sub.url);
  if (r === 0) rep.gatewayHeaders = Object.fromEntries(Object.entries(gwSanity.jsonHeaders).filter(([k]) => k.startsWith("x-")));
  const others = (t) => all.filter((x) => x !== t && x.proc);
  if (r === 0) await runner.warmUp(direct, mock, others(direct), kindsOf(options.phases));
  // Each proxy is warmed up for the kind of work of the phases that follow, and again when it changes.
  let work;
  for (let p = 0; p < options.phases.length; p++) {
    const spec = options.phases[p];
    const phaseWork = kindOf(spec);
    if (phaseWork !== work) {
      for (const t of [floor, sub]) await runner.warmUp(t, mock, others(t), [phaseWork]);
      work = phaseWork;
    }
    const res = {};
    for (const t of rotate(all, r + p)) {
      let out = await runner.runPhase(t, spec, mock, others(t));
      await sleep(PAUSE_BETWEEN_PHASES_MS);
      // Other work on the machine (this host is shared) invalidates a phase: measure it once more.
      if (foreignMax(out) > FOREIGN_LIMIT && budget.take()) {
        const waited = await budget.waitQuiet();
        log(
          `  ${t.name} ${spec.key}: ${pct(foreignMax(out))} of a core went to other work; measuring again${waited.quiet ? ` (quiet after ${(waited.ms / 1000).toFixed(1)} s)` : " (machine still busy)"}`,
        );
        const again = await runner.runPhase(t, spec, mock, others(t));
        again.firstAttemptForeign = out.foreign;
        out = foreignMax(again) < foreignMax(out) ? again : { ...out, retryForeign: again.foreign };
        await sleep(PAUSE_BETWEEN_PHASES_MS);
      }
      res[t.name] = out;
    }
    rep.phases[spec.key] = res;
    const f = (t) => (spec.stream ? `ttfc p50 ${res[t].ttfc.p50.toFixed(3)}` : `p50 ${res[t].lat.p50.toFixed(3)} ${res[t].rps.toFixed(0)}/s`);
    const fg = Math.max(...Object.values(res).map(foreignMax));
    log(`  r${r} ${spec.key.padEnd(10)} direct ${f("direct")} | floor ${f("floor")} | subsecond ${f("subsecond")} | other work ≤ ${pct(fg)}`);
  }
  for (const t of [floor, sub]) runner.resume(t.proc);
  if (!options.gatewayAsFloor) {
    try {
      rep.gatewayLogBytesPerRequest =
        statSync(gwProc.outPath).size /
        Math.max(
          1,
          Object.values(rep.phases).reduce((s, ph) => s + (ph.subsecond?.completed ?? 0), 0),
        );
    } catch {}
  }
  await Promise.all([children.stop(floorProc), children.stop(gwProc)]);
  if (!options.keepLogs) rmSync(gwProc.outPath, { force: true });
  rep.seconds = (performance.now() - tRep) / 1000;
  return rep;
}

/** What the "floor" and "subsecond" columns measure in this run, when not the defaults; null otherwise. */
function targetRoles(options) {
  if (!options.otel && !options.baselineDist) return null;
  const floor = options.baselineDist ? `the gateway of ${options.baselineDist}, tracing off` : "the floor proxy";
  return `floor = ${floor}; subsecond = this build${options.otel ? ", exporting every span over OTLP/HTTP to bench/otlp-sink.mjs" : ", tracing off"}`;
}

/**
 * Runs the comparison, prints the report on stdout and writes the JSON to --out. Returns the exit code:
 * 1 when --strict and a check failed, else 0. `deps` are the run's options, children, targets, phase
 * runner and re-measuring budget, with `pinned` and `niceness` for the record.
 */
export async function runComparison(deps) {
  const { root, options, pinned, niceness, children, targets, log } = deps;
  const { quick, repeats, nodeFlags } = options;
  const started = performance.now();
  const cpuLatency = holdCpuLatency(options.pmQos);
  if (!options.gatewayAsFloor && !existsSync(join(root, "dist/main.js")))
    throw new Error("dist/main.js not found: run `npm run build` (or --gateway-as-floor to check the harness)");
  log(
    `subsecond bench: ${quick ? "quick" : "full"}, ${repeats} repeats, pinned=${pinned}, nice ${niceness}, CPU wake-up latency ${cpuLatency}, node ${process.version} ${nodeFlags.join(" ")}`,
  );

  const mock = await targets.startMock();
  const gwConfig = await targets.writeGatewayConfig(mock.url);
  const direct = { name: "direct", url: mock.url, proc: null };

  const reps = [];
  for (let r = 0; r < repeats; r++) {
    const rep = await runRepeat(r, deps, mock, direct);
    reps.push(rep);
    log(`repeat ${r + 1}/${repeats} done in ${rep.seconds.toFixed(1)} s`);
  }

  const rows = aggregate(reps);
  const soak = options.soak ? await runSoak(deps, mock) : null;
  await children.stop(mock);
  const decision = await runDecision(deps);
  const checks = options.baselineDist ? baselineChecks(rows) : acceptance(rows, soak);
  const interference = interferenceOf(reps);
  const roles = targetRoles(options);
  process.stdout.write(reportLines({ quick, repeats, rows, reps, interference, soak, decision, checks, roles }).join("\n") + "\n");

  const result = {
    meta: {
      date: new Date().toISOString(),
      node: process.version,
      nodeFlags,
      cpus: availableParallelism(),
      pinned,
      niceness,
      cpuLatency,
      quick,
      repeats,
      durationsMs: options.durations,
      stream: STREAM,
      shortStream: SHORT,
      freeze: options.freeze,
      gatewayAsFloor: options.gatewayAsFloor,
      floorPipeline: options.floorPipeline,
      otel: options.otel,
      baselineDist: options.baselineDist ?? null,
      gatewayConfig: gwConfig,
      gatewayLogLevel: options.gatewayLogLevel,
      interference,
      git: gitInfo(root),
      seconds: (performance.now() - started) / 1000,
    },
    summary: rows,
    acceptance: checks,
    repeats: reps,
    soak,
    decision,
  };
  mkdirSync(dirname(resolve(options.out)), { recursive: true });
  writeFileSync(resolve(options.out), JSON.stringify(result, null, 2));
  log(`wrote ${resolve(options.out)} (${result.meta.seconds.toFixed(0)} s)`);
  return options.strict && checks.some((c) => c.result === "FAIL") ? 1 : 0;
}
