// The bench's client traffic: a seeded open-loop plan of streaming chat requests, sent to the gateway
// with undici (lighter than fetch on a shared 2-core host), each timed client-side to its first content
// delta; the SSE body is read as OpenAI streams it (WHATWG server-sent events, `data:` lines).
import { setMaxListeners } from "node:events";
import { setTimeout as sleep } from "node:timers/promises";

/**
 * @typedef {object} PlannedRequest
 * @property {number} index
 * @property {number} atMs          send time, ms after the traffic starts
 * @property {number} promptTokens  prompt size as the simulator counts it (characters / 4)
 * @property {number | undefined} maxTokens
 */

const MAX_TOKENS = [48, 96, 160, 256];

/**
 * The whole run's requests, drawn up front from `rng` (a dist/sim SimRng): Poisson arrivals at
 * `ratePerSecond` for `durationMs`; prompts 60% short (20–99 tokens), 30% medium (300–799), 10% long
 * (2000–3999); max_tokens absent for 30%, else 48, 96, 160 or 256.
 * @param {{ next(): number }} rng
 * @param {{ ratePerSecond: number, durationMs: number }} shape
 * @returns {PlannedRequest[]}
 */
export function planTraffic(rng, { ratePerSecond, durationMs }) {
  const gapMs = () => (-Math.log(1 - rng.next()) * 1000) / ratePerSecond;
  const plan = [];
  for (let atMs = gapMs(); atMs < durationMs; atMs += gapMs()) {
    const size = rng.next();
    const promptTokens = size < 0.6 ? 20 + Math.floor(rng.next() * 80) : size < 0.9 ? 300 + Math.floor(rng.next() * 500) : 2000 + Math.floor(rng.next() * 2000);
    const maxTokens = rng.next() < 0.3 ? undefined : MAX_TOKENS[Math.floor(rng.next() * MAX_TOKENS.length)];
    plan.push({ index: plan.length, atMs, promptTokens, maxTokens });
  }
  return plan;
}

const FILLER = "Explain briefly, for a newcomer, why a gateway should pick the cheapest model that still answers fast. ";

/** One user message of exactly 4 × promptTokens characters, so the simulator counts promptTokens. */
function messagesFor(request) {
  const chars = request.promptTokens * 4;
  const head = `Request ${request.index}. `;
  return [{ role: "user", content: (head + FILLER.repeat(Math.ceil(chars / FILLER.length) + 1)).slice(0, chars) }];
}

/**
 * @typedef {object} RequestRecord  One request as the client saw it.
 * @property {PlannedRequest} request
 * @property {number} sentAtMs       performance.now() when it was sent
 * @property {number | null} ttftMs  send → first chunk with non-empty delta.content; null if none came
 * @property {boolean} ok            the stream had a finish_reason, then [DONE], and no error event
 * @property {number} status         HTTP status; 0 when none arrived
 * @property {string | null} error   when not ok: http-<status>[:code], stream-error[:code], truncated,
 *   abandoned (aborted by the drain bound), not-sent, or the transport error's code
 * @property {string | null} servedModel  x-subsecond-model
 * @property {number} attempts       x-subsecond-attempts
 * @property {string | null} reason  x-subsecond-reason
 * @property {boolean} hedged        x-subsecond-hedged: 1
 * @property {{ prompt: number, completion: number } | null} usage
 */

/** What a chat.completion.chunk tells the client: content, a finish_reason, usage, or an in-band error. */
function readChunk(record, state, data) {
  if (data === "[DONE]") {
    state.done = true;
    return;
  }
  const payload = JSON.parse(data);
  if (payload.error !== undefined) {
    state.error = `stream-error${payload.error?.code ? `:${payload.error.code}` : ""}`;
    return;
  }
  const choice = payload.choices?.[0];
  if (record.ttftMs === null && typeof choice?.delta?.content === "string" && choice.delta.content !== "") record.ttftMs = performance.now() - record.sentAtMs;
  if (choice?.finish_reason) state.finished = true;
  if (payload.usage) record.usage = { prompt: payload.usage.prompt_tokens, completion: payload.usage.completion_tokens };
}

/** `error.code` of an OpenAI-shaped error body, or "" when it has none. */
function errorCodeOf(text) {
  try {
    return JSON.parse(text).error?.code ?? "";
  } catch {
    return "";
  }
}

/** Sends one request and reads its stream to the end; never rejects (failures are in the record). */
async function exchange(dispatcher, route, request, signal) {
  const body = JSON.stringify({
    model: route,
    messages: messagesFor(request),
    stream: true,
    stream_options: { include_usage: true },
    ...(request.maxTokens !== undefined ? { max_tokens: request.maxTokens } : {}),
  });
  const sentAtMs = performance.now();
  const record = {
    request,
    sentAtMs,
    ttftMs: null,
    ok: false,
    status: 0,
    error: null,
    servedModel: null,
    attempts: 0,
    reason: null,
    hedged: false,
    usage: null,
  };
  const state = { done: false, finished: false, error: null };
  try {
    const response = await dispatcher.request({
      method: "POST",
      path: "/v1/chat/completions",
      headers: { "content-type": "application/json" },
      body,
      signal,
    });
    const header = (name) => {
      const value = response.headers[name];
      return typeof value === "string" ? value : null;
    };
    record.status = response.statusCode;
    record.servedModel = header("x-subsecond-model");
    record.attempts = Number(header("x-subsecond-attempts") ?? 0) || 0;
    record.reason = header("x-subsecond-reason");
    record.hedged = header("x-subsecond-hedged") === "1";
    if (response.statusCode !== 200) {
      const code = errorCodeOf(await response.body.text());
      record.error = `http-${response.statusCode}${code ? `:${code}` : ""}`;
      return record;
    }
    response.body.setEncoding("utf8");
    let buffer = "";
    for await (const text of response.body) {
      buffer += text;
      let end;
      while ((end = buffer.indexOf("\n\n")) !== -1) {
        const event = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = event
          .split("\n")
          .filter((line) => line.startsWith("data:"))
          .map((line) => line.slice(5).trimStart())
          .join("\n");
        if (data !== "") readChunk(record, state, data);
      }
    }
    record.ok = state.done && state.finished && state.error === null;
    if (!record.ok) record.error = state.error ?? "truncated";
  } catch (error) {
    record.error = signal.aborted ? "abandoned" : (state.error ?? `${error?.code ?? error?.name ?? "error"}`);
  }
  return record;
}

/** The record of a request the run never sent (it was stopped first). */
function unsent(request) {
  return {
    request,
    sentAtMs: Number.NaN,
    ttftMs: null,
    ok: false,
    status: 0,
    error: "not-sent",
    servedModel: null,
    attempts: 0,
    reason: null,
    hedged: false,
    usage: null,
  };
}

/**
 * Sends `plan` open loop from `startAtMs` (performance.now() clock): each request at its own time,
 * whatever the others are doing (a late timer delays a request, never drops it). Requests still
 * unanswered `drainMs` after the last send are aborted; `signal` aborts everything at once.
 * @param {{ dispatcher: import("undici").Dispatcher, route: string, plan: readonly PlannedRequest[], startAtMs: number, drainMs: number, signal?: AbortSignal }} options
 *   `dispatcher`: an undici Pool on the gateway's origin
 * @returns {Promise<RequestRecord[]>} one record per planned request, in plan order
 */
export async function sendTraffic({ dispatcher, route, plan, startAtMs, drainMs, signal }) {
  const controller = new AbortController();
  // Every request in flight listens on this one signal.
  setMaxListeners(0, controller.signal);
  const stopAll = () => controller.abort();
  signal?.addEventListener("abort", stopAll, { once: true });
  const pending = [];
  try {
    for (const request of plan) {
      const waitMs = startAtMs + request.atMs - performance.now();
      if (waitMs >= 1) await sleep(waitMs, undefined, { signal: controller.signal }).catch(() => undefined);
      pending.push(controller.signal.aborted ? unsent(request) : exchange(dispatcher, route, request, controller.signal));
    }
    const drainTimer = setTimeout(stopAll, drainMs);
    const records = await Promise.all(pending);
    clearTimeout(drainTimer);
    return records;
  } finally {
    signal?.removeEventListener("abort", stopAll);
  }
}
