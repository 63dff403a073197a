// A cut stream is finished, not abandoned (DESIGN.md "Continuation"): when a stream fails after content
// reached the client and the answer so far is text only, the next candidate of the plan that supports
// prefill continues it from exactly the text already sent. When none can, or the continuation is refused
// or fails, the stream ends with the original in-band error, never as a success.
import { performance } from "node:perf_hooks";
import type { ServerResponse } from "node:http";
import { renderErrorEvent } from "../errors.js";
import type { ContinuationOutcome } from "../metrics/metrics.js";
import type { CatalogModel } from "../router/types.js";
import type { AttemptServed, StreamCut } from "./attempt.js";
import type { ChatRequest } from "./chat-request.js";
import { ContinuationAttempt, chunkOf, type ContinuationResult } from "./continuation-attempt.js";
import type { ChatExchange, ExecutorDeps } from "./executor.js";
import type { RequestPlan } from "./plan.js";
import type { Race } from "./race.js";
import type { AttemptRecord, AttemptRecorder } from "./recorder.js";
import type { Usage } from "./sse.js";
import type { UpstreamProvider } from "./upstream.js";

/** What a continuation needs of the request it finishes. */
export interface ContinuationContext {
  readonly deps: ExecutorDeps;
  readonly exchange: ChatExchange;
  readonly plan: RequestPlan;
  readonly race: Race;
  readonly recorder: AttemptRecorder;
  /** performance.now() at which the request's budget ends. */
  readonly budgetEnd: number;
  /** `server.eventLimitBytes`. */
  readonly eventLimitBytes: number;
}

/** Tokens of text when no provider counted them: ~4 characters each, as the gateway's prompt estimate. */
const estimatedTokens = (text: string): number => Math.ceil(text.length / 4);

/**
 * The request body of a continuation: the client's request for `upstreamModel`, with the text already
 * sent as a trailing assistant message (appended to the client's own trailing assistant message, if it
 * ended with one), usage requested, and the gateway's own members removed.
 */
export function continuationBody(request: ChatRequest, upstreamModel: string, text: string): Buffer {
  const body: Record<string, unknown> = {};
  for (const key in request) if (key !== "models") body[key] = request[key];
  body.model = upstreamModel;
  const messages = request.messages;
  const last = messages[messages.length - 1];
  body.messages =
    last?.role === "assistant" && typeof last.content === "string"
      ? [...messages.slice(0, -1), { ...last, content: last.content + text }]
      : [...messages, { role: "assistant", content: text }];
  body.stream_options = { ...request.stream_options, include_usage: true };
  return Buffer.from(JSON.stringify(body));
}

/**
 * Ends the stream `served` left open: continued on up to `continuation.max` candidates, or closed with
 * the original error. Returns how the request ended.
 */
export async function finishCut(context: ContinuationContext, served: AttemptServed, cut: StreamCut): Promise<AttemptServed> {
  const { exchange, plan, race, recorder } = context;
  const { outgoing, request, profile } = exchange;
  const settings = plan.continuation;
  if (!settings.enabled || race.clientGone) return endWithError(outgoing, served, cut);
  const n = request.n;
  if (cut.structured || cut.text.length === 0 || (n !== undefined && n !== null && n !== 1)) {
    count(context, "ineligible", [served.record.model.id]);
    return endWithError(outgoing, served, cut);
  }
  const id = chunkOf(cut.firstContent ?? Buffer.alloc(0))?.id;
  const streamId = typeof id === "string" ? id : undefined;
  let text = cut.text;
  let usage: Usage = cut.usage ?? { promptTokens: profile.promptTokens, completionTokens: estimatedTokens(text) };
  for (let attempt = 0; attempt < settings.max; attempt++) {
    const next = nextCandidate(context);
    const remainingMs = context.budgetEnd - performance.now();
    if (next === undefined || remainingMs <= 0) {
      count(context, "no_candidate", [served.record.model.id]);
      break;
    }
    const { model, provider } = next;
    race.tried.add(model.id);
    recorder.started(model, false, false, true);
    const result = await new ContinuationAttempt({
      provider,
      body: continuationBody(request, model.upstreamModel, text),
      passHeaders: exchange.passHeaders,
      outgoing,
      streamId,
      firstTokenMs: Math.min(plan.deadlines.firstTokenMs, remainingMs),
      idleMs: plan.deadlines.idleMs,
      eventLimitBytes: context.eventLimitBytes,
      clientWantsUsage: request.stream_options?.include_usage === true,
      usageBefore: usage,
    }).run();
    recorder.attemptFinished(recordOf(model, result));
    switch (result.kind) {
      case "completed":
        count(context, "completed", [served.record.model.id, model.id]);
        return { ...served, outcome: "ok", endedAt: performance.now(), cut: undefined };
      case "cancelled":
        return { ...served, outcome: "cancelled", status: 499, endedAt: performance.now(), cut: undefined };
      case "refused":
        context.deps.brain.prefillRefused(model.id);
        count(context, "refused", [served.record.model.id, model.id]);
        break;
      case "failed":
        count(context, "failed", [served.record.model.id, model.id]);
        break;
      case "cut":
        count(context, "failed", [served.record.model.id, model.id]);
        usage = addUsage(usage, result.usage ?? { promptTokens: profile.promptTokens + estimatedTokens(text), completionTokens: estimatedTokens(result.text) });
        text += result.text;
        break;
    }
  }
  return endWithError(outgoing, served, cut);
}

/** The first candidate of the plan, not yet tried by this request, that may continue a stream now. */
function nextCandidate({ deps, plan, race }: ContinuationContext): { model: CatalogModel; provider: UpstreamProvider } | undefined {
  for (const model of plan.decision.plan) {
    if (race.tried.has(model.id) || !deps.brain.mayContinue(model)) continue;
    const state = deps.brain.state(model.id);
    if (state === "open" || state === "cooling") continue;
    const provider = race.provider(model);
    if (provider !== undefined) return { model, provider };
  }
  return undefined;
}

/** What a continuation attempt teaches the brain and the metrics; a refusal says nothing of the model's health. */
function recordOf(model: CatalogModel, result: ContinuationResult): AttemptRecord {
  const base = { model, probe: false };
  switch (result.kind) {
    case "completed":
      return { ...base, outcome: "ok", ttftMs: result.ttftMs, totalMs: result.totalMs, ...(result.usage ? { usage: result.usage } : {}) };
    case "cancelled":
      return { ...base, outcome: "cancelled" };
    case "refused":
      return { ...base, outcome: "client_error" };
    case "failed": {
      const { outcome } = result.failure;
      return { ...base, outcome, ...(outcome === "timeout" ? { deadlineMs: result.deadlineMs, timeoutMetric: "ttft" as const } : {}) };
    }
    case "cut":
      return result.deadlineMs !== undefined
        ? { ...base, outcome: "timeout", ttftMs: result.ttftMs, deadlineMs: result.deadlineMs, timeoutMetric: "total" }
        : { ...base, outcome: "error", ttftMs: result.ttftMs };
  }
}

function addUsage(a: Usage, b: Usage): Usage {
  return { promptTokens: a.promptTokens + b.promptTokens, completionTokens: a.completionTokens + b.completionTokens };
}

/** How /admin/events words each outcome. */
const CONTINUATION_DETAIL: Readonly<Record<ContinuationOutcome, string>> = {
  completed: "a stream cut mid-answer was finished by another model",
  failed: "the continuation failed; the stream ended with the original error",
  refused: "the model refused the prefill; it is not asked to continue until the next reload",
  no_candidate: "no candidate could continue the cut stream; it ended with the original error",
  ineligible: "the cut stream could not be continued (tool calls, n > 1, or no text yet)",
};

/** Counts an outcome, and tells /admin/events: `models` are the cut one, then the one that continued. */
function count({ deps, plan }: ContinuationContext, outcome: ContinuationOutcome, models: string[]): void {
  deps.bookkeeping.later(() => deps.metrics.continuation(plan.routeLabel, outcome));
  deps.events.add("continuation", { route: plan.routeLabel, models, detail: CONTINUATION_DETAIL[outcome] });
}

/** The original in-band error (after the upstream's own error event, when one cut the stream), no [DONE]. */
function endWithError(outgoing: ServerResponse, served: AttemptServed, cut: StreamCut): AttemptServed {
  if (cut.upstreamEvent !== undefined) outgoing.write(cut.upstreamEvent);
  outgoing.end(renderErrorEvent(cut.error));
  return { ...served, endedAt: performance.now(), cut: undefined };
}
