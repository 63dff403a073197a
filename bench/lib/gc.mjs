// --gc: each proxy alone at c=16 (JSON) under --trace-gc --trace-gc-nvp, in fresh processes taking turns:
// scavenges per 1k requests, bytes promoted to the old generation per request, and full GCs in the window.
// Per-request objects should die young; promotion that grows per request means something keeps them
// alive past their request (docs/performance-log.md, "A Set per request").
import { statSync, openSync, readSync, closeSync } from "node:fs";
import { median } from "./stats.mjs";

/** The text `path` gained since byte `from`. */
function readFrom(path, from) {
  const size = statSync(path).size;
  const buffer = Buffer.alloc(Math.max(0, size - from));
  const fd = openSync(path, "r");
  try {
    readSync(fd, buffer, 0, buffer.length, from);
  } finally {
    closeSync(fd);
  }
  return buffer.toString("utf8");
}

/** Scavenges, full GCs and promoted bytes in `--trace-gc-nvp` output (other lines are ignored). */
export function countGc(text) {
  let scavenges = 0;
  let full = 0;
  let promoted = 0;
  for (const line of text.split("\n")) {
    const kind = /\bgc=(\w+)/.exec(line)?.[1];
    if (kind === undefined) continue;
    if (kind === "s") scavenges++;
    else if (kind === "mc" || kind === "ms") full++;
    promoted += Number(/\bpromoted=(\d+)/.exec(line)?.[1] ?? 0);
  }
  return { scavenges, full, promoted };
}

/** Runs --repeats pairs and prints a line per run and the medians; returns 0. */
export async function runGc({ options, children, targets, runner, log }) {
  const mock = await targets.startMock();
  await targets.writeGatewayConfig(mock.url);
  const flags = ["--trace-gc", "--trace-gc-nvp"];
  const runs = { subsecond: [], floor: [] };
  const label = (name) => (name === "floor" && options.baselineDist ? "baseline" : name);
  for (let repeat = 0; repeat < options.repeats; repeat++) {
    for (const [name, start] of [
      ["subsecond", targets.startGateway],
      ["floor", targets.startFloor],
    ]) {
      const proc = await start(`${name}-gc-${repeat}`, mock.url, flags);
      await targets.sanity(name, proc.url);
      const target = { name, url: proc.url, proc };
      await runner.warmUp(target, mock, [], ["json"]);
      const from = statSync(proc.outPath).size;
      const res = await runner.runPhase(target, { key: "gc", concurrency: 16, body: "json", warm: 0, win: options.profileSeconds * 1000 }, mock, []);
      const gc = countGc(readFrom(proc.outPath, from));
      await children.stop(proc, 20_000);
      const row = {
        rps: res.rps,
        scavengesPer1k: (gc.scavenges * 1000) / res.completed,
        promotedPerReq: gc.promoted / res.completed,
        full: gc.full,
      };
      runs[name].push(row);
      log(
        `  r${repeat} ${label(name).padEnd(9)} ${row.rps.toFixed(0)} req/s | scavenges per 1k requests ${row.scavengesPer1k.toFixed(2)} | promoted per request ${row.promotedPerReq.toFixed(0)} B | full GCs ${row.full}`,
      );
    }
  }
  await children.stop(mock);
  for (const [name, rows] of Object.entries(runs)) {
    const m = (key) => median(rows.map((row) => row[key]));
    log(
      `median ${label(name).padEnd(9)} ${m("rps").toFixed(0)} req/s | scavenges per 1k ${m("scavengesPer1k").toFixed(2)} | promoted per request ${m("promotedPerReq").toFixed(0)} B | full GCs ${m("full")}`,
    );
  }
  return 0;
}
