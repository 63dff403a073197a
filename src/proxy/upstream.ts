// Upstream connections: one undici Pool per provider, with explicit timeouts and gateway-held API keys.
import { EventEmitter } from "node:events";
import { Pool, errors, type Dispatcher } from "undici";
import type { ProviderConfig } from "../config/schema.js";

/** One provider's connection pool and the headers the gateway adds to every request. */
export interface UpstreamProvider {
  readonly name: string;
  readonly pool: Pool;
  /** Path of chat completions on this provider, e.g. `/api/v1/chat/completions`. */
  readonly chatPath: string;
  /** Provider headers plus `authorization` with the provider key (never logged). */
  readonly headers: Readonly<Record<string, string>>;
  /** Env var named by `apiKeyEnv` that is unset or empty, if any. */
  readonly missingKeyEnv: string | undefined;
  /** Identity of the pool's settings; a pool is reused across reloads only when this is unchanged. */
  readonly poolKey: string;
}

export type Upstreams = ReadonlyMap<string, UpstreamProvider>;

function poolKeyOf(provider: ProviderConfig): string {
  const url = new URL(provider.baseUrl);
  return JSON.stringify([url.origin, provider.maxConnections, provider.timeouts]);
}

function createPool(provider: ProviderConfig): Pool {
  const url = new URL(provider.baseUrl);
  return new Pool(url.origin, {
    connections: provider.maxConnections,
    pipelining: 1,
    keepAliveTimeout: 30_000,
    keepAliveMaxTimeout: 600_000,
    connect: { timeout: provider.timeouts.connectMs },
    headersTimeout: provider.timeouts.headersMs,
    bodyTimeout: provider.timeouts.bodyIdleMs,
  });
}

/**
 * Builds the providers' pools. Pools of `previous` whose origin and settings are unchanged are reused
 * (warm connections survive a reload); the caller closes the rest with `closeUnused`.
 */
export function createUpstreams(
  providers: Readonly<Record<string, ProviderConfig>>,
  env: Readonly<Record<string, string | undefined>>,
  previous?: Upstreams,
): Upstreams {
  const result = new Map<string, UpstreamProvider>();
  for (const [name, provider] of Object.entries(providers)) {
    const url = new URL(provider.baseUrl);
    const poolKey = poolKeyOf(provider);
    const reused = previous?.get(name);
    const pool = reused && reused.poolKey === poolKey ? reused.pool : createPool(provider);
    const key = provider.apiKeyEnv ? env[provider.apiKeyEnv] : undefined;
    const headers: Record<string, string> = {};
    for (const [header, value] of Object.entries(provider.headers)) headers[header.toLowerCase()] = value;
    if (key) headers.authorization = `Bearer ${key}`;
    result.set(name, {
      name,
      pool,
      chatPath: `${url.pathname.replace(/\/+$/, "")}/chat/completions`,
      headers,
      missingKeyEnv: provider.apiKeyEnv && !key ? provider.apiKeyEnv : undefined,
      poolKey,
    });
  }
  return result;
}

/** Gracefully closes pools of `old` that `current` no longer uses (in-flight requests finish first). */
export async function closeUnused(old: Upstreams, current: Upstreams | undefined): Promise<void> {
  const inUse = new Set([...(current?.values() ?? [])].map((provider) => provider.pool));
  await Promise.all([...old.values()].filter((provider) => !inUse.has(provider.pool)).map((provider) => provider.pool.close()));
}

/**
 * Cancels one upstream request. undici accepts an EventEmitter as `signal`; it is much cheaper than an
 * AbortController per request on Node 20 (PERF-NOTES: AbortController lengthened GC pauses ~5×).
 */
export class AttemptCanceller extends EventEmitter {
  aborted = false;
  reason: Error | undefined;

  abort(reason: Error): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    this.emit("abort");
  }
}

/** The deadline of an attempt fired (first token, idle, total or budget). */
export class DeadlineError extends Error {
  readonly code = "deadline_exceeded";
  constructor(readonly deadline: "first-token" | "idle" | "total" | "budget", readonly afterMs: number) {
    super(`${deadline} deadline of ${Math.round(afterMs)} ms exceeded`);
    this.name = "DeadlineError";
  }
}

/** The client went away; the upstream request is abandoned. */
export class ClientGoneError extends Error {
  readonly code = "client_closed";
  constructor() {
    super("client closed the connection");
    this.name = "ClientGoneError";
  }
}

export interface UpstreamRequest {
  readonly provider: UpstreamProvider;
  readonly body: Buffer;
  /** Client headers to pass through (already filtered), merged under the provider's. */
  readonly headers: Record<string, string>;
  readonly canceller: AttemptCanceller;
}

export function sendUpstream(request: UpstreamRequest): Promise<Dispatcher.ResponseData> {
  return request.provider.pool.request({
    path: request.provider.chatPath,
    method: "POST",
    headers: { ...request.headers, ...request.provider.headers },
    body: request.body,
    signal: request.canceller,
  });
}

/** Transport failure classes that fall back; `timeout` for undici's own safety-net timeouts. */
export function classifyTransportError(error: unknown): "timeout" | "error" {
  if (error instanceof DeadlineError) return "timeout";
  if (error instanceof errors.HeadersTimeoutError || error instanceof errors.BodyTimeoutError) return "timeout";
  return "error";
}
