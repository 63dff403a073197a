// The clients' door on the chat path: which client calls, whether it may use the route it names, and
// whether its limits admit the request; then what its request used.
import type { CompiledConfig } from "../config/compile.js";
import type { GatewayError } from "../errors.js";
import type { GatewayMetrics } from "../metrics/metrics.js";
import type { ChatRequest } from "../proxy/chat-request.js";
import type { RequestProfile } from "../router/types.js";
import { DEFAULT_CLIENT, checkRouteAccess, type Client, type ClientDirectory } from "./directory.js";
import type { Admission, ClientLimiter } from "./limiter.js";

/** An admitted request's client: its headers, its usage meter, and its end. */
export interface ClientPass {
  readonly client: string;
  readonly admitted: true;
  /** `x-ratelimit-*` headers for every response of the request. */
  readonly headers: Readonly<Record<string, string>>;
  /** Usage of one attempt, with its cost in USD from catalog prices. */
  meter(promptTokens: number, completionTokens: number, usd: number): void;
  /** The request ended: the token estimate gives way to the usage metered. */
  release(): void;
}

export interface ClientRefused {
  readonly client: string;
  readonly admitted: false;
  readonly error: GatewayError;
}

export interface ClientGate {
  /**
   * Admits `request` of the client named by authentication, or refuses it (429 over a limit, 503 when
   * limits fail closed). Throws a 404 GatewayError for a route the client may not use.
   */
  admit(clientName: string | undefined, config: CompiledConfig, request: ChatRequest, profile: RequestProfile): ClientPass | ClientRefused;
}

export interface ClientGateDeps {
  readonly directory: () => ClientDirectory;
  readonly limiter: ClientLimiter;
  readonly metrics: GatewayMetrics;
}

const UNKNOWN_CLIENT: Client = { name: DEFAULT_CLIENT, routes: undefined, limits: {} };

export function createClientGate({ directory, limiter, metrics }: ClientGateDeps): ClientGate {
  return {
    admit(clientName, config, request, profile) {
      // A key accepted before a reload that removed its client is served as `default` until its next call.
      const client = directory().clients.get(clientName ?? DEFAULT_CLIENT) ?? UNKNOWN_CLIENT;
      checkRouteAccess(client, config, request);
      // OpenAI counts a request's max_tokens against the minute up front; without one, the usual length.
      const estimate = profile.promptTokens + (profile.maxOutputTokens ?? config.config.stats.defaultOutputTokens);
      const verdict = limiter.admit(client, estimate);
      const name = client.name;
      if ("error" in verdict) {
        if (verdict.limit !== undefined) metrics.clientLimited(name, verdict.limit);
        return { client: name, admitted: false, error: verdict.error };
      }
      const admission: Admission = verdict;
      return {
        client: name,
        admitted: true,
        headers: admission.headers,
        meter(promptTokens, completionTokens, usd) {
          admission.meter(promptTokens + completionTokens, usd);
          metrics.clientCost(name, usd);
        },
        release: admission.release,
      };
    },
  };
}
