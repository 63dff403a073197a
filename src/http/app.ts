// The HTTP surface: OpenAI-compatible endpoints, probes, metrics and admin. Chat completions go straight
// from node:http to their handler; every other endpoint is a hono route on @hono/node-server.
import { createHash, randomUUID } from "node:crypto";
import { performance } from "node:perf_hooks";
import type { IncomingMessage, RequestListener, ServerResponse } from "node:http";
import { Hono, type Context } from "hono";
import { getRequestListener, type HttpBindings } from "@hono/node-server";
import type { Logger } from "pino";
import { LRUCache } from "lru-cache";
import { GatewayError } from "./errors.js";
import type { GatewayMetrics } from "../metrics/metrics.js";
import { NO_MODEL } from "../metrics/metrics.js";
import type { Brain } from "../router/brain.js";
import type { Decision, RequestProfile } from "../router/types.js";
import { executeChat, type Runtime, type RequestLog } from "../proxy/executor.js";
import type { Bookkeeping } from "../proxy/bookkeeping.js";
import { parseChatRequest, profileRequest, type ChatRequest, type TokenEstimator } from "../proxy/chat-request.js";

/** Outcome of a reload request, as `POST /admin/reload` reports it. */
export interface ReloadResult {
  readonly ok: boolean;
  readonly hash: string;
  readonly errors: readonly string[];
}

/** Everything the app needs, passed in so a test can build one app per test. */
export interface AppDeps {
  /** The current config and connections; read once per request, swapped whole on reload. */
  readonly runtime: () => Runtime;
  readonly brain: Brain;
  readonly metrics: GatewayMetrics;
  /** Served requests' metrics and access-log lines, run a moment after the response. */
  readonly bookkeeping: Bookkeeping;
  readonly logger: Logger;
  readonly estimateTokens: TokenEstimator;
  /** sha256 hex digests of accepted client keys; empty = open gateway. */
  readonly clientKeys: () => ReadonlySet<string>;
  /** sha256 hex digests of admin keys; empty = admin only when the gateway is open. */
  readonly adminKeys: () => ReadonlySet<string>;
  /** False while draining or when the loaded config cannot serve. */
  readonly ready: () => { ready: boolean; reason?: string };
  readonly reload: () => Promise<ReloadResult>;
  /** When the catalog was last refreshed from `catalog.refreshUrl`; undefined when it never was. */
  readonly catalogRefreshedAt?: () => Date | undefined;
}

type Env = { Bindings: HttpBindings };

/** Request ids we accept from clients: short and printable, so logs stay clean. */
const REQUEST_ID = /^[\w.:-]{1,128}$/;
const CHAT_PATH = "/v1/chat/completions";

/** The chat completions path, with or without a query string (which the gateway ignores, as hono does). */
function isChatPath(url: string | undefined): boolean {
  return url !== undefined && url.startsWith(CHAT_PATH) && (url.length === CHAT_PATH.length || url.charCodeAt(CHAT_PATH.length) === 63);
}

/** Client headers propagated to providers (DESIGN.md "Headers"); everything else stays here. */
const PROPAGATED = ["traceparent", "tracestate"] as const;

export function hashKey(key: string): string {
  return createHash("sha256").update(key).digest("hex");
}

function requestIdOf(incoming: IncomingMessage): string {
  const given = incoming.headers["x-request-id"];
  return typeof given === "string" && REQUEST_ID.test(given) ? given : randomUUID();
}

function errorHeaders(error: GatewayError, requestId: string): Record<string, string> {
  return { "content-type": "application/json", "x-request-id": requestId, ...error.responseHeaders() };
}

function errorResponse(error: GatewayError, requestId: string): Response {
  return new Response(JSON.stringify(error.body()), { status: error.status, headers: errorHeaders(error, requestId) });
}

/** Sends an error from the chat handler, which writes to node:http's response itself. */
function writeError(outgoing: ServerResponse, error: GatewayError, requestId: string): void {
  if (outgoing.headersSent) {
    outgoing.destroy();
    return;
  }
  const body = JSON.stringify(error.body());
  outgoing.writeHead(error.status, { ...errorHeaders(error, requestId), "content-length": Buffer.byteLength(body) });
  outgoing.end(body);
}

function jsonResponse(body: unknown, requestId: string, status = 200): Response {
  return new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json", "x-request-id": requestId } });
}

function bearerToken(incoming: IncomingMessage): string | undefined {
  const header = incoming.headers.authorization;
  if (typeof header !== "string" || header.length < 8 || header.slice(0, 7).toLowerCase() !== "bearer ") return undefined;
  const token = header.slice(7).trim();
  return token === "" ? undefined : token;
}

/** Reads the request body from the socket, enforcing the limit (413) without buffering past it. */
async function readRequestBody(incoming: IncomingMessage, limitBytes: number): Promise<Buffer> {
  const declared = Number(incoming.headers["content-length"]);
  if (declared > limitBytes) {
    throw new GatewayError(413, `Request body of ${declared} bytes exceeds the limit of ${limitBytes} bytes.`, { code: "request_too_large" });
  }
  // The handler runs while Node's parser is still on the headers; one microtask later a small body that
  // came in the same packet is buffered whole. Take it then, rather than waiting turns for 'data' and 'end'.
  await undefined;
  if (declared > 0 && incoming.readableLength === declared) {
    const body: unknown = incoming.read();
    if (Buffer.isBuffer(body)) {
      // The parser has not marked the message complete yet, and a paused stream would then never emit
      // 'end' or 'close'. Flowing, it ends as soon as the parser gets there.
      incoming.resume();
      return body;
    }
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limitBytes) {
        cleanup();
        incoming.resume();
        reject(new GatewayError(413, `Request body exceeds the limit of ${limitBytes} bytes.`, { code: "request_too_large" }));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      cleanup();
      resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size));
    };
    const onError = (error: Error) => {
      cleanup();
      reject(error);
    };
    const cleanup = () => {
      incoming.off("data", onData);
      incoming.off("end", onEnd);
      incoming.off("error", onError);
    };
    incoming.on("data", onData);
    incoming.on("end", onEnd);
    incoming.on("error", onError);
  });
}

/** Builds the gateway's request listener from explicit dependencies. */
export function createRequestListener(deps: AppDeps): RequestListener {
  const app = new Hono<Env>();
  const { logger, metrics, brain, bookkeeping } = deps;

  const accessLog = (method: string, path: string, requestId: string, startedAt: number, status: number, extra?: RequestLog, endedAt = performance.now()) => {
    logger.info({ reqId: requestId, method, path, status, durationMs: Math.round((endedAt - startedAt) * 100) / 100, ...extra }, "request");
  };

  // Tokens already found valid for the current key set, so the hot path hashes a client's key once,
  // not per request. Bounded; only valid tokens enter; a reload that changes the keys starts it afresh.
  let acceptedFor: ReadonlySet<string> | undefined;
  const accepted = new LRUCache<string, true>({ max: 1024 });

  /** Checks the client key; throws 401. */
  const authenticate = (incoming: IncomingMessage) => {
    const keys = deps.clientKeys();
    if (keys.size === 0) return;
    const token = bearerToken(incoming);
    if (token === undefined) {
      throw new GatewayError(401, "Missing API key: send `Authorization: Bearer <gateway key>`.", { code: "missing_api_key" });
    }
    if (acceptedFor !== keys) {
      accepted.clear();
      acceptedFor = keys;
    }
    if (accepted.has(token)) return;
    if (!keys.has(hashKey(token))) throw new GatewayError(401, "Incorrect API key provided.", { code: "invalid_api_key" });
    accepted.set(token, true);
  };

  const authenticateAdmin = (incoming: IncomingMessage) => {
    const keys = deps.adminKeys();
    if (keys.size === 0) {
      if (deps.clientKeys().size === 0) return;
      throw new GatewayError(403, "Admin endpoints are disabled: no admin keys are configured (auth.adminKeysEnv).", { code: "admin_disabled" });
    }
    const token = bearerToken(incoming);
    if (token === undefined || !keys.has(hashKey(token))) {
      throw new GatewayError(401, "An admin key is required: send `Authorization: Bearer <admin key>`.", { code: "invalid_api_key" });
    }
  };

  /** Any error as a GatewayError to answer with; unknown errors are logged, never echoed. */
  const toGatewayError = (error: unknown, requestId: string): GatewayError => {
    if (error instanceof GatewayError) return error;
    logger.error({ reqId: requestId, err: error }, "unhandled error");
    return new GatewayError(500, "Internal error in the gateway.", { type: "server_error", code: "internal_error" });
  };

  const decide = (runtime: Runtime, request: ChatRequest, profile: RequestProfile): Decision => {
    const { config } = runtime;
    const name = request.model === "auto" ? config.defaultRoute : request.model;
    const route = config.routes.get(name);
    const lookup = (id: string, index: number) => {
      const model = config.modelsById.get(id);
      if (!model) throw new GatewayError(404, `The model \`${id}\` does not exist in this gateway's catalog.`, { code: "model_not_found", param: `models[${index}]` });
      return model;
    };
    if (request.models) {
      const listed = request.models.map(lookup);
      if (route) {
        const choice = brain.decide(route, profile);
        const plan = [...choice.plan.slice(0, 1), ...listed.filter((model) => model.id !== choice.plan[0]?.id)];
        const listDecision = brain.planList(route.name, plan, "request-list", profile);
        // Keep the route's probe marking when its choice still goes first, so the probe's result counts.
        return { ...listDecision, probe: choice.probe && listDecision.plan[0]?.id === choice.plan[0]?.id };
      }
      if (request.models[0] !== request.model) {
        throw new GatewayError(400, "`model` must be the first entry of `models`, or a route.", { code: "invalid_value", param: "model" });
      }
      return brain.planList("request", listed, "request-list", profile);
    }
    if (route) return brain.decide(route, profile);
    const model = config.modelsById.get(request.model);
    if (model) return brain.planList("pinned", [model], "pinned", profile);
    throw new GatewayError(404, `The model \`${request.model}\` does not exist: use a route (${[...config.routes.keys()].join(", ")}, auto) or a catalog model id.`, {
      code: "model_not_found",
      param: "model",
    });
  };

  const chat = async (incoming: IncomingMessage, outgoing: ServerResponse): Promise<void> => {
    const startedAt = performance.now();
    const requestId = requestIdOf(incoming);
    const runtime = deps.runtime();
    const log: RequestLog = { route: "none", model: NO_MODEL, attempts: 0, reason: "", outcome: "client_error", status: 0, ttftMs: undefined };
    let stream = false;
    try {
      authenticate(incoming);
      const body = await readRequestBody(incoming, runtime.config.config.server.bodyLimitBytes);
      const request = parseChatRequest(body);
      stream = request.stream === true;
      const profile = profileRequest(request, deps.estimateTokens);
      const decision = decide(runtime, request, profile);
      const passHeaders: Record<string, string> = { "content-type": "application/json", "x-request-id": requestId };
      for (const name of PROPAGATED) {
        const value = incoming.headers[name];
        if (typeof value === "string") passHeaders[name] = value;
      }
      const error = await executeChat({ brain, metrics, bookkeeping }, runtime, { incoming, outgoing, requestId, startedAt, passHeaders, body, request, profile, log }, decision);
      const endedAt = performance.now();
      // Queued after the executor's own bookkeeping, which fills in `log`.
      bookkeeping.later(() => accessLog("POST", CHAT_PATH, requestId, startedAt, log.status, log, endedAt));
      if (error !== undefined) writeError(outgoing, error, requestId);
    } catch (thrown) {
      const error = toGatewayError(thrown, requestId);
      writeError(outgoing, error, requestId);
      // Rejected before routing: counted without a route or model (labels never take request values).
      metrics.request("none", NO_MODEL, error.status >= 500 ? "upstream_error" : "client_error", stream, (performance.now() - startedAt) / 1000);
      accessLog("POST", CHAT_PATH, requestId, startedAt, error.status, { ...log, status: error.status });
    }
  };

  app.get("/v1/models", (c) => {
    authenticate(c.env.incoming); // throws a 401/403 GatewayError, which app.onError answers
    const requestId = requestIdOf(c.env.incoming);
    const { config } = deps.runtime();
    const created = 0;
    const data = [
      ...[...config.routes.keys(), "auto"].map((id) => ({ id, object: "model", created, owned_by: "subsecond" })),
      ...config.models.map((model) => ({ id: model.id, object: "model", created, owned_by: model.provider })),
    ];
    return jsonResponse({ object: "list", data }, requestId);
  });

  app.get("/healthz", (c) => jsonResponse({ status: "ok" }, requestIdOf(c.env.incoming)));

  app.get("/readyz", (c) => {
    const state = deps.ready();
    return jsonResponse(state.ready ? { status: "ready" } : { status: "not ready", reason: state.reason }, requestIdOf(c.env.incoming), state.ready ? 200 : 503);
  });

  app.get("/metrics", async (c) => {
    bookkeeping.flush();
    const text = await metrics.registry.metrics();
    return new Response(text, { headers: { "content-type": metrics.registry.contentType, "x-request-id": requestIdOf(c.env.incoming) } });
  });

  app.get("/admin/routes", (c) => {
    authenticateAdmin(c.env.incoming); // throws a 401/403 GatewayError, which app.onError answers
    const requestId = requestIdOf(c.env.incoming);
    const { config } = deps.runtime();
    const routes = [...config.routes.values()].map((route) => ({
      name: route.name,
      strategy: route.strategy,
      target: route.target,
      candidates: brain.snapshot(route),
    }));
    const catalogRefreshedAt = deps.catalogRefreshedAt?.()?.toISOString() ?? null;
    return jsonResponse({ configHash: config.hash, catalogRefreshedAt, defaultRoute: config.defaultRoute, routes }, requestId);
  });

  app.post("/admin/reload", async (c) => {
    authenticateAdmin(c.env.incoming); // throws a 401/403 GatewayError, which app.onError answers
    const requestId = requestIdOf(c.env.incoming);
    const result = await deps.reload();
    if (result.ok) return jsonResponse({ status: "reloaded", hash: result.hash }, requestId);
    return errorResponse(new GatewayError(400, `Config rejected; the previous config keeps serving.\n${result.errors.join("\n")}`, { code: "config_invalid" }), requestId);
  });

  app.notFound((c) => {
    const requestId = requestIdOf(c.env.incoming);
    return errorResponse(new GatewayError(404, `Unknown path ${c.req.method} ${c.req.path}: this gateway serves POST /v1/chat/completions and GET /v1/models.`, { code: "unknown_url" }), requestId);
  });

  app.onError((error, c: Context<Env>) => {
    const requestId = requestIdOf(c.env.incoming);
    return errorResponse(toGatewayError(error, requestId), requestId);
  });

  const others = getRequestListener(app.fetch);
  return (incoming, outgoing) => {
    // Chat completions skip hono's adapter, router and Context: on the path to the first token they cost
    // more than their CPU time on a core that idles between requests (bench/README.md).
    if (incoming.method === "POST" && isChatPath(incoming.url)) {
      // `chat` answers every error itself; this only keeps a bug in it from ending the process.
      chat(incoming, outgoing).catch((error: unknown) => {
        logger.error({ err: error }, "chat handler failed");
        outgoing.destroy();
      });
    } else void others(incoming, outgoing);
  };
}
