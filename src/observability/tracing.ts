// Traces (DESIGN.md "Traces (OpenTelemetry)"): what a request tells its trace, and the loader that brings
// the OpenTelemetry SDK in only when the standard OTEL_* variables name an OTLP endpoint. Off, nothing of
// it is loaded and the request path pays one null check per hook.
import type { IncomingHttpHeaders } from "node:http";
import type { CatalogModel } from "../router/types.js";

/** Starts one trace per chat request; one per process. */
export interface Tracing {
  /**
   * A chat request arrived at `startedAt` (performance.now()): its server span starts, as a child of
   * the W3C `traceparent` in `headers` when there is one.
   */
  startRequest(headers: IncomingHttpHeaders, startedAt: number): RequestTrace;
  /** Exports the spans still buffered and stops the exporter: after the drain, before the process exits. */
  shutdown(): Promise<void>;
}

/** Hears what goes wrong with tracing while it runs (its worker died, spans were dropped); main.ts logs it. */
export type TracingProblem = (message: string, error?: unknown) => void;

/** What an attempt is, as its client span says (`subsecond.*`). */
export interface AttemptStart {
  /** 1 for the request's first attempt. */
  readonly attempt: number;
  /** Why it was sent: the decision's reason, `fallback` or `hedge`. */
  readonly reason: string;
  readonly hedge: boolean;
  readonly probe: boolean;
  /** Resumes a stream that another attempt began. */
  readonly continuation: boolean;
  /** The brain's latency prediction for the model at the route's percentile, in ms. */
  readonly predictedMs: number;
}

/** How an attempt ended (the recorder's AttemptRecord fits it). Never message content. */
export interface AttemptEnd {
  readonly model: CatalogModel;
  /** `ok`, `timeout`, `error`, `rate_limited`, `client_error`, `superseded` or `cancelled`. */
  readonly outcome: string;
  readonly usage?: { readonly promptTokens: number; readonly completionTokens: number } | undefined;
  readonly finishReasons?: readonly string[] | undefined;
  /** The `model` the provider answered with. */
  readonly responseModel?: string | undefined;
}

/** How the request ended (the recorder's RequestSummary fits it). */
export interface RequestEnd {
  /** The catalog id that served, or `none`. */
  readonly model: string;
  readonly outcome: string;
  readonly status: number;
  readonly attempts: number;
  readonly reason: string;
}

/** One request's trace: a server span and a client span per upstream attempt. */
export interface RequestTrace {
  /** The route is known: the server span becomes `chat {route}`; `requestedModel` is the client's `model`. */
  planned(route: string, requestedModel: string): void;
  /** An attempt on `model` is about to be sent: its client span starts. */
  attemptStarted(model: CatalogModel, start: AttemptStart): void;
  /** The headers for the attempt on `model`: `base` with the client span as `traceparent`. */
  upstreamHeaders(model: CatalogModel, base: Readonly<Record<string, string>>): Readonly<Record<string, string>>;
  /** The attempt on `end.model` ended: its client span ends. */
  attemptEnded(end: AttemptEnd): void;
  /** The request ended at `endedAt` (performance.now()): the server span ends. Later calls do nothing. */
  ended(end: RequestEnd, endedAt: number): void;
}

/**
 * Whether `env` asks for traces: an OTLP endpoint is set (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or
 * `OTEL_EXPORTER_OTLP_ENDPOINT`), the SDK is not disabled (`OTEL_SDK_DISABLED`) and
 * `OTEL_TRACES_EXPORTER` does not say `none` (OpenTelemetry "SDK environment variables").
 */
export function tracingWanted(env: Readonly<Record<string, string | undefined>>): boolean {
  const endpoint = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT || env.OTEL_EXPORTER_OTLP_ENDPOINT;
  if (!endpoint) return false;
  if (env.OTEL_SDK_DISABLED?.trim().toLowerCase() === "true") return false;
  return env.OTEL_TRACES_EXPORTER?.trim().toLowerCase() !== "none";
}

/**
 * The tracing `env` asks for, or undefined. The SDK module is imported here, only then; `env` gives the
 * sampler, and the SDK reads the rest of its settings (headers, batch sizes, resource) from the process
 * environment itself. `problem` hears of failures while tracing runs (its worker died, spans dropped).
 */
export async function createTracing(env: Readonly<Record<string, string | undefined>>, problem: TracingProblem): Promise<Tracing | undefined> {
  if (!tracingWanted(env)) return undefined;
  const { createOtelTracing } = await import("./otel.js");
  return await createOtelTracing(env, problem);
}
