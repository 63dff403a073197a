// No configured secret reaches a client or a log line, even when an upstream echoes it (issue 25, item 3).
import { afterEach, describe, expect, it } from "vitest";
import { chunk, startFakeUpstream, type FakeUpstream, type ReceivedRequest, type Script } from "../helpers/fake-upstream.js";
import { PROVIDER_KEY, capturingLogger, startTestGateway, testConfig, type TestGateway } from "../helpers/gateway.js";

const CLIENT_KEY = "sk-gateway-client-4f1c9e";
const ADMIN_KEY = "sk-gateway-admin-77d0a2";
const OTHER_CLIENT_KEY = "sk-gateway-second-client-b93e";

let upstream: FakeUpstream | undefined;
let gateway: TestGateway | undefined;

afterEach(async () => {
  await gateway?.close();
  await upstream?.close();
  gateway = undefined;
  upstream = undefined;
});

/** What a misconfigured proxy says: the request's Authorization header, and keys it saw elsewhere, bare. */
const echo = (request: ReceivedRequest) =>
  `invalid request; got Authorization: ${String(request.headers.authorization)} (key ${PROVIDER_KEY}); seen: ${CLIENT_KEY}, ${OTHER_CLIENT_KEY}, ${ADMIN_KEY}`;

async function setup(script: Script) {
  upstream = await startFakeUpstream(script);
  const log = capturingLogger();
  gateway = await startTestGateway(
    testConfig(upstream.url, [{ id: "acme/echo" }], { auth: { apiKeysEnv: "TEST_CLIENT_KEYS", adminKeysEnv: "TEST_ADMIN_KEYS" } }),
    {
      env: { TEST_CLIENT_KEYS: `${CLIENT_KEY}, ${OTHER_CLIENT_KEY}`, TEST_ADMIN_KEYS: ADMIN_KEY },
      clientKey: CLIENT_KEY,
      logger: log.logger,
    },
  );
  return { gateway, log };
}

/** A raw chat call, so the test reads every byte the client gets. */
async function post(stream: boolean): Promise<{ status: number; text: string }> {
  const response = await fetch(`${gateway?.url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${CLIENT_KEY}` },
    body: JSON.stringify({ model: "chat", stream, messages: [{ role: "user", content: "hi" }] }),
  });
  return { status: response.status, text: await response.text() };
}

function expectNoSecret(text: string): void {
  for (const secret of [PROVIDER_KEY, CLIENT_KEY, OTHER_CLIENT_KEY, ADMIN_KEY]) expect(text).not.toContain(secret);
}

describe("secrets in upstream text", () => {
  it.each([
    ["a 5xx", 500, 502],
    ["a 400", 400, 400],
    ["a 200 whose body is an error", 200, 502],
  ])("scrubs every configured key from %s relayed as a JSON error, and from the log", async (_name, status, expected) => {
    const { gateway, log } = await setup((request) => ({ kind: "error", status, body: { error: { message: echo(request), type: "invalid_request_error" } } }));
    // A 200 answering a stream is read as SSE; its in-band errors are the next test's.
    for (const stream of status === 200 ? [false] : [false, true]) {
      const answer = await post(stream);
      expect(answer.status).toBe(expected);
      expect(answer.text).toContain("Authorization: Bearer [redacted] (key [redacted]); seen: [redacted], [redacted], [redacted]");
      expectNoSecret(answer.text);
    }
    gateway.gateway.flushBookkeeping();
    expect(log.lines.length).toBeGreaterThan(0);
    expectNoSecret(JSON.stringify(log.lines));
  });

  it("scrubs them from an in-band error event after content, and from one before content", async () => {
    let calls = 0;
    const { gateway, log } = await setup((request) => {
      calls++;
      const error = { error: { message: echo(request), type: "server_error" } };
      const steps = calls === 1 ? [chunk(request.model, { role: "assistant", content: "" }), error] : [chunk(request.model, { content: "partial" }), error];
      return { kind: "sse", steps, end: "close" };
    });
    const before = await post(true);
    expect(before.status).toBe(502);
    expect(before.text).toContain("Bearer [redacted]");
    expectNoSecret(before.text);

    const after = await post(true);
    expect(after.status).toBe(200);
    expect(after.text).toContain("partial");
    expect(after.text).toContain("Authorization: Bearer [redacted] (key [redacted])");
    expectNoSecret(after.text);
    gateway.gateway.flushBookkeeping();
    expectNoSecret(JSON.stringify(log.lines));
  });
});
