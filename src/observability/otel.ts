// The Tracing interface on the OpenTelemetry SDK: spans batched and sent as OTLP/HTTP JSON, parents
// taken from and given to W3C `traceparent` headers, attributes from the GenAI semantic conventions
// (gen_ai.*, spec v1.37+) and `subsecond.*`. Imported by tracing.ts only when traces are wanted.
// Parents are passed explicitly: no context manager, no context.with() on the request path.
import {
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  defaultTextMapGetter,
  defaultTextMapSetter,
  trace,
  type Context,
  type Span,
  type Tracer,
} from "@opentelemetry/api";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { defaultResource, detectResources, envDetector, resourceFromAttributes } from "@opentelemetry/resources";
import { BasicTracerProvider, BatchSpanProcessor } from "@opentelemetry/sdk-trace-base";
import {
  ATTR_ERROR_TYPE,
  ATTR_HTTP_REQUEST_METHOD,
  ATTR_HTTP_RESPONSE_STATUS_CODE,
  ATTR_HTTP_ROUTE,
  ATTR_SERVICE_NAME,
} from "@opentelemetry/semantic-conventions";
import { NO_MODEL } from "../metrics/metrics.js";
import type { CatalogModel } from "../router/types.js";
import type { AttemptEnd, AttemptStart, RequestEnd, RequestTrace, Tracing } from "./tracing.js";

// GenAI attributes are still "development" in the semantic conventions: their package asks
// instrumentations to copy them rather than import its `incubating` entry point, which may break in a minor.
const GEN_AI_OPERATION_NAME = "gen_ai.operation.name";
const GEN_AI_PROVIDER_NAME = "gen_ai.provider.name";
const GEN_AI_REQUEST_MODEL = "gen_ai.request.model";
const GEN_AI_RESPONSE_MODEL = "gen_ai.response.model";
const GEN_AI_USAGE_INPUT_TOKENS = "gen_ai.usage.input_tokens";
const GEN_AI_USAGE_OUTPUT_TOKENS = "gen_ai.usage.output_tokens";
const GEN_AI_RESPONSE_FINISH_REASONS = "gen_ai.response.finish_reasons";

/** The chat route's path, as `http.route`. */
const CHAT_ROUTE = "/v1/chat/completions";
/** The server span's name until the route is known (a request refused before routing keeps it). */
const UNROUTED = "chat";
/** Attempt outcomes that are not errors of the attempt: it served, or it was stopped. */
const NOT_ERRORS = new Set(["ok", "superseded", "cancelled"]);

/** The SDK set up from the process environment: sampler, exporter endpoint and headers, batch sizes, resource. */
export function createOtelTracing(): Tracing {
  const resource = defaultResource()
    .merge(resourceFromAttributes({ [ATTR_SERVICE_NAME]: "subsecond" }))
    .merge(detectResources({ detectors: [envDetector] }));
  const provider = new BasicTracerProvider({ resource, spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter())] });
  const tracer = provider.getTracer("subsecond");
  const propagator = new W3CTraceContextPropagator();
  return {
    startRequest(headers, startedAt) {
      const parent = propagator.extract(ROOT_CONTEXT, headers, defaultTextMapGetter);
      const span = tracer.startSpan(
        UNROUTED,
        {
          kind: SpanKind.SERVER,
          startTime: startedAt,
          attributes: { [GEN_AI_OPERATION_NAME]: "chat", [ATTR_HTTP_REQUEST_METHOD]: "POST", [ATTR_HTTP_ROUTE]: CHAT_ROUTE },
        },
        parent,
      );
      return new OtelRequestTrace(tracer, propagator, span, parent);
    },
    shutdown: () => provider.shutdown(),
  };
}

class OtelRequestTrace implements RequestTrace {
  /** Client spans of the attempts in flight, by catalog id (a request tries a model once). */
  readonly #attempts = new Map<string, Span>();
  /** The server span as the client spans' parent, made at the first attempt. */
  #context: Context | undefined;
  /** The `model` each answered attempt's provider named, by catalog id, for the server span. */
  #answered: Map<string, string> | undefined;
  #hedged = false;
  #ended = false;

  constructor(
    private readonly tracer: Tracer,
    private readonly propagator: W3CTraceContextPropagator,
    private readonly span: Span,
    private readonly parent: Context,
  ) {}

  planned(route: string, requestedModel: string): void {
    this.span.updateName(`chat ${route}`);
    this.span.setAttribute("subsecond.route", route);
    this.span.setAttribute(GEN_AI_REQUEST_MODEL, requestedModel);
  }

  attemptStarted(model: CatalogModel, start: AttemptStart): void {
    if (start.hedge) this.#hedged = true;
    this.#context ??= trace.setSpan(this.parent, this.span);
    const span = this.tracer.startSpan(
      `chat ${model.upstreamModel}`,
      {
        kind: SpanKind.CLIENT,
        attributes: {
          [GEN_AI_OPERATION_NAME]: "chat",
          [GEN_AI_PROVIDER_NAME]: model.provider,
          [GEN_AI_REQUEST_MODEL]: model.upstreamModel,
          "subsecond.model": model.id,
          "subsecond.attempt": start.attempt,
          "subsecond.reason": start.reason,
          "subsecond.hedge": start.hedge,
          "subsecond.probe": start.probe,
          "subsecond.continuation": start.continuation,
          "subsecond.predicted_ms": Math.round(start.predictedMs),
        },
      },
      this.#context,
    );
    // A model tried again (a continuation may) closes the span it left open.
    this.#attempts.get(model.id)?.end();
    this.#attempts.set(model.id, span);
  }

  upstreamHeaders(model: CatalogModel, base: Readonly<Record<string, string>>): Readonly<Record<string, string>> {
    const span = this.#attempts.get(model.id);
    if (span === undefined) return base;
    const headers = { ...base };
    this.propagator.inject(trace.setSpan(ROOT_CONTEXT, span), headers, defaultTextMapSetter);
    return headers;
  }

  attemptEnded(end: AttemptEnd): void {
    const span = this.#attempts.get(end.model.id);
    if (span === undefined) return;
    this.#attempts.delete(end.model.id);
    span.setAttribute("subsecond.outcome", end.outcome);
    if (end.responseModel !== undefined) {
      span.setAttribute(GEN_AI_RESPONSE_MODEL, end.responseModel);
      (this.#answered ??= new Map()).set(end.model.id, end.responseModel);
    }
    if (end.usage !== undefined) {
      span.setAttribute(GEN_AI_USAGE_INPUT_TOKENS, end.usage.promptTokens);
      span.setAttribute(GEN_AI_USAGE_OUTPUT_TOKENS, end.usage.completionTokens);
    }
    if (end.finishReasons !== undefined && end.finishReasons.length > 0) span.setAttribute(GEN_AI_RESPONSE_FINISH_REASONS, [...end.finishReasons]);
    if (!NOT_ERRORS.has(end.outcome)) {
      span.setAttribute(ATTR_ERROR_TYPE, end.outcome);
      span.setStatus({ code: SpanStatusCode.ERROR });
    }
    span.end();
  }

  ended(end: RequestEnd, endedAt: number): void {
    if (this.#ended) return;
    this.#ended = true;
    const span = this.span;
    span.setAttribute("subsecond.reason", end.reason);
    span.setAttribute("subsecond.attempts", end.attempts);
    span.setAttribute("subsecond.hedge", this.#hedged);
    span.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, end.status);
    if (end.model !== NO_MODEL) span.setAttribute("subsecond.model", end.model);
    const responseModel = this.#answered?.get(end.model);
    if (responseModel !== undefined) span.setAttribute(GEN_AI_RESPONSE_MODEL, responseModel);
    if (end.outcome !== "ok") span.setAttribute(ATTR_ERROR_TYPE, end.outcome);
    // A server span is an error for 5xx only (OpenTelemetry HTTP semantic conventions).
    if (end.status >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
    span.end(endedAt);
  }
}
