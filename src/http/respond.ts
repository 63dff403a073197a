// Writing responses on node:http: JSON bodies, and every error through the one renderer.
import type { ServerResponse } from "node:http";
import { renderErrorJson, type GatewayError } from "../errors.js";
import { bodyUnread } from "./request-body.js";

export function sendJson(outgoing: ServerResponse, status: number, body: unknown, requestId: string): void {
  send(outgoing, status, JSON.stringify(body), { "content-type": "application/json", "x-request-id": requestId });
}

export function send(outgoing: ServerResponse, status: number, body: string, headers: Readonly<Record<string, string>>): void {
  outgoing.writeHead(status, { ...headers, "content-length": Buffer.byteLength(body) });
  outgoing.end(body);
}

/**
 * Answers with the error in OpenAI's shape; once a response has started, the connection is cut instead.
 * An answer given before the request's body arrived (a 401 or 413 during a slow upload) closes the
 * connection: otherwise it would stay busy until the client finished sending a body nobody reads.
 */
export function sendError(outgoing: ServerResponse, error: GatewayError, requestId: string): void {
  if (outgoing.headersSent) {
    outgoing.destroy();
    return;
  }
  // With `connection: close`, node:http ends the socket and destroys it once the answer has left.
  const close: Record<string, string> = bodyUnread(outgoing.req) ? { connection: "close" } : {};
  send(outgoing, error.status, renderErrorJson(error), { "content-type": "application/json", "x-request-id": requestId, ...error.responseHeaders(), ...close });
}
