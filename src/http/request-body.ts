// Reads a request body from the socket, enforcing the size limit (413) without buffering past it.
import type { IncomingMessage } from "node:http";
import { GatewayError } from "../errors.js";

/** The client closed the connection before its body had arrived: its cancellation, not a fault. */
export class UploadAbortedError extends Error {
  readonly code = "upload_aborted";
  constructor() {
    super("the client closed the connection during the upload");
    this.name = "UploadAbortedError";
  }
}

/** Requests whose body was taken whole, though the parser may not have marked them complete yet. */
const taken = new WeakSet<IncomingMessage>();

/**
 * Whether part of the request's body may still be on its way: it has one (RFC 9112 §6.3), the parser has
 * not seen its end, and `readRequestBody` has not taken it whole.
 */
export function bodyUnread(incoming: IncomingMessage): boolean {
  const hasBody = Number(incoming.headers["content-length"]) > 0 || incoming.headers["transfer-encoding"] !== undefined;
  return hasBody && !incoming.complete && !taken.has(incoming);
}

/** The body, whole; throws a 413 GatewayError past `limitBytes`, `UploadAbortedError` when the client leaves first. */
export async function readRequestBody(incoming: IncomingMessage, limitBytes: number): Promise<Buffer> {
  const declared = Number(incoming.headers["content-length"]);
  if (declared > limitBytes) {
    throw new GatewayError(413, `Request body of ${declared} bytes exceeds the limit of ${limitBytes} bytes.`, { code: "request_too_large" });
  }
  // The handler runs while Node's parser is still on the headers; one microtask later a small body that
  // came in the same packet is buffered whole. Take it then, rather than waiting turns for 'data' and 'end'.
  await undefined;
  if (declared > 0 && incoming.readableLength === declared) {
    const body: unknown = incoming.read();
    if (Buffer.isBuffer(body)) {
      // The parser has not marked the message complete yet, and a paused stream would then never emit
      // 'end' or 'close'. Flowing, it ends as soon as the parser gets there.
      incoming.resume();
      taken.add(incoming);
      return body;
    }
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limitBytes) {
        cleanup();
        incoming.resume();
        reject(new GatewayError(413, `Request body exceeds the limit of ${limitBytes} bytes.`, { code: "request_too_large" }));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      cleanup();
      taken.add(incoming);
      resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size));
    };
    // Node reports a connection closed mid-body as an "aborted" error, then 'close'.
    const onAborted = () => {
      cleanup();
      reject(new UploadAbortedError());
    };
    const cleanup = () => {
      incoming.off("data", onData);
      incoming.off("end", onEnd);
      incoming.off("error", onAborted);
      incoming.off("close", onAborted);
    };
    incoming.on("data", onData);
    incoming.on("end", onEnd);
    incoming.on("error", onAborted);
    incoming.on("close", onAborted);
  });
}
