// The report a comparison run prints on stdout: the summary table, per-repeat throughput, interference,
// driver overhead, soak and decision lines, then the acceptance checks.
import { FOREIGN_LIMIT } from "./interference.mjs";
import { fmtRatio, fmtSigned, pct } from "./output.mjs";
import { median } from "./stats.mjs";

function fmtCell(v, row, col) {
  if (!Number.isFinite(v)) return "-";
  if (row.unit === "req/s") return v.toFixed(0);
  if (row.unit === "n") return v.toFixed(3);
  if (row.unit === "MB") return col === "diff" ? fmtSigned(v, 1) : v.toFixed(1);
  if (col === "direct") return row.added ? `[${v.toFixed(3)}]` : v.toFixed(3);
  return row.added || col === "diff" ? fmtSigned(v) : v.toFixed(3);
}

/** The summary rows as an aligned text table. */
function table(rows) {
  const head = ["metric", "unit", "direct", "floor", "subsecond", "sub-floor", "sub/floor"];
  const body = rows.map((row) => [
    row.label,
    row.unit,
    fmtCell(row.direct, row, "direct"),
    fmtCell(row.floor, row, "floor"),
    fmtCell(row.subsecond, row, "sub"),
    fmtCell(row.diff, row, "diff"),
    fmtRatio(row.ratio),
  ]);
  const w = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells) => cells.map((c, i) => (i < 2 ? c.padEnd(w[i]) : c.padStart(w[i]))).join("  ");
  return [line(head), w.map((n) => "-".repeat(n)).join("  "), ...body.map(line)].join("\n");
}

/** The report's lines; rows without a floor or gateway value (phases not run) are left out of the table. */
export function reportLines({ quick, repeats, rows, reps, interference, soak, decision, checks, roles }) {
  const perRepeat = (phase) =>
    ["floor", "subsecond"].map((t) => `${t} ${reps.map((rep) => rep.phases[phase]?.[t].rps.toFixed(0) ?? "-").join(", ")}`).join("; ");
  const driver = median(reps.map((rep) => rep.phases.c16?.direct.driverMsPerReq * 1000));
  const mockCpu = median(reps.map((rep) => rep.phases.c16?.direct.mockMsPerReq * 1000));
  return [
    "",
    `Subsecond bench (${quick ? "quick" : "full"}): medians over ${repeats} fresh process pairs; latencies in ms; "added" = target − direct of the same repeat; [direct absolute]`,
    ...(roles ? [roles] : []),
    table(rows.filter((x) => Number.isFinite(x.floor) || Number.isFinite(x.subsecond))),
    "",
    `req/s by repeat, c=16 (V8 fast/slow modes show here): ${perRepeat("c16")}`,
    `req/s by repeat, c=64: ${perRepeat("c64")}`,
    ...(interference.busyPhases
      ? [
          `WARNING: other work took > ${pct(FOREIGN_LIMIT)} of a core in ${interference.busyPhases} of ${interference.phases} measured phases (worst ${pct(interference.worst)}): this host was shared, treat the numbers as unreliable`,
        ]
      : [`machine quiet: no measured phase lost more than ${pct(FOREIGN_LIMIT)} of a core to other work`]),
    `driver overhead (core 0): ${driver.toFixed(1)} µs CPU per request in the driver, ${mockCpu.toFixed(1)} µs in the mock (direct, c=16)`,
    ...(reps[0]?.gatewayLogBytesPerRequest ? [`gateway log output: ${reps[0].gatewayLogBytesPerRequest.toFixed(0)} bytes per request`] : []),
    ...(soak
      ? [
          `soak: ${soak.seconds} s, ${soak.rps.toFixed(0)} req/s, ${soak.errors} errors, RSS start ${soak.startMB.toFixed(1)} / peak ${soak.peakMB.toFixed(1)} / end ${soak.endMB.toFixed(1)} MB, slope ${fmtSigned(soak.slopeMBPerMin, 2)} MB/min`,
        ]
      : []),
    `decision: ${JSON.stringify(decision).slice(0, 400)}`,
    "",
    "Acceptance:",
    ...checks.map((c) => `  ${c.result.padEnd(4)}  ${c.name} — ${c.detail}`),
    "",
  ];
}
