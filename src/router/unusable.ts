// When no candidate of a route is eligible: probe an open circuit at once, or say why the plan is empty.
//
// Candidates that only fail context or capability give an empty plan with
// `excludedBy`. If health is the reason, the route still serves when it can: a candidate whose circuit
// is open (and not cooling) is probed at once — the one that opened earliest — since a 502 from a likely
// broken model beats refusing outright; only when no such probe can be sent (all cooling, or the open
// ones already being probed) is the plan empty, with `retryAfterMs` = the shortest remaining cooldown
// when any candidate is cooling. A merely slow route never gets an empty plan: slowness is never a
// filter, only a prediction.
import type { CandidateTable } from "./candidates.js";
import { reserveProbe } from "./exploration.js";
import type { Decision, Exclusion, RoutePolicy } from "./types.js";

/** The open-circuit row (not cooling, no probe out) whose circuit opened earliest, or -1. */
export function forcedProbe(table: CandidateTable, nowMs: number): number {
  let best = -1;
  let bestOpenedMs = Number.POSITIVE_INFINITY;
  for (let i = 0; i < table.count; i++) {
    const row = table.row(i);
    if (row.exclusion !== "open") continue;
    const health = row.entry.health;
    if (health.probeBusy(nowMs) || health.cooldownRemainingMs(nowMs) > 0) continue;
    if (health.openedAtMs < bestOpenedMs) {
      best = i;
      bestOpenedMs = health.openedAtMs;
    }
  }
  return best;
}

/** The decision when `table` (evaluated for `route`) has no eligible row. */
export function nothingUsable(table: CandidateTable, route: RoutePolicy, outputTokens: number, nowMs: number): Decision {
  const forced = forcedProbe(table, nowMs);
  const base = { route: route.name, reason: "best-effort" as const, atRisk: true, expectedOutputTokens: outputTokens, hedgeAfterMs: undefined };
  if (forced >= 0) {
    const row = table.row(forced);
    row.entry.health.forceHalfOpen(nowMs);
    reserveProbe(row, route, nowMs);
    return { ...base, plan: [row.model], predictedMs: row.predictedMs, retryAfterMs: undefined, probe: true };
  }
  let context = 0;
  let capability = 0;
  let open = 0;
  let shortestCoolMs = Number.POSITIVE_INFINITY;
  for (let i = 0; i < table.count; i++) {
    const row = table.row(i);
    if (row.exclusion === "context") context++;
    else if (row.exclusion === "capability") capability++;
    else {
      const coolMs = row.entry.health.cooldownRemainingMs(nowMs);
      if (coolMs > 0 && coolMs < shortestCoolMs) shortestCoolMs = coolMs;
      if (coolMs === 0) open++;
    }
  }
  const cooling = shortestCoolMs < Number.POSITIVE_INFINITY;
  const excludedBy: Exclusion = cooling ? "cooling" : open > 0 ? "open" : context >= capability ? "context" : "capability";
  return { ...base, plan: [], predictedMs: Number.NaN, retryAfterMs: cooling ? shortestCoolMs : undefined, probe: false, excludedBy };
}
