// Client connections on raw sockets: uploads cut short, early refusals, slow headers, and the connection
// cap (issue 25, items 6 and 10).
import { afterEach, describe, expect, it } from "vitest";
import { connect, type Socket } from "node:net";
import { startFakeUpstream, type FakeUpstream } from "../helpers/fake-upstream.js";
import { capturingLogger, startTestGateway, testConfig, type TestGateway } from "../helpers/gateway.js";

let upstream: FakeUpstream | undefined;
let gateway: TestGateway | undefined;
const sockets: Socket[] = [];

afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.destroy();
  await gateway?.close();
  await upstream?.close();
  gateway = undefined;
  upstream = undefined;
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function setup(extra: Record<string, unknown> = {}, env: Record<string, string> = {}) {
  upstream = await startFakeUpstream(() => ({ kind: "json" }));
  const log = capturingLogger();
  gateway = await startTestGateway(testConfig(upstream.url, [{ id: "acme/a" }], extra), { env, logger: log.logger });
  return { gateway, log };
}

/** A raw connection to the gateway that keeps what it receives and when it closed. */
interface RawClient {
  readonly socket: Socket;
  received(): string;
  /** Resolves with performance.now() when the gateway closed the connection. */
  readonly closed: Promise<number>;
}

async function rawClient(url: string): Promise<RawClient> {
  const { port } = new URL(url);
  const socket = connect(Number(port), "127.0.0.1");
  sockets.push(socket);
  let text = "";
  socket.on("data", (data: Buffer) => (text += data.toString("utf8")));
  socket.on("error", () => undefined);
  const closed = new Promise<number>((resolve) => socket.on("close", () => resolve(performance.now())));
  await new Promise<void>((resolve) => socket.once("connect", () => resolve()));
  return { socket, received: () => text, closed };
}

const chatHead = (length: number, headers = "") =>
  `POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: ${length}\r\n${headers}\r\n`;

async function metricsText(url: string): Promise<string> {
  return (await fetch(`${url}/metrics`)).text();
}

describe("a client that aborts mid-upload", () => {
  it("is counted and logged once as its own cancellation, not as a gateway or upstream error", async () => {
    const { gateway, log } = await setup();
    const client = await rawClient(gateway.url);
    client.socket.write(chatHead(1000) + '{"model":"chat","messages":[');
    await sleep(100);
    client.socket.destroy();
    await client.closed;
    await sleep(100);
    gateway.gateway.flushBookkeeping();
    const metrics = await metricsText(gateway.url);
    expect(metrics).toMatch(/subsecond_requests_total\{[^}]*outcome="cancelled"[^}]*\} 1/);
    expect(metrics).not.toMatch(/subsecond_requests_total\{[^}]*outcome="(gateway_error|upstream_error|client_error)"/);
    const requestLines = log.lines.filter((line) => line.msg === "request");
    expect(requestLines).toHaveLength(1);
    expect(requestLines[0]).toMatchObject({ outcome: "cancelled", status: 499, level: 30 });
    expect(log.lines.filter((line) => (line.level as number) >= 50)).toEqual([]);
    expect(upstream?.requests).toHaveLength(0);
  });
});
