// Medians over seeds, and the table the bench prints.

/**
 * Median of numbers; `null` values are skipped, or, with `nullIsNever`, count as +∞ (a leave or return
 * that never happened), and a median of +∞ is reported as null.
 * @param {readonly (number | null)[]} values
 */
export function median(values, { nullIsNever = false } = {}) {
  const numbers = values.map((value) => (value === null ? (nullIsNever ? Number.POSITIVE_INFINITY : null) : value)).filter((value) => value !== null);
  if (numbers.length === 0) return null;
  numbers.sort((a, b) => a - b);
  const middle = numbers.length / 2;
  const value = Number.isInteger(middle) ? (numbers[middle - 1] + numbers[middle]) / 2 : numbers[Math.floor(middle)];
  return Number.isFinite(value) ? value : null;
}

/**
 * The median figures of one scenario's runs (one per seed).
 * @param {readonly ReturnType<typeof import("./score.mjs").scoreRun>[]} runs
 */
export function medianFigures(runs) {
  const of = (pick, options) => median(runs.map(pick), options);
  const degraded = runs.every((run) => run.degradation !== null);
  return {
    attainment: {
      gateway: of((run) => run.attainment.gateway),
      oracle: of((run) => run.attainment.oracle),
      fastest: of((run) => run.attainment.fastest),
      cheapest: of((run) => run.attainment.cheapest),
    },
    costRatio: {
      gateway: of((run) => run.costRatio.gateway),
      fastest: of((run) => run.costRatio.fastest),
      cheapest: of((run) => run.costRatio.cheapest),
    },
    extraAttemptsPer100: of((run) => run.extraAttemptsPer100),
    hedgesMetric: runs.some((run) => run.hedgesMetric),
    hedges: Object.fromEntries(Object.keys(runs[0]?.hedges ?? {}).map((outcome) => [outcome, of((run) => run.hedges[outcome])])),
    failedShare: of((run) => (run.requests.sent > 0 ? run.requests.failed / run.requests.sent : null)),
    clientTtftMs: { p50: of((run) => run.clientTtftMs.p50), p95: of((run) => run.clientTtftMs.p95) },
    degradation: degraded
      ? {
          leaveSeconds: of((run) => run.degradation.leaveSeconds, { nullIsNever: true }),
          returnSeconds: of((run) => run.degradation.returnSeconds, { nullIsNever: true }),
          shareBefore: of((run) => run.degradation.shareBefore),
          shareDuring: of((run) => run.degradation.shareDuring),
        }
      : null,
  };
}

const percent = (value) => (value === null ? "-" : `${(value * 100).toFixed(1)}%`);
const fixed = (digits) => (value) => (value === null ? "-" : value.toFixed(digits));
const seconds = (value, applies) => (!applies ? "-" : value === null ? "never" : value.toFixed(1));

/**
 * The table of medians, one row per scenario, with a line of group titles above the column names.
 * "on it": the degraded model's share of the route's decisions during its degradation.
 * @param {readonly { name: string, seeds: number[], median: ReturnType<typeof medianFigures> }[]} scenarios
 * @param {{ percentile: number, ms: number }} target
 * @returns {string}
 */
export function renderTable(scenarios, target) {
  const names = [
    "scenario",
    "seeds",
    "gateway",
    "oracle",
    "fastest",
    "cheapest",
    "gateway",
    "fastest",
    "cheapest",
    "extra/100",
    "hedges w/l/f/ob",
    "leave s",
    "return s",
    "on it",
    "failed",
  ];
  const groups = [
    { from: 2, to: 5, title: `attainment (TTFT ≤ ${target.ms} ms)` },
    { from: 6, to: 8, title: "cost ÷ oracle" },
  ];
  const rows = scenarios.map(({ name, seeds, median: m }) => [
    name,
    seeds.join(","),
    percent(m.attainment.gateway),
    percent(m.attainment.oracle),
    percent(m.attainment.fastest),
    percent(m.attainment.cheapest),
    fixed(2)(m.costRatio.gateway),
    fixed(2)(m.costRatio.fastest),
    fixed(2)(m.costRatio.cheapest),
    fixed(1)(m.extraAttemptsPer100),
    m.hedgesMetric ? ["won", "lost", "failed", "over_budget"].map((outcome) => fixed(0)(m.hedges[outcome])).join("/") : "n/a",
    seconds(m.degradation?.leaveSeconds ?? null, m.degradation !== null),
    seconds(m.degradation?.returnSeconds ?? null, m.degradation !== null),
    percent(m.degradation?.shareDuring ?? null),
    percent(m.failedShare),
  ]);
  const widths = names.map((name, column) => Math.max(name.length, ...rows.map((row) => row[column].length)));
  for (const group of groups) {
    const span = widths.slice(group.from, group.to + 1).reduce((sum, width) => sum + width, 0) + 2 * (group.to - group.from);
    if (group.title.length > span) widths[group.to] += group.title.length - span;
  }
  const line = (row) =>
    row
      .map((cell, column) => (column < 2 ? cell.padEnd(widths[column]) : cell.padStart(widths[column])))
      .join("  ")
      .trimEnd();
  const startOf = (column) => widths.slice(0, column).reduce((sum, width) => sum + width + 2, 0);
  let titles = "";
  for (const group of groups) {
    const span = startOf(group.to + 1) - 2 - startOf(group.from);
    titles = titles.padEnd(startOf(group.from)) + group.title.padStart(Math.floor((span + group.title.length) / 2)).padEnd(span, " ");
  }
  return [titles.trimEnd(), line(names), ...rows.map(line)].join("\n");
}
