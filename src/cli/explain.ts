// Renders routing decisions as text for `subsecond explain` and `subsecond check --against`.
import type { LoadedConfig } from "../config/load.js";
import { createBrain, type CandidateRow } from "../router/brain.js";
import { createFakeClock } from "../router/clock.js";
import { createSeededRng } from "../router/rng.js";
import type { RequestProfile, RoutePolicy } from "../router/types.js";

/** A hypothetical request: `promptTokens` in, `maxOutputTokens` out (undefined: the default). */
export function hypotheticalRequest(promptTokens: number, maxOutputTokens: number | undefined): RequestProfile {
  return { promptTokens, maxOutputTokens, needs: new Set(), stream: true };
}

/** The decision table of every route (or one), from the priors: what a freshly started gateway would do. */
export function decisionTables(config: LoadedConfig, request: RequestProfile, routeName?: string): Map<string, CandidateRow[]> {
  const brain = createBrain({ clock: createFakeClock(0), rng: createSeededRng(1), stats: config.config.stats, health: config.config.health });
  brain.sync(config.models, config.config.stats, config.config.health);
  const tables = new Map<string, CandidateRow[]>();
  for (const route of config.routes.values()) {
    if (routeName === undefined || route.name === routeName) tables.set(route.name, brain.snapshot(route, request));
  }
  return tables;
}

const pad = (text: string, width: number) => (text.length >= width ? text : text + " ".repeat(width - text.length));
const padLeft = (text: string, width: number) => (text.length >= width ? text : " ".repeat(width - text.length) + text);

/** A fixed-width table of candidates, the chosen one marked with `→`. */
export function renderTable(route: RoutePolicy, rows: readonly CandidateRow[]): string {
  const header = `route ${route.name}: ${route.strategy}, target p${route.target.percentile} ${route.target.metric} ≤ ${route.target.ms} ms`;
  const idWidth = Math.max(10, ...rows.map((row) => row.id.length)) + 2;
  const lines = [
    header,
    `   ${pad("model", idWidth)}${padLeft("rank", 5)}${padLeft("$in/1M", 9)}${padLeft("$out/1M", 9)}${padLeft("cost/req", 11)}${padLeft("samples", 9)}${padLeft("pred ms", 9)}  ${pad("state", 10)}note`,
  ];
  for (const row of rows) {
    const note = row.wouldChoose ? "chosen" : (row.exclusion ?? "");
    lines.push(
      `${row.wouldChoose ? " → " : "   "}${pad(row.id, idWidth)}${padLeft(String(row.rank), 5)}${padLeft(row.pricePerMTok.input.toFixed(2), 9)}${padLeft(row.pricePerMTok.output.toFixed(2), 9)}${padLeft(`$${row.expectedCostUsd.toFixed(6)}`, 11)}${padLeft(row.samples.toFixed(1), 9)}${padLeft(Math.round(row.predictedMs).toString(), 9)}  ${pad(row.state, 10)}${note}`,
    );
  }
  return lines.join("\n");
}

/** How a chosen row stands against its route's target: "within target" or "best-effort", with its prediction. */
function standing(row: CandidateRow): string {
  return `${row.exclusion === "over-target" ? "best-effort" : "within target"}, predicted ${Math.round(row.predictedMs)} ms`;
}

/**
 * Which model each route would choose, before and after a config change, under the same (prior) statistics;
 * and, when the choice moves between within target and best-effort (new priors, targets), that too.
 */
export function decisionChanges(before: LoadedConfig, after: LoadedConfig, request: RequestProfile): string[] {
  const old = decisionTables(before, request);
  const next = decisionTables(after, request);
  const lines: string[] = [];
  for (const [name, rows] of next) {
    const chosenAfter = rows.find((row) => row.wouldChoose);
    const idAfter = chosenAfter?.id ?? "(none)";
    const previous = old.get(name);
    if (!previous) {
      lines.push(`route ${name}: new; would choose ${idAfter}`);
      continue;
    }
    const chosenBefore = previous.find((row) => row.wouldChoose);
    const idBefore = chosenBefore?.id ?? "(none)";
    const line = idBefore === idAfter ? `route ${name}: still chooses ${idAfter}` : `route ${name}: would choose ${idAfter} (was ${idBefore})`;
    const moved = chosenBefore && chosenAfter && (chosenBefore.exclusion === "over-target") !== (chosenAfter.exclusion === "over-target");
    lines.push(moved ? `${line}: now ${standing(chosenAfter)} (was ${standing(chosenBefore)})` : line);
  }
  return lines;
}
