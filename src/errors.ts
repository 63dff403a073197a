// The one error type of the gateway, OpenAI's error body shape (`{"error":{message,type,param,code}}`), and its
// two renderings: a JSON body, and an SSE error event for a stream that has already started.

/** OpenAI error `type` values the gateway emits. */
export type OpenAiErrorType = "invalid_request_error" | "authentication_error" | "permission_error" | "not_found_error" | "rate_limit_error" | "server_error";

export interface OpenAiErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

export interface GatewayErrorOptions {
  type?: OpenAiErrorType | string;
  code?: string | null;
  param?: string | null;
  /** Extra response headers, e.g. `retry-after`. */
  headers?: Record<string, string>;
  /**
   * `x-should-retry` for the official SDKs, which otherwise retry 408/409/429/5xx twice.
   * `false` when another try cannot help, so clients do not multiply load.
   */
  shouldRetry?: boolean;
}

const DEFAULT_TYPE: Record<number, OpenAiErrorType> = {
  400: "invalid_request_error",
  401: "authentication_error",
  403: "permission_error",
  404: "not_found_error",
  413: "invalid_request_error",
  429: "rate_limit_error",
};

/** An error that becomes an OpenAI-shaped response with `status`. */
export class GatewayError extends Error {
  readonly type: string;
  readonly code: string | null;
  readonly param: string | null;
  readonly headers: Record<string, string>;
  readonly shouldRetry: boolean | undefined;

  constructor(
    readonly status: number,
    message: string,
    options: GatewayErrorOptions = {},
  ) {
    super(message);
    this.name = "GatewayError";
    this.type = options.type ?? DEFAULT_TYPE[status] ?? (status < 500 ? "invalid_request_error" : "server_error");
    this.code = options.code ?? null;
    this.param = options.param ?? null;
    this.headers = options.headers ?? {};
    this.shouldRetry = options.shouldRetry;
  }

  body(): OpenAiErrorBody {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }

  /** Response headers besides content-type: extra headers plus `x-should-retry` when decided. */
  responseHeaders(): Record<string, string> {
    return this.shouldRetry === undefined ? this.headers : { ...this.headers, "x-should-retry": String(this.shouldRetry) };
  }
}

/** Reads `{error:{message,type,param,code}}` or common variants (`{error:"text"}`, `{message}`, `{detail}`). */
export function normalizeUpstreamError(status: number, text: string): GatewayError {
  let message = "";
  let type: string | undefined;
  let code: string | null = null;
  let param: string | null = null;
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed === "object" && parsed !== null) {
      const root = parsed as Record<string, unknown>;
      const inner = typeof root.error === "object" && root.error !== null ? (root.error as Record<string, unknown>) : root;
      const candidate = inner.message ?? root.error ?? root.detail ?? root.message;
      if (typeof candidate === "string") message = candidate;
      if (typeof inner.type === "string") type = inner.type;
      if (typeof inner.code === "string" || typeof inner.code === "number") code = String(inner.code);
      if (typeof inner.param === "string") param = inner.param;
    }
  } catch {
    message = text.trim().slice(0, 500);
  }
  return new GatewayError(status, message || `upstream answered ${status}`, {
    ...(type !== undefined ? { type } : {}),
    code,
    param,
  });
}

/** The error as a JSON response body. */
export function renderErrorJson(error: GatewayError): string {
  return JSON.stringify(error.body());
}

/** The error as the final SSE event of a stream whose headers are already sent (`data: {"error":…}`). */
export function renderErrorEvent(error: GatewayError): Buffer {
  return Buffer.from(`data: ${renderErrorJson(error)}\n\n`);
}
