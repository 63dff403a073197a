// The routing-decision micro-benchmark (bench/decision.mjs, on the built brain) as a child on core 1.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { tail } from "./children.mjs";

/** The JSON bench/decision.mjs prints, or what went wrong instead; bounded at 30 s (quick) or 120 s. */
export async function runDecision({ root, options, children }) {
  const script = join(root, "bench/decision.mjs");
  if (!existsSync(script)) return { skipped: "bench/decision.mjs not found" };
  const rec = children.spawnPinned("decision", 1, ["bench/decision.mjs"]);
  const deadline = performance.now() + (options.quick ? 30_000 : 120_000);
  while (!rec.exited && performance.now() < deadline) await sleep(50);
  const timedOut = !rec.exited;
  await children.stop(rec);
  const text = readFileSync(rec.outPath, "utf8").trim();
  if (timedOut) return { error: "timed out", stdout: text.slice(-2000) };
  if (rec.child.exitCode !== 0) return { error: `exit ${rec.child.exitCode}`, stderr: tail(rec.errPath), stdout: text.slice(-2000) };
  try {
    return JSON.parse(text);
  } catch {}
  const lines = text.split("\n").reverse();
  for (const l of lines) {
    try {
      return JSON.parse(l);
    } catch {}
  }
  return { raw: text.slice(-4000) };
}
