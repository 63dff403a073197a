// The node:http server and the bounds on its client connections: how long a client may take to send a
// request, how long an idle keep-alive connection is kept, and how many connections are held at once.
import { randomUUID } from "node:crypto";
import { createServer, type RequestListener, type Server } from "node:http";
import type { Socket } from "node:net";
import type { Config } from "../config/schema.js";
import { GatewayError } from "../errors.js";
import { sendError } from "./respond.js";

export type ConnectionLimits = Pick<Config["server"], "headersTimeoutMs" | "requestTimeoutMs" | "keepAliveTimeoutMs" | "maxConnections">;

export interface GatewayServer {
  readonly server: Server;
  /** Applies new limits (a reload): to the timeouts of requests that start after it, and to new connections. */
  configure(limits: ConnectionLimits): void;
}

/** How long a connection beyond the cap may take to send its request before it is closed, in ms. */
const OVER_CAP_GRACE_MS = 1000;

/** How often node:http checks the header and request timeouts, at most, in ms (its default is 30 s). */
const CHECK_INTERVAL_MS = 1000;

/**
 * A server for `listener` within `limits`. node:http answers a request whose headers or whole request
 * are late with a 408 and closes the connection (`headersTimeout`, `requestTimeout`: they end when the
 * request has arrived, so a long streamed answer is not cut). A connection beyond `maxConnections` is
 * accepted only to be told why: a 503 in OpenAI's shape, then closed.
 */
export function createGatewayServer(listener: RequestListener, initial: ConnectionLimits): GatewayServer {
  let limits = initial;
  let open = 0;
  const overCap = new WeakSet<Socket>();
  const server = createServer({ connectionsCheckingInterval: Math.min(CHECK_INTERVAL_MS, initial.headersTimeoutMs / 2) }, (incoming, outgoing) => {
    if (!overCap.has(incoming.socket)) {
      listener(incoming, outgoing);
      return;
    }
    const error = new GatewayError(503, `The gateway holds its maximum of ${limits.maxConnections} connections (server.maxConnections); retry shortly.`, {
      type: "server_error",
      code: "too_many_connections",
      headers: { connection: "close", "retry-after": "1" },
    });
    sendError(outgoing, error, randomUUID());
  });
  server.on("connection", (socket: Socket) => {
    open++;
    socket.once("close", () => open--);
    if (open > limits.maxConnections) {
      overCap.add(socket);
      socket.setTimeout(OVER_CAP_GRACE_MS, () => socket.destroy());
    }
  });
  const configure = (next: ConnectionLimits): void => {
    limits = next;
    server.headersTimeout = next.headersTimeoutMs;
    server.requestTimeout = next.requestTimeoutMs;
    server.keepAliveTimeout = next.keepAliveTimeoutMs;
  };
  configure(initial);
  return { server, configure };
}
