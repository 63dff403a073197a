// Prints where a V8 .cpuprofile (node --cpu-prof) spent its self time: the top N functions, or the
// same time grouped by file or by package (node_modules/<pkg>, node: internals, the app's own code).
//
//   node bench/profile-top.mjs <file.cpuprofile> [--top 30] [--by function|file|package]
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";

const { values: opts, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    top: { type: "string", default: "30" },
    by: { type: "string", default: "function" },
  },
});
if (positionals.length !== 1 || !["function", "file", "package"].includes(opts.by)) {
  process.stderr.write("usage: node bench/profile-top.mjs <file.cpuprofile> [--top 30] [--by function|file|package]\n");
  process.exit(2);
}

const profile = JSON.parse(readFileSync(positionals[0], "utf8"));
const byId = new Map(profile.nodes.map((n) => [n.id, n]));

// Self time of a node = the sum of the time deltas of the samples that landed in it. (timeDeltas[i]
// is the gap before sample i, so it is attributed to sample i, as Chrome DevTools does.)
const selfUs = new Map();
let totalUs = 0;
for (let i = 0; i < profile.samples.length; i++) {
  const dt = Math.max(0, profile.timeDeltas[i] ?? 0);
  selfUs.set(profile.samples[i], (selfUs.get(profile.samples[i]) ?? 0) + dt);
  totalUs += dt;
}

const cwd = `file://${process.cwd()}/`;
const shortUrl = (url) => (url.startsWith(cwd) ? url.slice(cwd.length) : url.replace(/^file:\/\//, ""));

const V8_BUCKETS = new Set(["(idle)", "(garbage collector)", "(program)", "(root)"]);

function packageOf(url, name) {
  if (V8_BUCKETS.has(name)) return name;
  if (!url) return "(native)";
  if (url.startsWith("node:")) return "node: internals";
  const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (m) return m[1];
  return shortUrl(url).split("/").slice(0, -1).join("/") || shortUrl(url);
}

function keyOf(node) {
  const f = node.callFrame;
  if (opts.by === "package") return packageOf(f.url, f.functionName);
  if (opts.by === "file") return f.url ? shortUrl(f.url) : V8_BUCKETS.has(f.functionName) ? f.functionName : "(native)";
  const name = f.functionName || "(anonymous)";
  return f.url ? `${name}  ${shortUrl(f.url)}:${f.lineNumber + 1}` : name;
}

const groups = new Map();
for (const [id, us] of selfUs) {
  const node = byId.get(id);
  if (!node) continue;
  const k = keyOf(node);
  groups.set(k, (groups.get(k) ?? 0) + us);
}

const rows = [...groups].sort((a, b) => b[1] - a[1]).slice(0, Number(opts.top));
const durationMs = (profile.endTime - profile.startTime) / 1000;
const idleUs = [...selfUs].filter(([id]) => byId.get(id)?.callFrame.functionName === "(idle)").reduce((s, [, us]) => s + us, 0);
process.stdout.write(
  `${positionals[0]}: ${durationMs.toFixed(0)} ms profiled, ${((totalUs - idleUs) / 1000).toFixed(0)} ms not idle, ${profile.samples.length} samples; self time by ${opts.by}\n`,
);
process.stdout.write(`${"self ms".padStart(9)} ${"%".padStart(6)} ${"% busy".padStart(7)}  ${opts.by}\n`);
for (const [k, us] of rows) {
  const busy = k === "(idle)" ? "" : `${((us / Math.max(1, totalUs - idleUs)) * 100).toFixed(1)}`;
  process.stdout.write(`${(us / 1000).toFixed(1).padStart(9)} ${((us / totalUs) * 100).toFixed(1).padStart(6)} ${busy.padStart(7)}  ${k}\n`);
}
