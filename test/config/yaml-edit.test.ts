import { describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { parse } from "yaml";
import { appendYamlListItem, flowText, setYamlValues, YamlEditError } from "../../src/config/yaml-edit.js";

const shipped = readFileSync(new URL("../../config/gateway.yaml", import.meta.url), "utf8");

/** The lines of `after` that differ from `before`, as [old, new] pairs (both texts must have as many lines). */
function changedLines(before: string, after: string): Array<[string, string]> {
  const a = before.split("\n");
  const b = after.split("\n");
  expect(b).toHaveLength(a.length);
  return a.flatMap((line, index) => (line === b[index] ? [] : [[line, b[index] as string] as [string, string]]));
}

describe("setYamlValues", () => {
  it("returns the text unchanged, byte for byte, when the values are already there (0.10 stays 0.10)", () => {
    const same = setYamlValues(shipped, [
      { path: ["models", 6, "pricePerMTok"], value: { input: 0.1, output: 0.15 } },
      { path: ["models", 0, "capabilities"], value: ["tools", "json", "vision"] },
      { path: ["server", "port"], value: 8080 },
    ]);
    expect(same).toBe(shipped);
  });

  it("rewrites only the scalars that differ, keeping comments and their alignment", () => {
    const edited = setYamlValues(shipped, [
      { path: ["models", 1, "pricePerMTok"], value: { input: 0.12, output: 0.28 } },
      { path: ["server", "port"], value: 9090 },
    ]);
    expect(changedLines(shipped, edited)).toEqual([
      ["  port: 8080               # env PORT overrides", "  port: 9090               # env PORT overrides"],
      [
        "  - { id: xiaomi/mimo-v2.5, provider: openrouter, rank: 2, score: 118, pricePerMTok: { input: 0.14, output: 0.28 }, contextTokens: 1048576 }",
        "  - { id: xiaomi/mimo-v2.5, provider: openrouter, rank: 2, score: 118, pricePerMTok: { input: 0.12, output: 0.28 }, contextTokens: 1048576 }",
      ],
    ]);
  });

  it("adds missing keys at the end of a flow map, and of a block map with the map's indentation", () => {
    const edited = setYamlValues(shipped, [
      { path: ["models", 7], value: { capabilities: ["tools", "json", "vision"], prior: { ttftMs: 420, tokensPerSecond: 85 } } },
      { path: ["server", "drainTimeoutMs"], value: 5000 },
    ]);
    expect(edited).toContain(
      "  - { id: bytedance-seed/seed-2.0-mini, provider: openrouter, rank: 8, score: 118, pricePerMTok: { input: 0.10, output: 0.40 }, contextTokens: 262144, capabilities: [tools, json, vision], prior: { ttftMs: 420, tokensPerSecond: 85 } }\n",
    );
    expect(edited).toContain("  bodyLimitBytes: 4194304\n  drainTimeoutMs: 5000\nauth:\n");
    const value = parse(edited) as { server: Record<string, unknown>; models: Array<Record<string, unknown>> };
    expect(value.server.drainTimeoutMs).toBe(5000);
    expect(value.models[7]?.prior).toEqual({ ttftMs: 420, tokensPerSecond: 85 });
  });

  it("adds a key to a block map that is a list item, under its first key", () => {
    const text = "models:\n  - id: a\n    rank: 1\n  - id: b\n";
    expect(setYamlValues(text, [{ path: ["models", 0, "prior"], value: { ttftMs: 1, tokensPerSecond: 2 } }])).toBe(
      "models:\n  - id: a\n    rank: 1\n    prior: { ttftMs: 1, tokensPerSecond: 2 }\n  - id: b\n",
    );
  });

  it("changes one key of a nested map without rewriting its siblings", () => {
    const text = "models:\n  - id: a\n    prior:\n      ttftMs: 400   # measured\n      tokensPerSecond: 120\n";
    expect(setYamlValues(text, [{ path: ["models", 0, "prior"], value: { ttftMs: 350, tokensPerSecond: 120 } }])).toBe(
      "models:\n  - id: a\n    prior:\n      ttftMs: 350   # measured\n      tokensPerSecond: 120\n",
    );
  });

  it("writes a changed block list as a flow list on its key's line", () => {
    const text = "a:\n  caps:\n    - tools\n    - json\n  n: 1\n";
    expect(setYamlValues(text, [{ path: ["a", "caps"], value: ["tools", "vision"] }])).toBe("a:\n  caps: [tools, vision]\n  n: 1\n");
  });

  it("edits JSON text (a flow map) and keeps it parseable", () => {
    const json = JSON.stringify({ models: [{ id: "a", pricePerMTok: { input: 1, output: 2 } }] });
    const edited = setYamlValues(json, [
      { path: ["models", 0, "pricePerMTok"], value: { input: 0.5, output: 2 } },
      { path: ["models", 0, "contextTokens"], value: 8192 },
    ]);
    expect(parse(edited)).toEqual({ models: [{ id: "a", pricePerMTok: { input: 0.5, output: 2 }, contextTokens: 8192 }] });
  });

  it("refuses sets that touch the same place, rather than guess their order", () => {
    expect(() =>
      setYamlValues(shipped, [
        { path: ["models", 7, "capabilities"], value: ["tools"] },
        { path: ["models", 7, "prior"], value: { ttftMs: 420, tokensPerSecond: 85 } },
      ]),
    ).toThrow(/same place/);
  });

  it("names the path that is missing", () => {
    expect(() => setYamlValues(shipped, [{ path: ["models", 99, "contextTokens"], value: 1 }])).toThrow(new YamlEditError("models[99]: not found"));
    expect(() => setYamlValues("a: [\n", [{ path: ["a"], value: 1 }])).toThrow(YamlEditError);
  });
});

describe("appendYamlListItem", () => {
  it("appends a flow-style line under the last item of a block list", () => {
    const edited = appendYamlListItem(shipped, ["models"], { id: "acme/mini:free", provider: "openrouter", rank: 16, score: 110 });
    expect(edited).toContain(
      '  - { id: stepfun/step-3.7-flash, provider: openrouter, rank: 15, score: 117, pricePerMTok: { input: 0.20, output: 1.15 }, contextTokens: 256000 }\n  - { id: "acme/mini:free", provider: openrouter, rank: 16, score: 110 }\ndefaults:\n',
    );
    expect(edited.replace('  - { id: "acme/mini:free", provider: openrouter, rank: 16, score: 110 }\n', "")).toBe(shipped);
  });

  it("appends to a flow list", () => {
    expect(appendYamlListItem('{"models":[{"id":"a"}]}', ["models"], { id: "b" })).toBe('{"models":[{"id":"a"}, { id: b }]}');
  });
});

describe("flowText", () => {
  it("quotes what would not read back as the same string", () => {
    expect(flowText(["tools", "true", "a b", "x:free", "0.5"])).toBe('[tools, "true", "a b", "x:free", "0.5"]');
    expect(flowText({ input: 0.15, output: 0.4 })).toBe("{ input: 0.15, output: 0.4 }");
  });
});
