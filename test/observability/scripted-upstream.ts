// A fake OpenAI-compatible upstream on 127.0.0.1:0 whose behaviour is scripted per upstream model name.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/**
 * What the upstream does for one model:
 * - `ok`: answers after `ttftMs` (JSON, or SSE with a role chunk, content chunks, finish and usage);
 * - `hang`: streams send headers and a role-only chunk, then nothing; non-streams send nothing at all;
 * - `error`: 500 with an OpenAI error body;
 * - `rate_limited`: 429 with `Retry-After` (seconds).
 */
export type Behaviour =
  | { kind: "ok"; ttftMs: number; chunks?: number }
  | { kind: "hang" }
  | { kind: "error" }
  | { kind: "rate_limited"; retryAfterSeconds: number };

export interface ScriptedUpstream {
  /** `http://127.0.0.1:PORT/v1`, for a provider's `baseUrl`. */
  readonly baseUrl: string;
  /** Requests received, by upstream model name. */
  readonly hits: ReadonlyMap<string, number>;
  close(): Promise<void>;
}

const PROMPT_TOKENS = 12;

function chunk(id: string, model: string, choices: unknown[], extra: Record<string, unknown> = {}): string {
  return `data: ${JSON.stringify({ id, object: "chat.completion.chunk", created: Math.floor(Date.now() / 1000), model, choices, ...extra })}\n\n`;
}

function sendError(res: ServerResponse, status: number, message: string, type: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { "content-type": "application/json", ...headers });
  res.end(JSON.stringify({ error: { message, type, param: null, code: type } }));
}

export async function startScriptedUpstream(script: Readonly<Record<string, Behaviour>>): Promise<ScriptedUpstream> {
  const hits = new Map<string, number>();
  const timers = new Set<NodeJS.Timeout>();
  const later = (ms: number, fn: () => void): void => {
    const timer = setTimeout(() => {
      timers.delete(timer);
      fn();
    }, ms);
    timers.add(timer);
  };

  const handle = (req: IncomingMessage, res: ServerResponse, raw: string): void => {
    if (req.method !== "POST" || req.url !== "/v1/chat/completions") return sendError(res, 404, `no route ${req.method} ${req.url}`, "not_found");
    let body: { model?: unknown; stream?: unknown; stream_options?: { include_usage?: unknown } };
    try {
      body = JSON.parse(raw) as typeof body;
    } catch {
      return sendError(res, 400, "body is not JSON", "invalid_request_error");
    }
    const model = typeof body.model === "string" ? body.model : "";
    hits.set(model, (hits.get(model) ?? 0) + 1);
    const behaviour = script[model];
    if (behaviour === undefined) return sendError(res, 404, `The model ${model} does not exist`, "model_not_found");
    const stream = body.stream === true;
    const id = `chatcmpl-${model}-${hits.get(model)}`;

    switch (behaviour.kind) {
      case "error":
        return sendError(res, 500, "upstream exploded (scripted)", "server_error");
      case "rate_limited":
        return sendError(res, 429, "rate limited (scripted)", "rate_limit_exceeded", { "retry-after": String(behaviour.retryAfterSeconds) });
      case "hang":
        // Held until the gateway gives up and closes the connection.
        if (stream) {
          res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
          res.write(chunk(id, model, [{ index: 0, delta: { role: "assistant" }, finish_reason: null }]));
        }
        return;
      case "ok": {
        const words = Array.from({ length: behaviour.chunks ?? 4 }, (_, i) => `w${i} `);
        const usage = { prompt_tokens: PROMPT_TOKENS, completion_tokens: words.length, total_tokens: PROMPT_TOKENS + words.length };
        if (!stream) {
          later(behaviour.ttftMs, () => {
            if (res.destroyed) return;
            res.writeHead(200, { "content-type": "application/json", "x-upstream-model": model });
            res.end(
              JSON.stringify({
                id,
                object: "chat.completion",
                created: Math.floor(Date.now() / 1000),
                model,
                choices: [{ index: 0, message: { role: "assistant", content: words.join("") }, finish_reason: "stop" }],
                usage,
              }),
            );
          });
          return;
        }
        res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache", "x-upstream-model": model });
        res.write(chunk(id, model, [{ index: 0, delta: { role: "assistant", content: "" }, finish_reason: null }]));
        later(behaviour.ttftMs, () => {
          if (res.destroyed) return;
          for (const word of words) res.write(chunk(id, model, [{ index: 0, delta: { content: word }, finish_reason: null }]));
          res.write(chunk(id, model, [{ index: 0, delta: {}, finish_reason: "stop" }]));
          if (body.stream_options?.include_usage === true) res.write(chunk(id, model, [], { usage }));
          res.end("data: [DONE]\n\n");
        });
        return;
      }
    }
  };

  const server: Server = createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on("data", (part: Buffer) => parts.push(part));
    req.on("end", () => handle(req, res, Buffer.concat(parts).toString("utf8")));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  const { port } = server.address() as AddressInfo;

  return {
    baseUrl: `http://127.0.0.1:${port}/v1`,
    hits,
    close: () =>
      new Promise<void>((resolve) => {
        for (const timer of timers) clearTimeout(timer);
        timers.clear();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
