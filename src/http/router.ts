// A small router on node:http: exact paths, per-route access (client key, admin key, public), a request
// id for every response, and every error answered in OpenAI's shape by one renderer.
import { randomUUID } from "node:crypto";
import { performance } from "node:perf_hooks";
import type { IncomingMessage, RequestListener, ServerResponse } from "node:http";
import { GatewayError } from "../errors.js";
import type { Access, Authenticator } from "./auth.js";
import { sendError } from "./respond.js";

/** One request as a handler sees it. */
export interface RequestContext {
  readonly incoming: IncomingMessage;
  readonly outgoing: ServerResponse;
  readonly requestId: string;
  /** performance.now() when the request reached the listener. */
  readonly startedAt: number;
  /** The calling client's name, once its key passed (endpoints with client access). */
  client: string | undefined;
}

export interface Route {
  readonly method: "GET" | "POST";
  readonly path: string;
  readonly access: Access;
  /** Writes the response; a thrown error is answered by `rejected`. */
  handle(context: RequestContext): void | Promise<void>;
  /** Answers a request refused by access or by `handle` (default: the error, as JSON). */
  rejected?(context: RequestContext, error: GatewayError): void;
}

/** Request ids accepted from clients: short and printable, so logs stay clean. */
const REQUEST_ID = /^[\w.:-]{1,128}$/;

function requestIdOf(incoming: IncomingMessage): string {
  const given = incoming.headers["x-request-id"];
  return typeof given === "string" && REQUEST_ID.test(given) ? given : randomUUID();
}

/** The path without its query string, which no endpoint reads. */
function pathOf(url: string | undefined): string {
  if (url === undefined) return "/";
  const query = url.indexOf("?");
  return query === -1 ? url : url.slice(0, query);
}

export interface RouterOptions {
  readonly routes: readonly Route[];
  readonly authenticate: Authenticator;
  /** Any thrown value as the GatewayError to answer with (unknown errors are logged, never echoed). */
  readonly toGatewayError: (error: unknown, requestId: string) => GatewayError;
  /** Hears of an error thrown while answering an error. */
  readonly onBug: (error: unknown) => void;
}

export function createRouter({ routes, authenticate, toGatewayError, onBug }: RouterOptions): RequestListener {
  const table = new Map(routes.map((route) => [`${route.method} ${route.path}`, route]));
  return (incoming, outgoing) => {
    const startedAt = performance.now();
    const path = pathOf(incoming.url);
    // HEAD is GET without a body; node:http leaves the body out by itself.
    const method = incoming.method === "HEAD" ? "GET" : incoming.method;
    const route = table.get(`${method} ${path}`);
    const context: RequestContext = { incoming, outgoing, requestId: requestIdOf(incoming), startedAt, client: undefined };
    if (route === undefined) {
      const error = new GatewayError(404, `Unknown path ${incoming.method} ${path}: this gateway serves POST /v1/chat/completions and GET /v1/models.`, {
        code: "unknown_url",
      });
      sendError(outgoing, error, context.requestId);
      return;
    }
    const rejected = (thrown: unknown) => {
      try {
        const error = toGatewayError(thrown, context.requestId);
        if (route.rejected) route.rejected(context, error);
        else sendError(outgoing, error, context.requestId);
      } catch (bug) {
        // Only a bug gets here: it must not end the process, and the client must not wait forever.
        onBug(bug);
        outgoing.destroy();
      }
    };
    try {
      context.client = authenticate(incoming, route.access);
      const done = route.handle(context);
      if (done instanceof Promise) done.catch(rejected);
    } catch (thrown) {
      rejected(thrown);
    }
  };
}
