import { describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { configJsonSchema, configReferenceMarkdown } from "../../src/config/reference.js";

const read = (path: string) => readFileSync(new URL(`../../${path}`, import.meta.url), "utf8");

describe("generated config reference", () => {
  it("config/schema.json is up to date with the zod schema (run `npm run gen:config`)", () => {
    expect(read("config/schema.json")).toBe(`${JSON.stringify(configJsonSchema(), null, 2)}\n`);
  });

  it("docs/config.md is up to date with the zod schema (run `npm run gen:config`)", () => {
    expect(read("docs/config.md")).toBe(configReferenceMarkdown());
  });

  it("documents every key with its type, default and unit", () => {
    const doc = configReferenceMarkdown();
    expect(doc).toContain(
      "| `defaults.deadlines.firstTokenMs` | integer (> 0) |  | `1600` | Streaming: per-attempt limit to the first content chunk, in milliseconds |",
    );
    expect(doc).toContain("`models[].pricePerMTok.input`");
    expect(doc).toContain("`providers.<name>.apiKeyEnv`");
    expect(doc).toContain("`routes.<name>.candidates`");
  });

  it("ships YAML configs that point editors at the schema", () => {
    expect(read("config/gateway.yaml").split("\n")[0]).toBe("# yaml-language-server: $schema=./schema.json");
  });
});
