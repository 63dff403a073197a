// A scripted OpenAI-compatible upstream: a real node:http server on 127.0.0.1:0 that records what it got.
// Scripted per request (`startFakeUpstream(script)`), or per upstream model name (`scriptByModel`).
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { performance } from "node:perf_hooks";

export interface ReceivedRequest {
  readonly method: string;
  /** The request target, e.g. `/v1/chat/completions`. */
  readonly path: string;
  readonly model: string;
  /** The body parsed as JSON; `{}` when it is not JSON (`bodyIsJson` false). */
  readonly body: Record<string, unknown>;
  readonly bodyIsJson: boolean;
  /** The body's bytes as UTF-8 text, exactly as they arrived. */
  readonly raw: string;
  readonly headers: IncomingHttpHeaders;
  /** performance.now() when the whole request had arrived. */
  readonly receivedAt: number;
  /** Set when the gateway closed the connection before the answer was complete. */
  closedEarly: boolean;
  /** Resolves when the request's connection closed (answered or abandoned). */
  readonly closed: Promise<void>;
}

/** One SSE step: a chunk payload (object → `data: JSON`), a raw string, or a pause. */
export type SseStep = Record<string, unknown> | { raw: string } | { pauseMs: number };

export type Behavior =
  | { kind: "json"; body?: Record<string, unknown>; status?: number; delayMs?: number; headers?: Record<string, string> }
  | { kind: "error"; status: number; body?: unknown; headers?: Record<string, string>; delayMs?: number }
  | { kind: "sse"; steps: SseStep[]; end?: "done" | "close" | "cut" | "hang"; headers?: Record<string, string>; headerDelayMs?: number }
  /** Content chunks of `eventBytes` characters (default 16), `gapMs` apart (default as fast as the connection takes them), until the gateway closes. */
  | { kind: "endless"; eventBytes?: number; gapMs?: number }
  /** A 200 JSON answer's headers and its first `bytes` bytes, then nothing more. */
  | { kind: "partial"; bytes: number }
  | { kind: "hang" }
  | { kind: "reset" };

export type Script = (request: ReceivedRequest, index: number) => Behavior;

export interface FakeUpstream {
  readonly url: string;
  readonly requests: ReceivedRequest[];
  /** TCP connections accepted so far. */
  connections(): number;
  /** Requests seen for one model name. */
  forModel(model: string): ReceivedRequest[];
  close(): Promise<void>;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A chat.completion body as OpenAI sends it. */
export function completion(model: string, content: string, usage = { prompt_tokens: 10, completion_tokens: 5 }): Record<string, unknown> {
  return {
    id: "chatcmpl-test",
    object: "chat.completion",
    created: 1,
    model,
    choices: [{ index: 0, message: { role: "assistant", content }, finish_reason: "stop" }],
    usage: { ...usage, total_tokens: usage.prompt_tokens + usage.completion_tokens },
  };
}

/** A chat.completion.chunk with a delta. */
export function chunk(model: string, delta: Record<string, unknown>, finishReason: string | null = null): Record<string, unknown> {
  return { id: "chatcmpl-test", object: "chat.completion.chunk", created: 1, model, choices: [{ index: 0, delta, finish_reason: finishReason }] };
}

export function usageChunk(model: string, prompt = 10, completionTokens = 5): Record<string, unknown> {
  return {
    id: "chatcmpl-test",
    object: "chat.completion.chunk",
    created: 1,
    model,
    choices: [],
    usage: { prompt_tokens: prompt, completion_tokens: completionTokens, total_tokens: prompt + completionTokens },
  };
}

/** A well-behaved stream: role, the words as content chunks paced `gapMs`, finish, usage when asked. */
export function streamOf(model: string, words: string[], gapMs = 0, withUsage = true): SseStep[] {
  const steps: SseStep[] = [chunk(model, { role: "assistant", content: "" })];
  for (const word of words) {
    if (gapMs > 0) steps.push({ pauseMs: gapMs });
    steps.push(chunk(model, { content: word }));
  }
  steps.push(chunk(model, {}, "stop"));
  if (withUsage) steps.push(usageChunk(model, 10, words.length));
  return steps;
}

async function playSse(res: ServerResponse, socket: Socket, behavior: Extract<Behavior, { kind: "sse" }>, received: ReceivedRequest): Promise<void> {
  if (behavior.headerDelayMs) await sleep(behavior.headerDelayMs);
  res.writeHead(200, { "content-type": "text/event-stream", ...behavior.headers });
  res.flushHeaders();
  const wantsUsage = (received.body.stream_options as { include_usage?: boolean } | undefined)?.include_usage === true;
  for (const step of behavior.steps) {
    if (received.closedEarly) return;
    if ("pauseMs" in step && typeof step.pauseMs === "number") {
      await sleep(step.pauseMs);
    } else if ("raw" in step && typeof step.raw === "string") {
      res.write(step.raw);
    } else {
      const payload = step as Record<string, unknown>;
      if (Array.isArray(payload.choices) && payload.choices.length === 0 && payload.usage && !wantsUsage) continue;
      res.write(`data: ${JSON.stringify(payload)}\n\n`);
    }
  }
  switch (behavior.end ?? "done") {
    case "done":
      // The chunked body's end arrives a moment after [DONE], as it often does from real providers.
      res.write("data: [DONE]\n\n");
      await sleep(2);
      res.end();
      break;
    case "close":
      res.end();
      break;
    case "cut":
      // Let the written chunks leave first, then drop the connection mid-stream.
      await sleep(30);
      socket.destroy();
      break;
    case "hang":
      break;
  }
}

/** Streams content forever, waiting for the socket to drain, until the connection closes. */
async function playEndless(res: ServerResponse, behavior: Extract<Behavior, { kind: "endless" }>, received: ReceivedRequest): Promise<void> {
  res.writeHead(200, { "content-type": "text/event-stream" });
  res.write(`data: ${JSON.stringify(chunk(received.model, { role: "assistant", content: "" }))}\n\n`);
  const event = `data: ${JSON.stringify(chunk(received.model, { content: "x".repeat(behavior.eventBytes ?? 16) }))}\n\n`;
  while (!received.closedEarly) {
    if (res.write(event)) {
      if (behavior.gapMs !== undefined) await sleep(behavior.gapMs);
    } else
      await new Promise<void>((resolve) => {
        const go = () => {
          res.off("drain", go);
          res.off("close", go);
          resolve();
        };
        res.on("drain", go);
        res.on("close", go);
      });
  }
}

export async function startFakeUpstream(script: Script): Promise<FakeUpstream> {
  const requests: ReceivedRequest[] = [];
  const sockets = new Set<Socket>();
  let connections = 0;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (data: Buffer) => chunks.push(data));
    req.on("end", () => {
      const raw = Buffer.concat(chunks).toString("utf8");
      let body: Record<string, unknown> = {};
      let bodyIsJson = true;
      try {
        body = JSON.parse(raw) as Record<string, unknown>;
      } catch {
        bodyIsJson = false;
      }
      let markClosed: () => void = () => undefined;
      const closed = new Promise<void>((resolve) => (markClosed = resolve));
      const received: ReceivedRequest = {
        method: req.method ?? "",
        path: req.url ?? "",
        model: String(body.model ?? ""),
        body,
        bodyIsJson,
        raw,
        headers: req.headers,
        receivedAt: performance.now(),
        closedEarly: false,
        closed,
      };
      res.on("close", () => {
        if (!res.writableFinished) received.closedEarly = true;
        markClosed();
      });
      requests.push(received);
      const behavior = script(received, requests.length - 1);
      const respond = async () => {
        switch (behavior.kind) {
          case "json":
            if (behavior.delayMs) await sleep(behavior.delayMs);
            if (received.closedEarly) return;
            res.writeHead(behavior.status ?? 200, { "content-type": "application/json", ...behavior.headers });
            res.end(JSON.stringify(behavior.body ?? completion(received.model, `hello from ${received.model}`)));
            return;
          case "error":
            if (behavior.delayMs) await sleep(behavior.delayMs);
            res.writeHead(behavior.status, { "content-type": typeof behavior.body === "string" ? "text/plain" : "application/json", ...behavior.headers });
            res.end(
              typeof behavior.body === "string"
                ? behavior.body
                : JSON.stringify(behavior.body ?? { error: { message: `status ${behavior.status}`, type: "server_error", code: null } }),
            );
            return;
          case "sse":
            await playSse(res, req.socket, behavior, received);
            return;
          case "endless":
            await playEndless(res, behavior, received);
            return;
          case "partial":
            res.writeHead(200, { "content-type": "application/json" });
            res.write(`{"padding":"${"x".repeat(Math.max(0, behavior.bytes - 13))}`);
            return;
          case "hang":
            return;
          case "reset":
            req.socket.destroy();
            return;
        }
      };
      void respond();
    });
  });
  server.on("connection", (socket) => {
    connections++;
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    requests,
    connections: () => connections,
    forModel: (model) => requests.filter((request) => request.model === model),
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * What the upstream does for one model, with `scriptByModel`:
 * - `ok`: answers after `ttftMs`: JSON, or SSE with a role chunk at once, then `chunks` content chunks
 *   (default 4), finish, and usage when asked; both carry `x-upstream-model`;
 * - `hang`: streams send headers and a role-only chunk, then nothing; non-streams send nothing at all;
 * - `error`: 500 with an OpenAI error body;
 * - `rate_limited`: 429 with `Retry-After` (seconds).
 */
export type ModelBehavior =
  { kind: "ok"; ttftMs: number; chunks?: number } | { kind: "hang" } | { kind: "error" } | { kind: "rate_limited"; retryAfterSeconds: number };

const SCRIPTED_PROMPT_TOKENS = 12;

/** An OpenAI error body (API reference, "Error codes"). */
function openAiError(message: string, type: string): Record<string, unknown> {
  return { error: { message, type, param: null, code: type } };
}

/**
 * A script that looks up each request's upstream model in `behaviors`. Anything but
 * `POST /v1/chat/completions` is a 404, a body that is not JSON a 400, and a model not listed a 404
 * `model_not_found`, as OpenAI answers them.
 */
export function scriptByModel(behaviors: Readonly<Record<string, ModelBehavior>>): Script {
  return (request): Behavior => {
    if (request.method !== "POST" || request.path !== "/v1/chat/completions")
      return { kind: "error", status: 404, body: openAiError(`no route ${request.method} ${request.path}`, "not_found") };
    if (!request.bodyIsJson) return { kind: "error", status: 400, body: openAiError("body is not JSON", "invalid_request_error") };
    const model = request.model;
    const behavior = behaviors[model];
    if (behavior === undefined) return { kind: "error", status: 404, body: openAiError(`The model ${model} does not exist`, "model_not_found") };
    const stream = request.body.stream === true;
    switch (behavior.kind) {
      case "error":
        return { kind: "error", status: 500, body: openAiError("upstream exploded (scripted)", "server_error") };
      case "rate_limited":
        return {
          kind: "error",
          status: 429,
          headers: { "retry-after": String(behavior.retryAfterSeconds) },
          body: openAiError("rate limited (scripted)", "rate_limit_exceeded"),
        };
      case "hang":
        // Held until the gateway gives up and closes the connection.
        return stream ? { kind: "sse", headers: { "cache-control": "no-cache" }, steps: [chunk(model, { role: "assistant" })], end: "hang" } : { kind: "hang" };
      case "ok": {
        const words = Array.from({ length: behavior.chunks ?? 4 }, (_, i) => `w${i} `);
        const headers = { "x-upstream-model": model };
        if (!stream) {
          const usage = { prompt_tokens: SCRIPTED_PROMPT_TOKENS, completion_tokens: words.length };
          return { kind: "json", delayMs: behavior.ttftMs, headers, body: completion(model, words.join(""), usage) };
        }
        const steps: SseStep[] = [
          chunk(model, { role: "assistant", content: "" }),
          { pauseMs: behavior.ttftMs },
          ...words.map((word) => chunk(model, { content: word })),
          chunk(model, {}, "stop"),
          usageChunk(model, SCRIPTED_PROMPT_TOKENS, words.length),
        ];
        return { kind: "sse", headers: { "cache-control": "no-cache", ...headers }, steps };
      }
    }
  };
}
