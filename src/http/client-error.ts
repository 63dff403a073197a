// Errors node:http's parser finds before any handler runs (headers too large, a malformed request line,
// bad framing): answered in OpenAI's error shape when the connection can still carry an answer, and the
// connection closed, since what follows on it cannot be trusted.
import type { ServerResponse } from "node:http";
import type { Duplex } from "node:stream";
import { GatewayError, renderErrorJson } from "../errors.js";

interface ParserAnswer {
  readonly status: number;
  readonly reason: string;
  readonly message: string;
  readonly code: string;
}

const BAD_REQUEST: ParserAnswer = { status: 400, reason: "Bad Request", message: "The request is not valid HTTP/1.1.", code: "bad_http_request" };

/** node:http's parser errors with a status of their own (Node's own choices, RFC 9110). */
const ANSWERS: Readonly<Record<string, ParserAnswer>> = {
  HPE_HEADER_OVERFLOW: { status: 431, reason: "Request Header Fields Too Large", message: "The request's headers are too large.", code: "headers_too_large" },
  ERR_HTTP_REQUEST_TIMEOUT: { status: 408, reason: "Request Timeout", message: "The request took too long to arrive.", code: "request_timeout" },
};

/** The `clientError` listener of the gateway's server. */
export function answerClientError(error: Error & { code?: string }, socket: Duplex): void {
  // A response already under way on this connection, or nobody left to read one: just close it.
  const current = (socket as Duplex & { _httpMessage?: ServerResponse | null })._httpMessage;
  if (error.code === "ECONNRESET" || !socket.writable || current?.headersSent === true) {
    socket.destroy();
    return;
  }
  const answer = (error.code !== undefined ? ANSWERS[error.code] : undefined) ?? BAD_REQUEST;
  const body = renderErrorJson(new GatewayError(answer.status, answer.message, { code: answer.code }));
  socket.end(
    `HTTP/1.1 ${answer.status} ${answer.reason}\r\n` +
      "content-type: application/json\r\n" +
      `content-length: ${Buffer.byteLength(body)}\r\n` +
      "connection: close\r\n\r\n" +
      body,
  );
}
