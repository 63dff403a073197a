// Reading the gateway's GET /metrics (Prometheus text exposition format 0.0.4): counter samples by labels.

/** @typedef {{ name: string, labels: Record<string, string>, value: number }} Sample */

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

/** @typedef {{ samples: Sample[], types: Map<string, string> }} Exposition  samples, and the TYPE declared for each metric name */

/**
 * Parses exposition text: its samples (label values unescaped) and its `# TYPE` lines, so a metric
 * that exists but has no sample yet (a labelled counter never incremented) is still known.
 * @param {string} text
 * @param {readonly string[]} [names]  keep only the samples of these metric names (faster on big pages)
 * @returns {Exposition}
 */
export function parseMetrics(text, names) {
  const samples = [];
  const types = new Map();
  for (const line of text.split("\n")) {
    if (line.startsWith("# TYPE ")) {
      const [name, type] = line.slice(7).split(" ");
      types.set(name, type);
      continue;
    }
    if (line === "" || line.startsWith("#")) continue;
    if (names !== undefined && !names.some((name) => line.startsWith(name) && (line[name.length] === "{" || line[name.length] === " "))) continue;
    const match = SAMPLE.exec(line);
    if (match === null) continue;
    const labels = {};
    for (const [, key, raw] of (match[2] ?? "").matchAll(LABEL)) labels[key] = raw.replace(/\\(.)/g, (_, c) => (c === "n" ? "\n" : c));
    samples.push({ name: match[1], labels, value: Number(match[3]) });
  }
  return { samples, types };
}

/**
 * Sum of the samples of `name` whose labels match `where`, grouped by label `by` (or all under "").
 * @param {readonly Sample[]} samples
 * @param {string} name
 * @param {{ by?: string, where?: Record<string, string> }} [options]
 * @returns {Map<string, number>}
 */
export function sumBy(samples, name, { by, where = {} } = {}) {
  const out = new Map();
  for (const sample of samples) {
    if (sample.name !== name) continue;
    if (Object.entries(where).some(([key, value]) => sample.labels[key] !== value)) continue;
    const key = by === undefined ? "" : (sample.labels[by] ?? "");
    out.set(key, (out.get(key) ?? 0) + sample.value);
  }
  return out;
}

/** Total of the samples of `name` matching `where`. */
export function total(samples, name, where = {}) {
  return sumBy(samples, name, { where }).get("") ?? 0;
}

/**
 * GET /metrics through `dispatcher` (an undici pool on the gateway's origin), parsed.
 * @param {import("undici").Dispatcher} dispatcher
 * @param {readonly string[]} [names]  keep only these metrics
 * @returns {Promise<Exposition>}
 */
export async function scrape(dispatcher, names) {
  const response = await dispatcher.request({ method: "GET", path: "/metrics", headersTimeout: 5000, bodyTimeout: 5000 });
  const text = await response.body.text();
  if (response.statusCode !== 200) throw new Error(`GET /metrics answered ${response.statusCode}`);
  return parseMetrics(text, names);
}
