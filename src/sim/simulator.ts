// An OpenAI-compatible HTTP server on node:http that plays the latency story of config/sim-profiles.yaml.
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { once } from "node:events";
import { setTimeout as sleep } from "node:timers/promises";
import type { ModelProfile, SimProfiles } from "./profiles.js";
import { estimatePromptTokens, fillerText, planResponse, type ResponsePlan } from "./plan.js";
import { createSimRng } from "./random.js";
import { phaseAt, storyFraction, type ModelPhase } from "./story.js";

export { phaseAt, storyFraction, episodeIntensity, type ModelPhase, type ResolvedFaults } from "./story.js";

/** Options of `startSimulator`. */
export interface SimulatorOptions {
  readonly profiles: SimProfiles;
  /** Interface to bind. Default `127.0.0.1`. */
  readonly host?: string;
  /** TCP port; 0 (the default) picks a free one. */
  readonly port?: number;
  /** Length of the story, in milliseconds: episode fractions are fractions of this. */
  readonly storyDurationMs: number;
  /** Seed of the simulator's RNG; the same seed and request order give the same answers. Default 1. */
  readonly seed?: number;
  /** `performance.now()` value at which the story starts (fraction 0). Default: when the server starts. */
  readonly startAtMs?: number;
  /** false: no 429, 5xx, hang or cut ever (drift still applies). Default true. */
  readonly faults?: boolean;
  /** Multiplies every simulated delay (not Retry-After); e.g. 0.1 makes tests ten times faster. Default 1. */
  readonly latencyScale?: number;
  /** Largest accepted request body, in bytes. Default 4 MiB. */
  readonly bodyLimitBytes?: number;
}

/** A running simulator. */
export interface Simulator {
  /** OpenAI base URL, e.g. `http://127.0.0.1:41234/v1`. */
  readonly url: string;
  readonly port: number;
  /** Position in the story at `nowMs` (default: now), 0..1. */
  storyFraction(nowMs?: number): number;
  /** How `modelId` behaves at `nowMs` (default: now); undefined for an unknown model. */
  phaseAt(modelId: string, nowMs?: number): ModelPhase | undefined;
  /** Requests still being played (timers pending); drops to 0 soon after clients disconnect. */
  openRequests(): number;
  /** Stops listening, abandons every request in flight and destroys open sockets. */
  close(): Promise<void>;
}

interface ApiError {
  readonly message: string;
  readonly type: string;
  readonly param: string | null;
  readonly code: string | null;
}

/** A request the client sent wrong; answered with `status` in OpenAI's error shape. */
class SimRequestError extends Error {
  constructor(
    readonly status: number,
    readonly body: ApiError,
  ) {
    super(body.message);
    this.name = "SimRequestError";
  }
}

interface ChatRequest {
  readonly model: string;
  readonly stream: boolean;
  readonly includeUsage: boolean;
  readonly maxTokens: number | undefined;
  readonly promptTokens: number;
  /** Words of a trailing assistant message (a prefill) the answer continues; undefined without one. */
  readonly prefillWords: number | undefined;
}

const invalid = (message: string, param: string | null, code: string | null = null): SimRequestError =>
  new SimRequestError(400, { message, type: "invalid_request_error", param, code });

/** A header-safe rendering of a client-chosen name. */
function headerValue(value: string): string {
  return /^[\x20-\x7e]{1,200}$/.test(value) ? value : "-";
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { ...headers, "content-type": "application/json", "content-length": Buffer.byteLength(text) });
  res.end(text);
}

function sendError(res: ServerResponse, status: number, error: ApiError, headers: Record<string, string> = {}): void {
  sendJson(res, status, { error }, headers);
}

async function readBody(req: IncomingMessage, limitBytes: number): Promise<string> {
  const parts: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buffer = typeof chunk === "string" ? Buffer.from(chunk) : (chunk as Buffer);
    size += buffer.length;
    if (size > limitBytes) {
      throw new SimRequestError(413, {
        message: `Request body exceeds ${limitBytes} bytes`,
        type: "invalid_request_error",
        param: null,
        code: "request_too_large",
      });
    }
    parts.push(buffer);
  }
  return Buffer.concat(parts).toString("utf8");
}

function parseChatRequest(text: string): ChatRequest {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw invalid("We could not parse the JSON body of your request.", null, "invalid_json");
  }
  if (typeof body !== "object" || body === null || Array.isArray(body)) throw invalid("The request body must be a JSON object.", null, "invalid_json");
  const fields = body as Record<string, unknown>;
  if (typeof fields.model !== "string" || fields.model === "") throw invalid("`model` must be a non-empty string.", "model");
  if (!Array.isArray(fields.messages)) throw invalid("`messages` must be an array.", "messages");
  const stream = fields.stream === true;
  let maxTokens: number | undefined;
  for (const param of ["max_completion_tokens", "max_tokens"] as const) {
    const value = fields[param];
    if (value === undefined || value === null) continue;
    if (typeof value !== "number" || !Number.isInteger(value) || value < 1) throw invalid(`\`${param}\` must be a positive integer.`, param);
    maxTokens ??= value;
  }
  const streamOptions = fields.stream_options;
  const includeUsage = typeof streamOptions === "object" && streamOptions !== null && (streamOptions as Record<string, unknown>).include_usage === true;
  const last: unknown = fields.messages[fields.messages.length - 1];
  const prefill =
    typeof last === "object" && last !== null && (last as Record<string, unknown>).role === "assistant" ? (last as Record<string, unknown>).content : undefined;
  return {
    model: fields.model,
    stream,
    includeUsage,
    maxTokens,
    promptTokens: estimatePromptTokens(fields.messages),
    prefillWords: typeof prefill === "string" ? prefill.split(" ").filter((word) => word !== "").length : undefined,
  };
}

/** Resolves never; rejects when `signal` aborts (client gone or simulator closing). */
function untilAborted(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => {
    if (signal.aborted) reject(signal.reason);
    else signal.addEventListener("abort", () => reject(signal.reason), { once: true });
  });
}

/**
 * Waits until `performance.now()` reaches `dueAtMs`. Chunks are scheduled against the request's start, not
 * chained sleeps, so timer overshoot does not accumulate; a chunk already due is sent at once (timers have
 * ~1 ms granularity, which would otherwise stretch finely scaled stories).
 */
async function sleepUntil(dueAtMs: number, signal: AbortSignal): Promise<void> {
  signal.throwIfAborted();
  const waitMs = dueAtMs - performance.now();
  if (waitMs >= 1) await sleep(waitMs, undefined, { signal });
}

async function write(res: ServerResponse, text: string, signal: AbortSignal): Promise<void> {
  if (!res.write(text)) await once(res, "drain", { signal });
}

function sseData(value: unknown): string {
  return `data: ${typeof value === "string" ? value : JSON.stringify(value)}\n\n`;
}

/**
 * Starts the simulator and resolves once it listens.
 *
 * Endpoints: `POST /v1/chat/completions` (JSON and SSE, as OpenAI), `GET /v1/models`; anything else is a 404
 * in OpenAI's error shape. Every response carries `x-sim-model` (the requested model, `-` when there is
 * none); answers that reach a model also carry `x-sim-fault` (`none`, `rate-limit`, `server-error`, `hang`,
 * `cut`) and `x-sim-episodes` (active episode names, comma-separated, or empty).
 */
export async function startSimulator(options: SimulatorOptions): Promise<Simulator> {
  const { profiles } = options;
  const host = options.host ?? "127.0.0.1";
  const latencyScale = options.latencyScale ?? 1;
  const faultsOn = options.faults ?? true;
  const bodyLimitBytes = options.bodyLimitBytes ?? 4 * 1024 * 1024;
  if (!(options.storyDurationMs > 0)) throw new RangeError("storyDurationMs must be a positive number of milliseconds");
  if (!(latencyScale > 0)) throw new RangeError("latencyScale must be positive (1 = as profiled)");
  const startAtMs = options.startAtMs ?? performance.now();
  const rng = createSimRng(options.seed ?? 1);
  const models = new Map<string, ModelProfile>(profiles.models.map((m) => [m.id, m]));
  const planOptions = { latencyScale, tokensPerChunk: profiles.story.tokensPerChunk };
  const sockets = new Set<Socket>();
  const inFlight = new Set<AbortController>();
  let nextId = 0;
  let playing = 0;

  const fractionAt = (nowMs: number): number => storyFraction(nowMs - startAtMs, options.storyDurationMs, profiles.story.loop);

  async function chatCompletion(req: IncomingMessage, res: ServerResponse, signal: AbortSignal): Promise<void> {
    const request = parseChatRequest(await readBody(req, bodyLimitBytes));
    res.setHeader("x-sim-model", headerValue(request.model));
    const profile = models.get(request.model);
    if (profile === undefined) {
      throw new SimRequestError(404, {
        message: `The model \`${request.model}\` does not exist or you do not have access to it.`,
        type: "invalid_request_error",
        param: "model",
        code: "model_not_found",
      });
    }
    if (request.prefillWords !== undefined && !profile.prefill) {
      // As providers without prefill answer it (Anthropic's wording): the gateway learns not to ask again.
      throw invalid("This model does not support assistant message prefill. The conversation must end with a user message.", "messages");
    }
    const phase = phaseAt(profiles, profile.id, fractionAt(performance.now()), { faults: faultsOn });
    // One child generator per request: its draws do not depend on how concurrent requests interleave.
    const plan = planResponse(profile, phase, request, createSimRng(rng.uint32()), planOptions);
    res.setHeader("x-sim-fault", plan.fault?.kind ?? "none");
    res.setHeader("x-sim-episodes", phase.episodes.join(","));
    await play(request, plan, res, signal);
  }

  async function play(request: ChatRequest, plan: ResponsePlan, res: ServerResponse, signal: AbortSignal): Promise<void> {
    const startedAtMs = performance.now();
    const fault = plan.fault;
    if (fault?.kind === "rate-limit") {
      await sleep(fault.afterMs, undefined, { signal });
      sendError(
        res,
        429,
        { message: `Rate limit reached for ${request.model} (simulated).`, type: "requests", param: null, code: "rate_limit_exceeded" },
        { "retry-after": String(fault.retryAfterSeconds) },
      );
      return;
    }
    if (fault?.kind === "server-error") {
      await sleep(fault.afterMs, undefined, { signal });
      sendError(res, fault.status, { message: `The upstream failed with ${fault.status} (simulated).`, type: "server_error", param: null, code: null });
      return;
    }
    if (fault?.kind === "hang" && fault.mode === "no-headers") return untilAborted(signal);

    const id = `chatcmpl-sim-${(nextId++).toString(36)}`;
    const created = Math.floor(Date.now() / 1000);
    const usage = { prompt_tokens: request.promptTokens, completion_tokens: plan.completionTokens, total_tokens: request.promptTokens + plan.completionTokens };
    const cutAt = fault?.kind === "cut" ? fault.afterChunks : undefined;
    // A prefilled answer goes on from the words already there, as the filler's next words.
    const offset = request.prefillWords ?? 0;

    if (!request.stream) {
      if (fault?.kind === "hang") {
        res.writeHead(200, { "content-type": "application/json" });
        res.flushHeaders();
        return untilAborted(signal);
      }
      const chunksBeforeEnd = cutAt ?? plan.chunks.length - 1;
      await sleepUntil(startedAtMs + plan.chunks.slice(0, chunksBeforeEnd + 1).reduce((sum, c) => sum + c.delayMs, 0), signal);
      if (cutAt !== undefined) {
        res.socket?.destroy();
        return;
      }
      sendJson(res, 200, {
        id,
        object: "chat.completion",
        created,
        model: request.model,
        choices: [
          {
            index: 0,
            message: { role: "assistant", content: fillerText(offset, plan.completionTokens), refusal: null },
            logprobs: null,
            finish_reason: plan.finishReason,
          },
        ],
        usage,
        system_fingerprint: null,
      });
      return;
    }

    const chunkOf = (delta: Record<string, unknown>, finishReason: string | null): Record<string, unknown> => ({
      id,
      object: "chat.completion.chunk",
      created,
      model: request.model,
      system_fingerprint: null,
      choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }],
    });
    res.writeHead(200, { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache", connection: "keep-alive" });
    await write(res, sseData(chunkOf({ role: "assistant", content: "" }, null)), signal);
    if (fault?.kind === "hang") return untilAborted(signal);
    let sent = offset;
    let index = 0;
    let dueAtMs = startedAtMs;
    for (const chunk of plan.chunks) {
      dueAtMs += chunk.delayMs;
      await sleepUntil(dueAtMs, signal);
      if (index++ === cutAt) {
        res.socket?.destroy();
        return;
      }
      await write(res, sseData(chunkOf({ content: fillerText(sent, chunk.tokens) }, null)), signal);
      sent += chunk.tokens;
    }
    await write(res, sseData(chunkOf({}, plan.finishReason)), signal);
    if (request.includeUsage) {
      await write(res, sseData({ id, object: "chat.completion.chunk", created, model: request.model, system_fingerprint: null, choices: [], usage }), signal);
    }
    res.end(sseData("[DONE]"));
  }

  function listModels(res: ServerResponse): void {
    res.setHeader("x-sim-model", "-");
    sendJson(res, 200, {
      object: "list",
      data: profiles.models.map((m) => ({ id: m.id, object: "model", created: 0, owned_by: m.id.split("/")[0] ?? "simulator" })),
    });
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const controller = new AbortController();
    inFlight.add(controller);
    // "close" fires when the response finished or the connection died first: either way, stop every timer.
    res.on("close", () => {
      controller.abort();
      inFlight.delete(controller);
    });
    res.setHeader("x-sim-model", "-");
    const path = (req.url ?? "/").split("?")[0];
    playing++;
    try {
      if (req.method === "POST" && path === "/v1/chat/completions") await chatCompletion(req, res, controller.signal);
      else if (req.method === "GET" && path === "/v1/models") listModels(res);
      else
        throw new SimRequestError(404, {
          message: `Unknown request URL: ${req.method ?? "?"} ${path ?? "/"}.`,
          type: "invalid_request_error",
          param: null,
          code: "unknown_url",
        });
    } catch (error) {
      if (controller.signal.aborted) return; // the client left or the simulator is closing: nobody to answer
      if (res.headersSent) {
        res.destroy();
      } else if (error instanceof SimRequestError) {
        sendError(res, error.status, error.body);
      } else {
        sendError(res, 500, { message: "Internal simulator error.", type: "server_error", param: null, code: null });
      }
    } finally {
      playing--;
    }
  }

  const server = createServer({ noDelay: true }, (req, res) => void handle(req, res));
  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  server.listen(options.port ?? 0, host);
  await once(server, "listening");
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("the simulator is not listening on a TCP port");
  const urlHost = address.family === "IPv6" ? `[${address.address}]` : address.address;
  let closing: Promise<void> | undefined;

  return {
    url: `http://${urlHost}:${address.port}/v1`,
    port: address.port,
    storyFraction: (nowMs = performance.now()) => fractionAt(nowMs),
    phaseAt: (modelId, nowMs = performance.now()) => (models.has(modelId) ? phaseAt(profiles, modelId, fractionAt(nowMs), { faults: faultsOn }) : undefined),
    openRequests: () => playing,
    close: () => {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const controller of inFlight) controller.abort();
        for (const socket of sockets) socket.destroy();
      });
      return closing;
    },
  };
}
