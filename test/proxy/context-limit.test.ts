import { describe, expect, it } from "vitest";
import { statedContextLimit } from "../../src/proxy/context-limit.js";

describe("statedContextLimit", () => {
  it("reads the window from the ways providers state it", () => {
    const cases: [string, number][] = [
      ["This model's maximum context length is 8192 tokens. However, your messages resulted in 9000 tokens.", 8192],
      ["This endpoint's maximum context length is 131,072 tokens. However, you requested about 140,000 tokens.", 131072],
      ["prompt is too long: 210000 tokens > 200000 maximum", 200000],
      ["Prompt contains 40000 tokens and 0 draft tokens, too large for model with 32768 maximum context length", 32768],
      ["the request (5000 tokens) exceeds the available context size (4096 tokens), try increasing it", 4096],
      ["The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).", 1048576],
      ["Input exceeds the context window of 16384 tokens", 16384],
    ];
    for (const [message, tokens] of cases) expect(statedContextLimit(message), message).toBe(tokens);
  });

  it("finds none where the message states no limit, or only the request's size", () => {
    expect(statedContextLimit("context_length_exceeded")).toBeUndefined();
    expect(statedContextLimit("Please reduce the length of the messages.")).toBeUndefined();
    expect(statedContextLimit("Your context length of 9000 tokens is too long")).toBeUndefined();
  });
});
