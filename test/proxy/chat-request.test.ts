import { describe, expect, it } from "vitest";
import { estimateTokensByCharacters, parseChatRequest, profileRequest, upstreamBody } from "../../src/proxy/chat-request.js";
import { GatewayError } from "../../src/errors.js";

const ask = { model: "chat", messages: [{ role: "user", content: "hi" }] };
/** server.jsonDepthLimit's default. */
const DEPTH_LIMIT = 128;

function rejection(body: unknown): GatewayError {
  try {
    parseChatRequest(Buffer.from(typeof body === "string" ? body : JSON.stringify(body)), DEPTH_LIMIT);
  } catch (error) {
    if (error instanceof GatewayError) return error;
    throw error;
  }
  throw new Error(`accepted ${JSON.stringify(body)}`);
}

describe("parseChatRequest", () => {
  it("keeps every field, the ones it does not read included", () => {
    const body = {
      ...ask,
      stream: true,
      stream_options: { include_usage: false, future_option: 1 },
      max_tokens: 64,
      max_completion_tokens: null,
      models: ["a/b", "c/d"],
      tools: [],
      functions: null,
      response_format: { type: "json_schema", json_schema: { name: "x" } },
      temperature: 0.2,
      user: "u-1",
    };
    expect(parseChatRequest(Buffer.from(JSON.stringify(body)), DEPTH_LIMIT)).toEqual(body);
  });

  it.each([
    ["{not json", null, "invalid_json"],
    ["[1, 2]", null, "invalid_json"],
    [{ messages: ask.messages }, "model", "invalid_value"],
    [{ ...ask, model: "" }, "model", "invalid_value"],
    [{ ...ask, model: 7 }, "model", "invalid_value"],
    [{ model: "chat" }, "messages", "invalid_value"],
    [{ ...ask, messages: [] }, "messages", "invalid_value"],
    [{ ...ask, messages: "hi" }, "messages", "invalid_value"],
    [{ ...ask, messages: [...ask.messages, "hi"] }, "messages[1]", "invalid_value"],
    [{ ...ask, messages: [{ content: "hi" }] }, "messages[0].role", "invalid_value"],
    [{ ...ask, stream: "yes" }, "stream", "invalid_value"],
    [{ ...ask, stream_options: true }, "stream_options", "invalid_value"],
    [{ ...ask, stream_options: { include_usage: "yes" } }, "stream_options.include_usage", "invalid_value"],
    [{ ...ask, max_tokens: -3 }, "max_tokens", "invalid_value"],
    [{ ...ask, max_tokens: 1.5 }, "max_tokens", "invalid_value"],
    [{ ...ask, max_completion_tokens: "64" }, "max_completion_tokens", "invalid_value"],
    [{ ...ask, models: null }, "models", "invalid_value"],
    [{ ...ask, models: [] }, "models", "invalid_value"],
    [{ ...ask, models: Array.from({ length: 11 }, (_, i) => `m/${i}`) }, "models", "invalid_value"],
    [{ ...ask, models: ["a/b", ""] }, "models[1]", "invalid_value"],
    [{ ...ask, tools: {} }, "tools", "invalid_value"],
    [{ ...ask, functions: "f" }, "functions", "invalid_value"],
    [{ ...ask, response_format: "json" }, "response_format", "invalid_value"],
    [{ ...ask, response_format: {} }, "response_format.type", "invalid_value"],
  ])("rejects %j with a 400 naming %s", (body, param, code) => {
    const error = rejection(body);
    expect(error.status).toBe(400);
    expect(error.body().error).toMatchObject({ type: "invalid_request_error", param, code });
    if (param !== null) expect(error.message).toContain(`'${param}'`);
  });
});

describe("nesting depth", () => {
  /** `depth` arrays, one inside the other. */
  const nested = (depth: number) => `${"[".repeat(depth)}${"]".repeat(depth)}`;
  const bodyWith = (member: string) => Buffer.from(`{"model":"chat","messages":[{"role":"user","content":"hi"}],${member}}`);
  const refusal = (body: Buffer, limit: number): GatewayError => {
    try {
      parseChatRequest(body, limit);
    } catch (error) {
      if (error instanceof GatewayError) return error;
      throw error;
    }
    throw new Error("accepted");
  };

  it("refuses a body nested deeper than the limit with a 400 naming the member it is in", () => {
    const tools = refusal(bodyWith(`"tools":${nested(10_000)}`), DEPTH_LIMIT);
    expect(tools.status).toBe(400);
    expect(tools.body().error).toEqual({
      message: "The request body nests arrays and objects more than 128 levels deep (in 'tools').",
      type: "invalid_request_error",
      param: "tools",
      code: "json_too_deep",
    });
    const toolCalls = refusal(Buffer.from(`{"model":"chat","messages":[{"role":"assistant","tool_calls":${nested(10_000)}}]}`), DEPTH_LIMIT);
    expect(toolCalls.body().error).toMatchObject({ param: "messages", code: "json_too_deep" });
    expect(refusal(Buffer.from(nested(200)), DEPTH_LIMIT).body().error).toMatchObject({ param: null, code: "json_too_deep" });
  });

  it("counts the body's object as level 1, and brackets inside strings not at all", () => {
    // The body's object, then 6 arrays: 7 levels.
    expect(parseChatRequest(bodyWith(`"metadata":${nested(6)}`), 7).metadata).toEqual([[[[[[]]]]]]);
    expect(refusal(bodyWith(`"metadata":${nested(7)}`), 7).param).toBe("metadata");
    const content = `[{"\\":"\\"{[${"[".repeat(50)}"}]`;
    expect(parseChatRequest(Buffer.from(`{"model":"chat","messages":[{"role":"user","content":${JSON.stringify(content)}}]}`), 8).messages[0]?.content).toBe(
      content,
    );
  });

  it("refuses a 4 MB nested body without parsing it", () => {
    // JSON.parse alone spent about a second on this body, while every other client waited.
    const body = bodyWith(`"metadata":${nested(2_000_000)}`);
    const started = performance.now();
    expect(refusal(body, DEPTH_LIMIT).code).toBe("json_too_deep");
    expect(performance.now() - started).toBeLessThan(100);
  });
});

describe("upstreamBody", () => {
  it("rewrites the model, drops `models`, asks for usage on streams and keeps everything else", () => {
    const raw = Buffer.from(JSON.stringify({ ...ask, models: ["chat", "a/b"], stream: true, stream_options: { future: 1 }, temperature: 0 }));
    const request = parseChatRequest(raw, DEPTH_LIMIT);
    const sent = JSON.parse(upstreamBody(raw, request, "upstream-id").toString("utf8")) as Record<string, unknown>;
    expect(sent).toEqual({ model: "upstream-id", messages: ask.messages, stream: true, stream_options: { future: 1, include_usage: true }, temperature: 0 });
    expect(request.model).toBe("chat");
    expect(request.models).toEqual(["chat", "a/b"]);
    const plain = Buffer.from(JSON.stringify(ask));
    expect(JSON.parse(upstreamBody(plain, parseChatRequest(plain, DEPTH_LIMIT), "x").toString("utf8"))).toEqual({ ...ask, model: "x" });
  });
});

describe("upstreamBody on the client's bytes", () => {
  /** What the upstream must receive, computed from the parsed body alone. */
  function expected(raw: Buffer, model: string): Record<string, unknown> {
    const body = JSON.parse(raw.toString("utf8")) as Record<string, unknown>;
    delete body.models;
    body.model = model;
    if (body.stream === true) body.stream_options = { ...(body.stream_options as object | null), include_usage: true };
    return body;
  }
  const sent = (raw: Buffer, model = "up") => upstreamBody(raw, parseChatRequest(raw, DEPTH_LIMIT), model).toString("utf8");

  it("agrees with the parsed body for members in any order, spacing and position", () => {
    // A small deterministic generator: every order of the members that matter, three spacings.
    const members: [string, unknown][] = [
      ["model", "chat"],
      ["messages", [{ role: "user", content: 'a "model": "b" \\ } ] {', name: "x" }]],
      ["models", ["chat", "acme/x"]],
      ["stream", true],
      ["stream_options", { include_usage: false, extra: [1, { a: null }] }],
      ["logit_bias", { "50256": -100 }],
      ["temperature", 0.5],
    ];
    let checked = 0;
    for (let rotate = 0; rotate < members.length; rotate++) {
      for (const drop of [-1, 2, 3, 4]) {
        for (const space of ["", " ", "\n\t "]) {
          const chosen = [...members.slice(rotate), ...members.slice(0, rotate)].filter(([key]) => key !== members[drop]?.[0]);
          const raw = Buffer.from(
            `${space}{${space}${chosen.map(([key, value]) => `"${key}"${space}:${space}${JSON.stringify(value)}`).join(`${space},${space}`)}${space}}${space}`,
          );
          const out = sent(raw);
          expect(JSON.parse(out), out).toEqual(expected(raw, "up"));
          // Members the gateway does not rewrite leave as they came.
          expect(out).toContain(`"messages"${space}:${space}${JSON.stringify(members[1]?.[1])}`);
          checked++;
        }
      }
    }
    expect(checked).toBe(84);
  });

  it("re-serialises a body whose bytes say more than the parsed object: repeated or escaped keys, broken UTF-8", () => {
    // JSON.parse keeps the last of two equal keys; a provider's parser may keep the first.
    const repeated = Buffer.from('{"model":"chat","temperature":2,"messages":[{"role":"user","content":"hi"}],"temperature":0.5}');
    expect(sent(repeated)).toBe('{"model":"up","temperature":0.5,"messages":[{"role":"user","content":"hi"}]}');
    const escaped = Buffer.from('{"model":"chat","messages":[{"role":"user","content":"hi"}],"mod\\u0065ls":["chat"],"stream":true}');
    expect(JSON.parse(sent(escaped))).toEqual({
      model: "up",
      messages: [{ role: "user", content: "hi" }],
      stream: true,
      stream_options: { include_usage: true },
    });
    const broken = Buffer.concat([Buffer.from('{"model":"chat","messages":[{"role":"user","content":"a'), Buffer.from([0xff]), Buffer.from('b"}]}')]);
    expect(sent(broken)).toBe('{"model":"up","messages":[{"role":"user","content":"a\uFFFDb"}]}');
  });
});

describe("estimateTokensByCharacters", () => {
  const message = { role: "user", content: "hi" };

  it("counts tools and tool calls as the characters of their compact JSON", () => {
    const tools = [
      {
        type: "function",
        function: {
          name: "f",
          strict: true,
          parameters: { type: "object", properties: {}, required: [], minimum: -1.5, default: null, enum: [1, 2e21, false] },
        },
      },
      { type: "function", function: { name: "g", parameters: { type: "object", properties: { nested: { type: "array", items: { type: "string" } } } } } },
    ];
    const toolCalls = [{ id: "call_1", type: "function", function: { name: "f", arguments: "{}" } }];
    const request = { model: "chat", messages: [message, { role: "assistant", tool_calls: toolCalls }], tools };
    const characters = 2 + JSON.stringify(toolCalls).length + JSON.stringify(tools).length;
    expect(estimateTokensByCharacters(request)).toBe(Math.ceil(characters / 4) + 4 * 2);
  });

  it("estimates tools and tool calls of any depth", () => {
    // Built here, not parsed from a body: the depth limit does not apply to a pluggable estimator's input.
    let deep: unknown[] = [];
    for (let level = 1; level < 100_000; level++) deep = [deep];
    const request = { model: "chat", messages: [message, { role: "assistant", tool_calls: deep }], tools: deep };
    expect(estimateTokensByCharacters(request)).toBe(Math.ceil((2 + 2 * 2 * 100_000) / 4) + 4 * 2);
  });
});

describe("profileRequest", () => {
  const parse = (body: unknown) => parseChatRequest(Buffer.from(JSON.stringify(body)), DEPTH_LIMIT);

  it("counts legacy functions and images in the estimate and names the capabilities they need", () => {
    const plain = profileRequest(parse(ask), estimateTokensByCharacters);
    expect([...plain.needs]).toEqual([]);
    const functions = [
      { name: "lookup", description: "Looks a word up in the dictionary.", parameters: { type: "object", properties: { word: { type: "string" } } } },
    ];
    const withFunctions = profileRequest(parse({ ...ask, functions }), estimateTokensByCharacters);
    expect([...withFunctions.needs]).toEqual(["tools"]);
    expect(withFunctions.promptTokens).toBe(Math.ceil((ask.messages[0]!.content.length + JSON.stringify(functions).length) / 4) + 4);
    const image = {
      role: "user",
      content: [
        { type: "text", text: "hi" },
        { type: "image_url", image_url: { url: "https://example.com/a.png" } },
      ],
    };
    const withImage = profileRequest(parse({ ...ask, messages: [image] }), estimateTokensByCharacters);
    expect([...withImage.needs]).toEqual(["vision"]);
    expect(withImage.promptTokens).toBe(Math.ceil(2 / 4) + 4 + 765);
  });
});
