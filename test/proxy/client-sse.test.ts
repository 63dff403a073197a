import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { GatewayError } from "../../src/errors.js";
import { SseWriter } from "../../src/proxy/client-sse.js";

let server: Server | undefined;
afterEach(async () => {
  server?.closeAllConnections();
  await new Promise((resolve) => server?.close(resolve) ?? resolve(undefined));
  server = undefined;
});

/** Serves one request with `script`, and returns what the client received. */
async function exchange(script: (outgoing: ServerResponse) => void): Promise<{ response: IncomingMessage; body: string }> {
  server = createServer((_incoming, outgoing) => script(outgoing));
  await new Promise<void>((resolve) => server?.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return new Promise((resolve, reject) => {
    request({ host: "127.0.0.1", port, path: "/" }, (response) => {
      let body = "";
      response.setEncoding("utf8");
      response.on("data", (chunk: string) => (body += chunk));
      response.on("end", () => resolve({ response, body }));
    })
      .on("error", reject)
      .end();
  });
}

const noFlow = { onBlocked() {}, onDrain() {} };

describe("SseWriter", () => {
  it("holds events until the commit, then sends the headers, the held events and what follows", async () => {
    const read = Buffer.from('data: {"role":"assistant"}\n\ndata: {"content":"Hi"}\n\n');
    const { response, body } = await exchange((outgoing) => {
      const writer = new SseWriter(outgoing, noFlow, 5000);
      writer.forward(read, 0, 27);
      writer.flush();
      expect(writer.heldBytes).toBe(27);
      expect(outgoing.headersSent).toBe(false);
      writer.commit({ "x-subsecond-model": "m1" });
      writer.forward(read, 27, read.length);
      writer.flush();
      writer.writeDone();
      writer.end();
    });
    expect(response.statusCode).toBe(200);
    expect(response.headers["content-type"]).toBe("text/event-stream; charset=utf-8");
    expect(response.headers["x-subsecond-model"]).toBe("m1");
    expect(body).toBe(`${read.toString()}data: [DONE]\n\n`);
  });

  it("merges ranges that continue one another and keeps gaps out", async () => {
    const read = Buffer.from("data: a\n\ndata: usage\n\ndata: b\n\n");
    const { body } = await exchange((outgoing) => {
      const writer = new SseWriter(outgoing, noFlow, 5000);
      writer.commit({});
      writer.forward(read, 0, 9);
      writer.forward(read, 22, read.length);
      writer.flush();
      writer.end();
    });
    expect(body).toBe("data: a\n\ndata: b\n\n");
  });

  it("ends a stream with an error event in OpenAI's shape and no [DONE]", async () => {
    const { body } = await exchange((outgoing) => {
      const writer = new SseWriter(outgoing, noFlow, 5000);
      writer.commit({});
      writer.writeError(new GatewayError(502, "The upstream stream was cut before it finished.", { code: "stream_cut" }));
      writer.end();
    });
    expect(body).toBe(
      'data: {"error":{"message":"The upstream stream was cut before it finished.","type":"server_error","param":null,"code":"stream_cut"}}\n\n',
    );
  });

  it("tells its attempt once when the client's buffer is full, and again when it drains", async () => {
    const events: string[] = [];
    const chunk = Buffer.alloc(1 << 20, 97);
    const { body } = await exchange((outgoing) => {
      const writer = new SseWriter(
        outgoing,
        {
          onBlocked: () => events.push("blocked"),
          onDrain: () => {
            events.push("drain");
            writer.end();
          },
        },
        5000,
      );
      writer.commit({});
      for (let i = 0; i < 4; i++) {
        writer.forward(chunk, 0, chunk.length);
        writer.flush();
      }
    });
    expect(events).toEqual(["blocked", "drain"]);
    expect(body.length).toBe(4 * chunk.length);
  });
});
