// Client connections on raw sockets: uploads cut short, early refusals, slow headers, and the connection
// cap (issue 25, items 6 and 10).
import { afterEach, describe, expect, it } from "vitest";
import { connect, type Socket } from "node:net";
import { startFakeUpstream, streamOf, type FakeUpstream, type Script } from "../helpers/fake-upstream.js";
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

async function setup(extra: Record<string, unknown> = {}, env: Record<string, string> = {}, script: Script = () => ({ kind: "json" })) {
  upstream = await startFakeUpstream(script);
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

/** Writes `piece` every `everyMs` until the connection closes. */
function trickle(socket: Socket, piece: string, everyMs: number): void {
  const timer = setInterval(() => {
    if (socket.writable) socket.write(piece);
  }, everyMs);
  socket.once("close", () => clearInterval(timer));
}

/** When the connection closed, in ms after `since`; Infinity when it was still open after `waitMs`. */
async function closedWithin(client: RawClient, since: number, waitMs: number): Promise<number> {
  const at = await Promise.race([client.closed, sleep(waitMs).then(() => Number.POSITIVE_INFINITY)]);
  return at - since;
}

describe("connection bounds", () => {
  it("answers a slow unauthenticated upload with 401 and closes its connection at once", async () => {
    const { gateway } = await setup({ auth: { apiKeysEnv: "TEST_CLIENT_KEYS" } }, { TEST_CLIENT_KEYS: "client-key" });
    const client = await rawClient(gateway.url);
    const started = performance.now();
    client.socket.write(chatHead(1_000_000) + '{"model":"chat",');
    trickle(client.socket, "x".repeat(100), 50);
    expect(await closedWithin(client, started, 2000)).toBeLessThan(1000);
    expect(client.received()).toMatch(/^HTTP\/1\.1 401 /);
    expect(client.received()).toMatch(/connection: close/i);
    expect(client.received()).toContain('"code":"missing_api_key"');
  });

  it("keeps the connection of a refused request whose body had arrived", async () => {
    const { gateway } = await setup();
    const client = await rawClient(gateway.url);
    const body = '{"model":"chat","messages":"not a list"}';
    client.socket.write(chatHead(Buffer.byteLength(body)) + body);
    await sleep(300);
    expect(client.received()).toMatch(/^HTTP\/1\.1 400 /);
    expect(client.received()).not.toMatch(/connection: close/i);
    expect(client.socket.destroyed).toBe(false);
  });

  it("closes a connection whose headers trickle in past server.headersTimeoutMs, with a 408", async () => {
    const { gateway } = await setup({ server: { host: "127.0.0.1", port: 0, logLevel: "silent", headersTimeoutMs: 300, requestTimeoutMs: 600 } });
    const client = await rawClient(gateway.url);
    const started = performance.now();
    client.socket.write("POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\n");
    trickle(client.socket, "x-slow: 1\r\n", 50);
    const closedAfter = await closedWithin(client, started, 2000);
    expect(closedAfter).toBeGreaterThanOrEqual(250);
    expect(closedAfter).toBeLessThan(1000);
    expect(client.received()).toMatch(/^HTTP\/1\.1 408 /);
  });

  it("does not cut a streamed answer that lasts longer than server.requestTimeoutMs", async () => {
    const { gateway } = await setup(
      { server: { host: "127.0.0.1", port: 0, logLevel: "silent", headersTimeoutMs: 200, requestTimeoutMs: 300 } },
      {},
      (request) => ({ kind: "sse", steps: streamOf(request.model, ["a", "b", "c", "d", "e", "f", "g", "h"], 100) }),
    );
    let text = "";
    for await (const chunk of await gateway.client.chat.completions.create({ model: "chat", stream: true, messages: [{ role: "user", content: "hi" }] })) {
      text += chunk.choices[0]?.delta.content ?? "";
    }
    expect(text).toBe("abcdefgh");
  });

  it("answers a connection beyond server.maxConnections with a 503 in OpenAI's shape, and closes it", async () => {
    const { gateway } = await setup({ server: { host: "127.0.0.1", port: 0, logLevel: "silent", maxConnections: 2 } });
    const held = [await rawClient(gateway.url), await rawClient(gateway.url)];
    await sleep(50);
    const extra = await rawClient(gateway.url);
    const started = performance.now();
    extra.socket.write("GET /v1/models HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n");
    expect(await closedWithin(extra, started, 2000)).toBeLessThan(1000);
    expect(extra.received()).toMatch(/^HTTP\/1\.1 503 /);
    expect(extra.received()).toMatch(/connection: close/i);
    const body = JSON.parse(extra.received().slice(extra.received().indexOf("\r\n\r\n") + 4)) as { error: { code: string; type: string } };
    expect(body.error).toMatchObject({ code: "too_many_connections", type: "server_error" });

    const silent = await rawClient(gateway.url);
    expect(await closedWithin(silent, performance.now(), 2000)).toBeLessThan(1500);

    held[0]?.socket.destroy();
    await held[0]?.closed;
    await sleep(50);
    expect((await fetch(`${gateway.url}/v1/models`)).status).toBe(200);
  });
});
