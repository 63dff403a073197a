// The decision-share timeline: the watched route's decisions per slice of the story, from counter deltas.
import type { TimelineWindow } from "./demo-state.js";
import { NO_COUNTERS, delta, sumBy, total, type GatewayCounters } from "./observe.js";

/** What the timeline needs to know. */
export interface TimelineOptions {
  /** Number of equal slices of the story. */
  readonly windows: number;
  /** Story length, ms. */
  readonly durationMs: number;
  /** The route whose decisions are sliced (label `route` of the counters). */
  readonly route: string;
  /** The brain's measured and predicted p95 TTFT of the followed model now (null when unknown). */
  readonly focus: () => { readonly observedP95Ms: number | null; readonly predictedMs: number | null };
  /** Episodes the simulator plays during [from, to) of the story (context for the reader). */
  readonly scriptedDuring: (fromFraction: number, toFraction: number) => readonly string[];
}

/** Slices closed so far, and how to close more. */
export interface Timeline {
  /**
   * Closes every slice whose end has passed at `nowMs` (ms since the start), and at least the first
   * `through` slices (a boundary timer may fire a fraction of a ms early). The last slice stays open.
   */
  closeDue(counters: GatewayCounters, nowMs: number, through?: number): void;
  /** Closes what is left at the end of the traffic, `endMs` since the start; call once. */
  finish(counters: GatewayCounters, endMs: number): void;
  readonly windows: readonly TimelineWindow[];
}

/** An empty timeline whose first slice starts now. */
export function createTimeline(options: TimelineOptions): Timeline {
  const { windows: count, durationMs, route } = options;
  const windows: TimelineWindow[] = [];
  const boundaryMs = (index: number) => ((index + 1) / count) * durationMs;
  let start = { counters: NO_COUNTERS, atMs: 0, index: 0 };

  const close = (counters: GatewayCounters, endMs: number) => {
    const { index } = start;
    const fromFraction = index / count;
    const toFraction = Math.min((index + 1) / count, endMs / durationMs);
    const where = { route };
    const byModel = delta(sumBy(counters.decisions, "model", where), sumBy(start.counters.decisions, "model", where));
    let decisions = 0;
    for (const n of byModel.values()) decisions += n;
    const countOf = (result: string, at: GatewayCounters) => total(at.target, { route, result });
    const focus = options.focus();
    windows.push({
      fromFraction,
      toFraction,
      startMs: start.atMs,
      endMs,
      decisions,
      byModel,
      met: countOf("met", counters) - countOf("met", start.counters),
      missed: countOf("missed", counters) - countOf("missed", start.counters),
      fallbacks: total(counters.fallbacks, where) - total(start.counters.fallbacks, where),
      focusObservedP95Ms: focus.observedP95Ms,
      focusPredictedMs: focus.predictedMs,
      scripted: options.scriptedDuring(fromFraction, toFraction),
    });
    start = { counters, atMs: endMs, index: index + 1 };
  };

  return {
    closeDue(counters, nowMs, through = 0) {
      while (start.index < count - 1 && (start.index < through || nowMs >= boundaryMs(start.index))) close(counters, boundaryMs(start.index));
    },
    finish(counters, endMs) {
      this.closeDue(counters, endMs);
      // The open slice ends when the traffic stopped; its requests' fallbacks during the drain count in it.
      if (start.index < count && endMs > start.atMs) close(counters, endMs);
    },
    windows,
  };
}
