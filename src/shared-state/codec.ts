// The wire format of a batch of shared events: compact JSON, one array per event, numbers rounded to
// 0.1 ms. Decoding trusts nothing: a malformed batch or event (another version, a stray publisher on the
// channel) is dropped, never thrown.
import type { SharedAttempt, SharedEvent } from "../router/shared-events.js";
import type { AttemptOutcome } from "../router/types.js";

/** Bumped on an incompatible change; batches of another version are ignored. */
export const WIRE_VERSION = 1;

export interface Batch {
  /** The sending replica, so that it ignores its own echo. */
  readonly replica: string;
  /** Wall-clock time of sending (Date.now(), ms): the age of replayed batches at a warm start. */
  readonly sentAtMs: number;
  readonly events: readonly SharedEvent[];
}

const KIND = { first_token: 0, late: 1, finished: 2, cooling: 3, opened: 4, closed: 5, probe: 6, forgot: 7 } as const;
const OUTCOMES: readonly AttemptOutcome[] = ["ok", "timeout", "error", "rate_limited", "client_error", "superseded"];
const METRICS = ["ttft", "total"] as const;
const TTFT_RECORDED = 1;
const PROBE = 2;

type Wire = Array<string | number | null>;

const round = (value: number): number => Math.round(value * 10) / 10;
const opt = (value: number | undefined): number | null => (value === undefined ? null : round(value));

function encodeAttempt(attempt: SharedAttempt): Wire {
  const flags = (attempt.ttftRecorded ? TTFT_RECORDED : 0) | (attempt.probe ? PROBE : 0);
  return [
    KIND.finished,
    attempt.modelId,
    OUTCOMES.indexOf(attempt.outcome),
    opt(attempt.ttftMs),
    opt(attempt.totalMs),
    opt(attempt.promptTokens),
    opt(attempt.outputTokens),
    opt(attempt.deadlineMs),
    attempt.timeoutMetric === undefined ? null : METRICS.indexOf(attempt.timeoutMetric),
    flags,
    opt(attempt.elapsedMs),
  ];
}

function encodeEvent(event: SharedEvent): Wire {
  switch (event.kind) {
    case "first_token":
      return [KIND.first_token, event.modelId, round(event.ttftMs)];
    case "late":
      return [KIND.late, event.modelId, METRICS.indexOf(event.metric), round(event.elapsedMs)];
    case "finished":
      return encodeAttempt(event.attempt);
    case "cooling":
      return [KIND.cooling, event.modelId, round(event.coolMs)];
    case "opened":
      return [KIND.opened, event.modelId];
    case "closed":
      return [KIND.closed, event.modelId];
    case "probe":
      return [KIND.probe, event.modelId, round(event.leaseMs)];
    case "forgot":
      return [KIND.forgot, event.modelId, round(event.agoMs)];
  }
}

export function encodeBatch(batch: Batch): string {
  return JSON.stringify([WIRE_VERSION, batch.replica, Math.round(batch.sentAtMs), batch.events.map(encodeEvent)]);
}

const isMs = (value: unknown): value is number => typeof value === "number" && Number.isFinite(value) && value >= 0;
/** An optional number field: undefined when null, absent or not a finite non-negative number. */
const field = (value: unknown): number | undefined => (isMs(value) ? value : undefined);

function decodeAttempt(wire: readonly unknown[], modelId: string): SharedAttempt | undefined {
  const outcome = typeof wire[2] === "number" ? OUTCOMES[wire[2]] : undefined;
  if (outcome === undefined) return undefined;
  const flags = typeof wire[9] === "number" ? wire[9] : 0;
  const metric = typeof wire[8] === "number" ? METRICS[wire[8]] : undefined;
  const attempt: { -readonly [K in keyof SharedAttempt]: SharedAttempt[K] } = { modelId, outcome };
  const ttftMs = field(wire[3]);
  const totalMs = field(wire[4]);
  const promptTokens = field(wire[5]);
  const outputTokens = field(wire[6]);
  const deadlineMs = field(wire[7]);
  const elapsedMs = field(wire[10]);
  if (ttftMs !== undefined) attempt.ttftMs = ttftMs;
  if (totalMs !== undefined) attempt.totalMs = totalMs;
  if (promptTokens !== undefined) attempt.promptTokens = promptTokens;
  if (outputTokens !== undefined) attempt.outputTokens = outputTokens;
  if (deadlineMs !== undefined) attempt.deadlineMs = deadlineMs;
  if (metric !== undefined) attempt.timeoutMetric = metric;
  if (elapsedMs !== undefined) attempt.elapsedMs = elapsedMs;
  if (flags & TTFT_RECORDED) attempt.ttftRecorded = true;
  if (flags & PROBE) attempt.probe = true;
  return attempt;
}

function decodeEvent(wire: unknown): SharedEvent | undefined {
  if (!Array.isArray(wire) || typeof wire[1] !== "string") return undefined;
  const modelId = wire[1];
  const value: unknown = wire[2];
  switch (wire[0]) {
    case KIND.first_token:
      return isMs(value) ? { kind: "first_token", modelId, ttftMs: value } : undefined;
    case KIND.late: {
      const metric = typeof value === "number" ? METRICS[value] : undefined;
      return metric !== undefined && isMs(wire[3]) ? { kind: "late", modelId, metric, elapsedMs: wire[3] } : undefined;
    }
    case KIND.finished: {
      const attempt = decodeAttempt(wire, modelId);
      return attempt && { kind: "finished", attempt };
    }
    case KIND.cooling:
      return isMs(value) ? { kind: "cooling", modelId, coolMs: value } : undefined;
    case KIND.opened:
      return { kind: "opened", modelId };
    case KIND.closed:
      return { kind: "closed", modelId };
    case KIND.probe:
      return isMs(value) ? { kind: "probe", modelId, leaseMs: value } : undefined;
    case KIND.forgot:
      return isMs(value) ? { kind: "forgot", modelId, agoMs: value } : undefined;
    default:
      return undefined;
  }
}

/** The batch in `text`, minus events it cannot read; undefined when the envelope itself is unreadable. */
export function decodeBatch(text: string): Batch | undefined {
  let wire: unknown;
  try {
    wire = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!Array.isArray(wire) || wire[0] !== WIRE_VERSION || typeof wire[1] !== "string" || !isMs(wire[2]) || !Array.isArray(wire[3])) return undefined;
  const events: SharedEvent[] = [];
  for (const item of wire[3] as unknown[]) {
    const event = decodeEvent(item);
    if (event !== undefined) events.push(event);
  }
  return { replica: wire[1], sentAtMs: wire[2], events };
}
