// Upstream connections: one undici Pool per provider, with explicit timeouts and gateway-held API keys.
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

/** The deadline of an attempt fired (first token, idle, total or budget). */
export class DeadlineError extends Error {
  readonly code = "deadline_exceeded";
  constructor(
    readonly deadline: "first-token" | "idle" | "total" | "budget",
    readonly afterMs: number,
  ) {
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

/** Another attempt of the same request delivered first (a hedge race); this one is abandoned. */
export class SupersededError extends Error {
  readonly code = "superseded";
  constructor() {
    super("another attempt delivered first");
    this.name = "SupersededError";
  }
}

/** Response headers as undici reports them (lower-case names). */
export type UpstreamHeaders = Readonly<Record<string, string | string[] | undefined>>;

/** What an attempt does with the upstream's answer as it arrives. */
export interface UpstreamListener {
  /** The status and headers. */
  onStart(statusCode: number, headers: UpstreamHeaders): void;
  onData(chunk: Buffer): void;
  /** The body is complete. */
  onEnd(): void;
  /** The call failed: the reason given to `abort`, or undici's error. Never after `onEnd`, at most once. */
  onError(error: Error): void;
}

/**
 * One upstream request, sent with undici's `dispatch()`: no promise, Readable or AsyncResource per
 * request as with `request()`, which cost a bare pass-through proxy 5–10% of its throughput.
 * `abort` works at any point; before undici has started the request (all connections busy), the listener
 * hears of it at once. `pause`/`resume` hold back reading the response body.
 */
export class UpstreamCall implements Dispatcher.DispatchHandler {
  /** Why the call was aborted, when it was. */
  #reason: Error | undefined;
  #controller: Dispatcher.DispatchController | undefined;
  #listener: UpstreamListener | undefined;
  #ended = false;

  /** Sends the request; `headers` (client headers to pass through, already filtered) go under the provider's. */
  start(provider: UpstreamProvider, body: Buffer, headers: Readonly<Record<string, string>>, listener: UpstreamListener): void {
    this.#listener = listener;
    provider.pool.dispatch({ path: provider.chatPath, method: "POST", headers: { ...headers, ...provider.headers }, body }, this);
  }

  abort(reason: Error): void {
    if (this.#reason !== undefined || this.#ended) return;
    this.#reason = reason;
    if (this.#controller) this.#controller.abort(reason);
    else this.#fail(reason);
  }

  get paused(): boolean {
    return this.#controller?.paused ?? false;
  }

  pause(): void {
    this.#controller?.pause();
  }

  resume(): void {
    this.#controller?.resume();
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
    if (this.#reason !== undefined) controller.abort(this.#reason);
  }

  onResponseStart(_controller: Dispatcher.DispatchController, statusCode: number, headers: UpstreamHeaders): void {
    if (!this.#ended) this.#listener?.onStart(statusCode, headers);
  }

  onResponseData(_controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (!this.#ended) this.#listener?.onData(chunk);
  }

  onResponseEnd(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#listener?.onEnd();
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    this.#fail(this.#reason ?? error);
  }

  #fail(error: Error): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#listener?.onError(error);
  }
}

/** Transport failure classes that fall back; `timeout` for undici's own safety-net timeouts. */
export function classifyTransportError(error: unknown): "timeout" | "error" {
  if (error instanceof DeadlineError) return "timeout";
  if (error instanceof errors.HeadersTimeoutError || error instanceof errors.BodyTimeoutError) return "timeout";
  return "error";
}

/** Collects a body's chunks up to `limit` bytes; what comes after is counted, not kept. */
export class BodyCollector {
  private readonly chunks: Buffer[] = [];
  size = 0;

  constructor(readonly limit: number) {}

  /** False once the body is over the limit. */
  add(chunk: Buffer): boolean {
    this.size += chunk.length;
    if (this.size > this.limit) return false;
    this.chunks.push(chunk);
    return true;
  }

  bytes(): Buffer {
    return this.chunks.length === 1 ? (this.chunks[0] as Buffer) : Buffer.concat(this.chunks);
  }

  text(): string {
    return this.bytes().toString("utf8");
  }
}

/** Largest upstream error body read, in bytes (provider error bodies are small). */
export const ERROR_BODY_LIMIT = 64 * 1024;
