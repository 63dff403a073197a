// The demo's client traffic: an open-loop, seeded mix of chat requests sent to the gateway with global
// fetch (no SDK, so the demo runs after `npm ci --omit=dev`), each answer read to its end and classified.
import type { Rng } from "../router/types.js";

/** What a request asked for, by the kind of `model` it named. */
export type RequestKind = "route" | "auto" | "pinned" | "free";

/**
 * How one request ended, as the client saw it:
 * - `ok`: 200 JSON with choices, or a stream that ended with `data: [DONE]`;
 * - `http-error`: a non-2xx answer (the gateway's OpenAI-shaped error);
 * - `stream-error-event`: a stream without `[DONE]` whose last event was an in-band `{"error":…}`;
 * - `silent-truncation`: a stream that ended (or broke) without `[DONE]` and without an error event —
 *   a gateway defect: a truncated answer must never look like a success;
 * - `network-error`: no answer at all (connection refused or reset before the status);
 * - `abandoned`: still unanswered when the demo stopped waiting for it.
 */
export type RequestOutcome = "ok" | "http-error" | "stream-error-event" | "silent-truncation" | "network-error" | "abandoned";

/** One planned request of the mix. */
export interface PlannedRequest {
  readonly kind: RequestKind;
  /** The `model` sent: a route, `auto`, or a catalog id. */
  readonly model: string;
  readonly stream: boolean;
  /** Approximate prompt size, in tokens (4 characters each). */
  readonly promptTokens: number;
  readonly maxTokens: number | undefined;
}

/** One answered (or abandoned) request. */
export interface TrafficResult {
  readonly index: number;
  readonly request: PlannedRequest;
  /** When it was sent, ms on the demo's clock (performance.now()). */
  readonly sentAtMs: number;
  readonly finishedAtMs: number;
  readonly outcome: RequestOutcome;
  /** HTTP status; 0 when none arrived. */
  readonly status: number;
  /** `error.code` of an error answer or in-band error event. */
  readonly errorCode: string | undefined;
  /** Response headers `x-subsecond-route`, `-model`, `-attempts`, `-reason`. */
  readonly route: string | undefined;
  readonly servedModel: string | undefined;
  readonly attempts: number;
  readonly reason: string | undefined;
  /** Time to the first content chunk (streams) or to the whole body (JSON), as the client saw it; ms. */
  readonly ttftMs: number | undefined;
}

/** The shape of the traffic. Shares are fractions 0..1; the rest of `routeShare + autoShare + pinnedShare` goes to the free route. */
export interface TrafficMix {
  /** Route most requests name (`realtime-chat`). */
  readonly route: string;
  /** Free route (`realtime-chat-free`). */
  readonly freeRoute: string;
  /** Catalog ids a few requests pin. */
  readonly pinned: readonly string[];
  readonly routeShare: number;
  readonly autoShare: number;
  readonly pinnedShare: number;
  /** Share of streaming requests. */
  readonly streamShare: number;
}

/** The mix `subsecond demo` sends: 80% realtime-chat, 8% auto, 6% pinned, 6% free; 70% streamed. */
export const DEFAULT_MIX: TrafficMix = {
  route: "realtime-chat",
  freeRoute: "realtime-chat-free",
  pinned: ["openai/gpt-4.1-nano", "google/gemini-2.5-flash-lite", "bytedance-seed/seed-1.6-flash"],
  routeShare: 0.8,
  autoShare: 0.08,
  pinnedShare: 0.06,
  streamShare: 0.7,
};

const MAX_TOKENS = [48, 96, 160, 256] as const;

/** Draws one request of the mix: kind, streaming, prompt size (60% short, 30% medium, 10% long) and max_tokens. */
export function planRequest(mix: TrafficMix, rng: Rng): PlannedRequest {
  const pick = rng.next();
  let kind: RequestKind = "free";
  let model = mix.freeRoute;
  if (pick < mix.routeShare) {
    kind = "route";
    model = mix.route;
  } else if (pick < mix.routeShare + mix.autoShare) {
    kind = "auto";
    model = "auto";
  } else if (pick < mix.routeShare + mix.autoShare + mix.pinnedShare && mix.pinned.length > 0) {
    kind = "pinned";
    model = mix.pinned[Math.floor(rng.next() * mix.pinned.length)] ?? mix.route;
  }
  const stream = rng.next() < mix.streamShare;
  const size = rng.next();
  const promptTokens = size < 0.6 ? 20 + Math.floor(rng.next() * 80) : size < 0.9 ? 300 + Math.floor(rng.next() * 500) : 2000 + Math.floor(rng.next() * 2000);
  const maxTokens = rng.next() < 0.4 ? undefined : MAX_TOKENS[Math.floor(rng.next() * MAX_TOKENS.length)];
  return { kind, model, stream, promptTokens, maxTokens };
}

const FILLER = "Explain briefly, for a newcomer, why a gateway should pick the cheapest model that still answers fast. ";

/** The JSON body of a planned request. */
export function requestBody(request: PlannedRequest): Record<string, unknown> {
  const chars = request.promptTokens * 4;
  const content = FILLER.repeat(Math.ceil(chars / FILLER.length)).slice(0, chars);
  return {
    model: request.model,
    messages: [
      { role: "system", content: "You are a helpful assistant." },
      { role: "user", content },
    ],
    ...(request.stream ? { stream: true } : {}),
    ...(request.maxTokens !== undefined ? { max_tokens: request.maxTokens } : {}),
  };
}

/** How a streamed body ended. */
export interface StreamEnd {
  /** `data: [DONE]` arrived. */
  readonly done: boolean;
  /** The last data event was an in-band `{"error": …}`; its code. */
  readonly errorEvent: boolean;
  readonly errorCode: string | undefined;
  /** Milliseconds from `startedAtMs` to the first content chunk; undefined if none. */
  readonly ttftMs: number | undefined;
  /** The body broke (reset) instead of ending. */
  readonly broken: boolean;
}

/** `error.code` of a parsed `{"error": {...}}` payload, or undefined when `payload` is not one. */
function errorCodeOf(payload: unknown): { isError: boolean; code: string | undefined } {
  if (typeof payload !== "object" || payload === null || !("error" in payload)) return { isError: false, code: undefined };
  const error = payload.error;
  const code = typeof error === "object" && error !== null && "code" in error && typeof error.code === "string" ? error.code : undefined;
  return { isError: true, code };
}

function hasContent(payload: unknown): boolean {
  if (typeof payload !== "object" || payload === null || !("choices" in payload) || !Array.isArray(payload.choices)) return false;
  for (const choice of payload.choices as unknown[]) {
    if (typeof choice !== "object" || choice === null || !("delta" in choice)) continue;
    const delta = choice.delta;
    if (typeof delta === "object" && delta !== null && "content" in delta && typeof delta.content === "string" && delta.content.length > 0) return true;
  }
  return false;
}

/**
 * Reads an SSE body to its end (WHATWG "Server-sent events" framing: events end with a blank line,
 * `data:` lines carry the payload) and says how it ended.
 * @param startedAtMs performance.now() when the request was sent, for the first-token time.
 */
export async function readStream(body: ReadableStream<Uint8Array>, startedAtMs: number): Promise<StreamEnd> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  let done = false;
  let lastData: string | undefined;
  let ttftMs: number | undefined;
  let broken = false;
  const onEvent = (event: string) => {
    const data = event
      .split(/\r?\n/)
      .filter((line) => line.startsWith("data:"))
      .map((line) => line.slice(5).trimStart())
      .join("\n");
    if (data === "") return;
    lastData = data;
    if (data === "[DONE]") {
      done = true;
      return;
    }
    if (ttftMs === undefined) {
      try {
        if (hasContent(JSON.parse(data))) ttftMs = performance.now() - startedAtMs;
      } catch {
        // Not JSON: judged at the end, through lastData.
      }
    }
  };
  try {
    for (;;) {
      const { value, done: ended } = await reader.read();
      if (ended) break;
      buffer += decoder.decode(value, { stream: true });
      let boundary: RegExpExecArray | null;
      while ((boundary = /\r?\n\r?\n/.exec(buffer)) !== null) {
        onEvent(buffer.slice(0, boundary.index));
        buffer = buffer.slice(boundary.index + boundary[0].length);
      }
    }
    if (buffer.trim() !== "") onEvent(buffer);
  } catch {
    broken = true;
  }
  let errorEvent = false;
  let errorCode: string | undefined;
  if (!done && lastData !== undefined) {
    try {
      ({ isError: errorEvent, code: errorCode } = errorCodeOf(JSON.parse(lastData)));
    } catch {
      errorEvent = false;
    }
  }
  return { done, errorEvent, errorCode, ttftMs, broken };
}

/** Options of `startTraffic`. */
export interface TrafficOptions {
  /** The gateway's base URL, e.g. `http://127.0.0.1:8080` (no `/v1`). */
  readonly gatewayUrl: string;
  /** Mean arrival rate, requests per second (Poisson arrivals: open loop, like real users). */
  readonly ratePerSecond: number;
  /** Drives arrivals and the request mix; seeded for a reproducible run. */
  readonly rng: Rng;
  readonly mix?: TrafficMix;
  /** A request unanswered after this long is aborted and counted `abandoned`, in ms. Default 30000. */
  readonly requestTimeoutMs?: number;
  /** Arrivals beyond this many requests in flight are skipped (counted), so a stall cannot pile up sockets. Default 400. */
  readonly maxInFlight?: number;
  /** Called once per finished request. */
  readonly onResult: (result: TrafficResult) => void;
}

/** A running traffic generator. */
export interface Traffic {
  /** Requests sent so far. */
  sent(): number;
  inFlight(): number;
  /** Arrivals skipped because `maxInFlight` requests were outstanding. */
  skipped(): number;
  /**
   * Stops sending; waits up to `drainMs` for the requests in flight, then aborts the rest (reported
   * `abandoned`). Resolves when every request has been reported.
   */
  stop(drainMs: number): Promise<void>;
}

function headerNumber(value: string | null): number {
  const parsed = value === null ? Number.NaN : Number(value);
  return Number.isFinite(parsed) ? parsed : 0;
}

async function errorCodeOfBody(response: Response): Promise<string | undefined> {
  try {
    return errorCodeOf(JSON.parse(await response.text())).code;
  } catch {
    return undefined;
  }
}

/** Starts sending traffic at once. */
export function startTraffic(options: TrafficOptions): Traffic {
  const mix = options.mix ?? DEFAULT_MIX;
  const timeoutMs = options.requestTimeoutMs ?? 30_000;
  const maxInFlight = options.maxInFlight ?? 400;
  const url = `${options.gatewayUrl}/v1/chat/completions`;
  const pending = new Map<number, { controller: AbortController; done: Promise<void> }>();
  let sent = 0;
  let skipped = 0;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;

  const send = (index: number, request: PlannedRequest) => {
    const controller = new AbortController();
    const sentAtMs = performance.now();
    const deadline = setTimeout(() => controller.abort(new Error("request timeout")), timeoutMs);
    const done = exchange(index, request, sentAtMs, controller.signal)
      .then(options.onResult)
      .finally(() => {
        clearTimeout(deadline);
        pending.delete(index);
      });
    pending.set(index, { controller, done });
  };

  const exchange = async (index: number, request: PlannedRequest, sentAtMs: number, signal: AbortSignal): Promise<TrafficResult> => {
    const base = { index, request, sentAtMs };
    let response: Response;
    try {
      response = await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json", "x-request-id": `demo-${index}` },
        body: JSON.stringify(requestBody(request)),
        signal,
      });
    } catch {
      const outcome: RequestOutcome = signal.aborted ? "abandoned" : "network-error";
      return {
        ...base,
        finishedAtMs: performance.now(),
        outcome,
        status: 0,
        errorCode: undefined,
        route: undefined,
        servedModel: undefined,
        attempts: 0,
        reason: undefined,
        ttftMs: undefined,
      };
    }
    const headers = {
      route: response.headers.get("x-subsecond-route") ?? undefined,
      servedModel: response.headers.get("x-subsecond-model") ?? undefined,
      attempts: headerNumber(response.headers.get("x-subsecond-attempts")),
      reason: response.headers.get("x-subsecond-reason") ?? undefined,
    };
    if (!response.ok) {
      const errorCode = await errorCodeOfBody(response);
      return { ...base, ...headers, finishedAtMs: performance.now(), outcome: "http-error", status: response.status, errorCode, ttftMs: undefined };
    }
    const isStream = (response.headers.get("content-type") ?? "").includes("text/event-stream");
    if (isStream && response.body !== null) {
      const end = await readStream(response.body, sentAtMs);
      const outcome: RequestOutcome = end.done ? "ok" : end.errorEvent ? "stream-error-event" : signal.aborted ? "abandoned" : "silent-truncation";
      return { ...base, ...headers, finishedAtMs: performance.now(), outcome, status: response.status, errorCode: end.errorCode, ttftMs: end.ttftMs };
    }
    try {
      const body = (await response.json()) as { choices?: unknown };
      const ttftMs = performance.now() - sentAtMs;
      const outcome: RequestOutcome = Array.isArray(body.choices) && body.choices.length > 0 ? "ok" : "silent-truncation";
      return { ...base, ...headers, finishedAtMs: performance.now(), outcome, status: response.status, errorCode: undefined, ttftMs };
    } catch {
      const outcome: RequestOutcome = signal.aborted ? "abandoned" : "silent-truncation";
      return { ...base, ...headers, finishedAtMs: performance.now(), outcome, status: response.status, errorCode: undefined, ttftMs: undefined };
    }
  };

  // Poisson arrivals: exponential gaps drawn from the seeded RNG; every due arrival is sent on wake-up,
  // so timer lateness delays requests a little but never drops them.
  let nextAtMs = performance.now();
  const gapMs = () => (-Math.log(1 - options.rng.next()) * 1000) / options.ratePerSecond;
  const tick = () => {
    if (stopped) return;
    const nowMs = performance.now();
    while (nextAtMs <= nowMs) {
      const request = planRequest(mix, options.rng);
      if (pending.size >= maxInFlight) skipped++;
      else send(sent++, request);
      nextAtMs += gapMs();
    }
    timer = setTimeout(tick, Math.max(1, nextAtMs - performance.now()));
  };
  tick();

  return {
    sent: () => sent,
    inFlight: () => pending.size,
    skipped: () => skipped,
    async stop(drainMs: number): Promise<void> {
      stopped = true;
      clearTimeout(timer);
      const all = () => Promise.all([...pending.values()].map((entry) => entry.done)).then(() => undefined);
      let drainTimer: NodeJS.Timeout | undefined;
      const timedOut = await Promise.race([
        all().then(() => false),
        new Promise<boolean>((resolve) => (drainTimer = setTimeout(() => resolve(true), drainMs))),
      ]);
      clearTimeout(drainTimer);
      if (timedOut) for (const entry of pending.values()) entry.controller.abort(new Error("demo stopped"));
      await all();
    },
  };
}
