// From the repeats' raw phase results to the summary rows: per metric, the median over repeats of each
// target's value, "added" values taken against direct within the same repeat.

/** Median of the finite values; NaN when there are none. */
export const median = (xs) => {
  const v = xs.filter(Number.isFinite).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
};
const get = (o, path) => path.split(".").reduce((x, k) => (x == null ? undefined : x[k]), o);

/**
 * Metric rows: `path` inside a phase result; `added` subtracts direct's value of the same repeat;
 * `directPath` is what the direct column shows instead of `path` (the mock's CPU for CPU rows).
 */
const ROWS = [
  { label: "c=1 latency p50, added", phase: "c1", path: "lat.p50", unit: "ms", added: true },
  { label: "c=1 latency p99, added", phase: "c1", path: "lat.p99", unit: "ms", added: true },
  { label: "c=16 latency p50, added", phase: "c16", path: "lat.p50", unit: "ms", added: true },
  { label: "c=16 latency p99, added", phase: "c16", path: "lat.p99", unit: "ms", added: true },
  { label: "c=64 latency p50, added", phase: "c64", path: "lat.p50", unit: "ms", added: true },
  { label: "c=64 latency p99, added", phase: "c64", path: "lat.p99", unit: "ms", added: true },
  { label: "max req/s, c=16", phase: "c16", path: "rps", unit: "req/s" },
  { label: "max req/s, c=64", phase: "c64", path: "rps", unit: "req/s" },
  { label: "CPU per request, c=16", phase: "c16", path: "cpuMsPerReq", unit: "ms", directPath: "mockMsPerReq" },
  { label: "CPU per request, c=64", phase: "c64", path: "cpuMsPerReq", unit: "ms", directPath: "mockMsPerReq" },
  { label: "TTFC p50, added, c=1 (short)", phase: "ttfc_c1", path: "ttfc.p50", unit: "ms", added: true },
  { label: "TTFC p99, added, c=1 (short)", phase: "ttfc_c1", path: "ttfc.p99", unit: "ms", added: true },
  { label: "TTFC p50, added, c=16 (short)", phase: "ttfc_c16", path: "ttfc.p50", unit: "ms", added: true },
  { label: "TTFC p99, added, c=16 (short)", phase: "ttfc_c16", path: "ttfc.p99", unit: "ms", added: true },
  { label: "TTFC p50, added, c=1 (64x20)", phase: "stream_c1", path: "ttfc.p50", unit: "ms", added: true },
  { label: "TTFC p50, added, c=16 (64x20)", phase: "stream_c16", path: "ttfc.p50", unit: "ms", added: true },
  { label: "TTFC p99, added, c=16 (64x20)", phase: "stream_c16", path: "ttfc.p99", unit: "ms", added: true },
  { label: "chunk gap p50, added, c=1", phase: "stream_c1", path: "gaps.p50", unit: "ms", added: true },
  { label: "chunk gap p99, added, c=1", phase: "stream_c1", path: "gaps.p99", unit: "ms", added: true },
  { label: "chunk gap p50, added, c=16", phase: "stream_c16", path: "gaps.p50", unit: "ms", added: true },
  { label: "chunk gap p99, added, c=16", phase: "stream_c16", path: "gaps.p99", unit: "ms", added: true },
  { label: "chunk delay p50, added, c=1", phase: "stream_c1", path: "chunkDelay.p50", unit: "ms", added: true },
  { label: "chunk delay p99, added, c=1", phase: "stream_c1", path: "chunkDelay.p99", unit: "ms", added: true },
  { label: "chunk delay p50, added, c=16", phase: "stream_c16", path: "chunkDelay.p50", unit: "ms", added: true },
  { label: "chunk delay p99, added, c=16", phase: "stream_c16", path: "chunkDelay.p99", unit: "ms", added: true },
  { label: "upstream conns per request, c=16", phase: "c16", path: "upstreamConnsPerReq", unit: "n" },
  { label: "upstream conns per request, stream c=1", phase: "ttfc_c1", path: "upstreamConnsPerReq", unit: "n" },
  { label: "upstream conns per request, stream c=16", phase: "stream_c16", path: "upstreamConnsPerReq", unit: "n" },
  { label: "RSS after start", phase: "start", path: "rssMB", unit: "MB" },
  { label: "peak RSS during c=64", phase: "c64", path: "rssPeakMB", unit: "MB" },
];

/** One summary row per metric, in ROWS' order; a metric whose phase did not run has NaN values. */
export function aggregate(reps) {
  const rows = [];
  for (const row of ROWS) {
    const per = { direct: [], floor: [], subsecond: [] };
    const directAbs = [];
    for (const rep of reps) {
      const ph = rep.phases[row.phase];
      if (!ph) continue;
      const d = get(ph.direct, row.directPath ?? row.path);
      directAbs.push(d);
      for (const t of ["floor", "subsecond"]) {
        const v = get(ph[t], row.path);
        per[t].push(row.added ? v - d : v);
      }
    }
    const floor = median(per.floor);
    const sub = median(per.subsecond);
    rows.push({
      label: row.label,
      unit: row.unit,
      phase: row.phase,
      path: row.path,
      added: Boolean(row.added),
      direct: median(directAbs),
      floor,
      subsecond: sub,
      diff: sub - floor,
      ratio: sub / floor,
      perRepeat: { direct: directAbs, floor: per.floor, subsecond: per.subsecond },
    });
  }
  return rows;
}

/**
 * Whether RSS samples `{ tSec, rssMB }` stayed flat once the heap has sized itself (`settleS` seconds
 * in): the reference is the median of the first 30 s after settling, so that one GC-timed sample does
 * not set it; flat when both the end and a least-squares fit moved by at most 10% from it.
 */
export function rssTrend(samples, settleS) {
  const settled = samples.filter((p) => p.tSec >= settleS);
  const pts = settled.length >= 2 ? settled : samples;
  const startMB = median(pts.filter((p) => p.tSec <= pts[0].tSec + 30).map((p) => p.rssMB));
  const endMB = pts[pts.length - 1].rssMB;
  const peakMB = Math.max(...samples.map((p) => p.rssMB));
  const n = pts.length;
  const mx = pts.reduce((acc, p) => acc + p.tSec, 0) / n;
  const my = pts.reduce((acc, p) => acc + p.rssMB, 0) / n;
  const slope = pts.reduce((acc, p) => acc + (p.tSec - mx) * (p.rssMB - my), 0) / pts.reduce((acc, p) => acc + (p.tSec - mx) ** 2, 0);
  const spanS = pts[pts.length - 1].tSec - pts[0].tSec;
  const fitChangePct = ((slope * spanS) / startMB) * 100;
  const endVsStartPct = ((endMB - startMB) / startMB) * 100;
  const peakVsStartPct = ((Math.max(...pts.map((p) => p.rssMB)) - startMB) / startMB) * 100;
  return {
    startMB,
    peakMB,
    endMB,
    slopeMBPerMin: slope * 60,
    fitChangePct,
    endVsStartPct,
    peakVsStartPct,
    flat: Math.abs(endVsStartPct) <= 10 && Math.abs(fitChangePct) <= 10,
  };
}
