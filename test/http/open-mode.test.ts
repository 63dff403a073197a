// Open mode refuses what a web page could send it: requests under a foreign host name (DNS rebinding),
// cross-origin requests, and POSTs that are not JSON; with keys configured, curl users keep working
// (issue 25, item 11).
import { afterEach, describe, expect, it } from "vitest";
import { request, type IncomingMessage } from "node:http";
import { createOpenRequestCheck } from "../../src/http/open-mode.js";
import { startFakeUpstream, type FakeUpstream } from "../helpers/fake-upstream.js";
import { startTestGateway, testConfig, type TestGateway } from "../helpers/gateway.js";

let upstream: FakeUpstream | undefined;
let gateway: TestGateway | undefined;

afterEach(async () => {
  await gateway?.close();
  await upstream?.close();
  gateway = undefined;
  upstream = undefined;
});

async function setup(extra: Record<string, unknown> = {}, env: Record<string, string> = {}) {
  upstream = await startFakeUpstream(() => ({ kind: "json" }));
  gateway = await startTestGateway(testConfig(upstream.url, [{ id: "acme/a" }], extra), { env });
  return gateway;
}

const CHAT_BODY = JSON.stringify({ model: "chat", messages: [{ role: "user", content: "hi" }] });

/** A request with headers fetch() would not let a test set (`host`), and none it would add. */
function send(method: "GET" | "POST", path: string, headers: Record<string, string>, body?: string): Promise<{ status: number; code: string | null }> {
  const { port } = new URL(gateway?.url as string);
  return new Promise((resolve, reject) => {
    const outgoing = request({ host: "127.0.0.1", port, method, path, headers: { host: `127.0.0.1:${port}`, ...headers } }, (incoming) => {
      let text = "";
      incoming.on("data", (data: Buffer) => (text += data.toString()));
      incoming.on("end", () => {
        const code = incoming.statusCode === 200 ? null : ((JSON.parse(text) as { error: { code: string | null } }).error.code ?? null);
        resolve({ status: incoming.statusCode ?? 0, code });
      });
    });
    outgoing.on("error", reject);
    outgoing.end(body);
  });
}

const json = { "content-type": "application/json" };

describe("open mode (no client keys)", () => {
  it("serves its own host names: loopback names and the bind address", async () => {
    const { port } = new URL((await setup()).url);
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`, "LOCALHOST"]) {
      expect((await send("POST", "/v1/chat/completions", { ...json, host }, CHAT_BODY)).status).toBe(200);
    }
    expect((await send("POST", "/v1/chat/completions", { ...json, origin: `http://localhost:${port}`, host: `localhost:${port}` }, CHAT_BODY)).status).toBe(
      200,
    );
  });

  it("refuses another host name (DNS rebinding) on chat, models and admin, but not on the probes", async () => {
    await setup();
    const host = { host: "rebind.evil.example" };
    expect(await send("POST", "/v1/chat/completions", { ...json, ...host }, CHAT_BODY)).toEqual({ status: 403, code: "host_not_allowed" });
    expect(await send("GET", "/v1/models", host)).toEqual({ status: 403, code: "host_not_allowed" });
    expect(await send("POST", "/admin/reload", { ...json, ...host })).toEqual({ status: 403, code: "host_not_allowed" });
    expect(await send("GET", "/admin/routes", host)).toEqual({ status: 403, code: "host_not_allowed" });
    expect((await send("GET", "/healthz", host)).status).toBe(200);
    expect(upstream?.requests).toHaveLength(0);
  });

  it("refuses POSTs a web page can send cross-site: not JSON, or from another origin", async () => {
    await setup();
    for (const contentType of ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"]) {
      expect(await send("POST", "/v1/chat/completions", { "content-type": contentType }, CHAT_BODY)).toEqual({ status: 415, code: "unsupported_media_type" });
    }
    expect(await send("POST", "/v1/chat/completions", {}, CHAT_BODY)).toEqual({ status: 415, code: "unsupported_media_type" });
    expect(await send("POST", "/admin/reload", {})).toEqual({ status: 415, code: "unsupported_media_type" });
    expect(await send("POST", "/admin/reload", { "content-type": "text/plain" })).toEqual({ status: 415, code: "unsupported_media_type" });
    expect(await send("POST", "/v1/chat/completions", { ...json, origin: "http://evil.example" }, CHAT_BODY)).toEqual({
      status: 403,
      code: "cross_origin_refused",
    });
    expect(await send("POST", "/admin/reload", { ...json, origin: "null" })).toEqual({ status: 403, code: "cross_origin_refused" });
    // Past the checks, a reload without a config file is refused for its own reason.
    expect(await send("POST", "/admin/reload", { "content-type": "application/json; charset=utf-8" })).toEqual({ status: 400, code: "config_invalid" });
    expect(upstream?.requests).toHaveLength(0);
  });
});

describe("with client keys", () => {
  it("serves curl users who leave out the content type, under any host name", async () => {
    await setup({ auth: { apiKeysEnv: "TEST_CLIENT_KEYS" } }, { TEST_CLIENT_KEYS: "client-key" });
    const auth = { authorization: "Bearer client-key" };
    expect((await send("POST", "/v1/chat/completions", auth, CHAT_BODY)).status).toBe(200);
    expect(
      (await send("POST", "/v1/chat/completions", { ...auth, "content-type": "application/x-www-form-urlencoded", host: "gateway.internal" }, CHAT_BODY))
        .status,
    ).toBe(200);
    expect(await send("POST", "/v1/chat/completions", { host: "rebind.evil.example" }, CHAT_BODY)).toEqual({ status: 401, code: "missing_api_key" });
  });
});

describe("the bind address", () => {
  const refusal = (bindHost: string, host: string) => {
    try {
      createOpenRequestCheck(bindHost)({ method: "GET", headers: { host } } as IncomingMessage);
      return undefined;
    } catch (error) {
      return (error as { code?: string }).code;
    }
  };

  it("is served besides the loopback names, and a wildcard bind serves IP literals, never DNS names", () => {
    expect(refusal("192.168.1.5", "192.168.1.5:8080")).toBeUndefined();
    expect(refusal("192.168.1.5", "10.0.0.1:8080")).toBe("host_not_allowed");
    expect(refusal("gateway.lan", "gateway.lan")).toBeUndefined();
    expect(refusal("0.0.0.0", "10.0.0.1:8080")).toBeUndefined();
    expect(refusal("::", "[fd00::1]:8080")).toBeUndefined();
    expect(refusal("0.0.0.0", "rebind.evil.example:8080")).toBe("host_not_allowed");
    expect(refusal("::1", "[::1]:8080")).toBeUndefined();
    expect(refusal("127.0.0.1", "")).toBe("host_not_allowed");
  });
});
