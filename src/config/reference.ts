// Generates the config reference (docs/config.md) and the editor JSON Schema (config/schema.json) from zod.
import * as z from "zod";
import { ConfigSchema } from "./schema.js";

type JsonSchema = {
  type?: string | string[];
  description?: string;
  default?: unknown;
  enum?: unknown[];
  const?: unknown;
  properties?: Record<string, JsonSchema>;
  additionalProperties?: JsonSchema | boolean;
  items?: JsonSchema;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  required?: string[];
  not?: JsonSchema;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  format?: string;
};

/** JSON Schema (draft 2020-12) of the config file as written (input side: defaults are optional). */
export function configJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(ConfigSchema, { io: "input", unrepresentable: "any" }) as Record<string, unknown>;
  return { ...schema, title: "Subsecond gateway config" };
}

const MAX_SAFE = Number.MAX_SAFE_INTEGER;

function typeOf(schema: JsonSchema): string {
  if (schema.not && Object.keys(schema.not).length === 0) return "not accepted";
  if (schema.const !== undefined) return JSON.stringify(schema.const);
  if (schema.enum) return schema.enum.map((value) => JSON.stringify(value)).join(" | ");
  const union = schema.anyOf ?? schema.oneOf;
  if (union) return union.map(typeOf).join(" or ");
  if (schema.type === "array") return `list of ${schema.items ? typeOf(schema.items) : "values"}`;
  if (schema.type === "object" && schema.additionalProperties && typeof schema.additionalProperties === "object" && !schema.properties) {
    return `map of ${typeOf(schema.additionalProperties)}`;
  }
  let type = Array.isArray(schema.type) ? schema.type.join(" or ") : (schema.type ?? "any");
  if (schema.format === "uri") type = "URL";
  const bounds: string[] = [];
  if (schema.exclusiveMinimum !== undefined) bounds.push(`> ${schema.exclusiveMinimum}`);
  if (schema.minimum !== undefined) bounds.push(`≥ ${schema.minimum}`);
  if (schema.maximum !== undefined && schema.maximum < MAX_SAFE) bounds.push(`≤ ${schema.maximum}`);
  return bounds.length > 0 ? `${type} (${bounds.join(", ")})` : type;
}

function defaultOf(schema: JsonSchema): string {
  if (schema.default === undefined) return "";
  return `\`${JSON.stringify(schema.default)}\``;
}

function escape(text: string): string {
  return text.replace(/\|/g, "\\|").replace(/\n/g, " ");
}

/** Rows for every key under `schema`, depth first, with dotted paths (`[]` for list items, `<name>` for map keys). */
function rows(schema: JsonSchema, path: string, required: boolean, out: string[]): void {
  if (path !== "") {
    const requirement = required && schema.default === undefined ? "yes" : "";
    out.push(`| \`${path}\` | ${escape(typeOf(schema))} | ${requirement} | ${defaultOf(schema)} | ${escape(schema.description ?? "")} |`);
  }
  if (schema.properties) {
    const requiredKeys = new Set(schema.required ?? []);
    for (const [key, child] of Object.entries(schema.properties)) rows(child, path ? `${path}.${key}` : key, requiredKeys.has(key), out);
  } else if (schema.type === "object" && schema.additionalProperties && typeof schema.additionalProperties === "object") {
    rows(schema.additionalProperties, `${path}.<name>`, false, out);
  } else if (schema.type === "array" && schema.items && schema.items.properties) {
    rows(schema.items, `${path}[]`, false, out);
  }
  for (const option of schema.anyOf ?? []) if (option.properties) rows(option, path, false, out);
}

/** The Markdown reference of every key, type, default, unit and meaning. */
export function configReferenceMarkdown(): string {
  const schema = configJsonSchema() as JsonSchema;
  const sections: string[] = [];
  for (const [key, child] of Object.entries(schema.properties ?? {})) {
    const out: string[] = [];
    rows(child, key, (schema.required ?? []).includes(key), out);
    sections.push(`## \`${key}\`\n\n${child.description ?? ""}\n\n| key | type | required | default | meaning |\n|---|---|---|---|---|\n${out.join("\n")}\n`);
  }
  return `# Config reference

<!-- Generated from src/config/schema.ts by \`npm run gen:config\`; do not edit by hand. -->

The gateway reads one YAML file (\`subsecond serve --config path\`, default \`config/gateway.yaml\`).
Keys are camelCase, the same in YAML and TypeScript. Durations are in milliseconds (\`…Ms\`),
prices in USD per million tokens. Unknown keys are errors. Secrets are never written in the file:
name the environment variable that holds them (\`apiKeyEnv\`, \`apiKeysEnv\`, \`adminKeysEnv\`).
Every route inherits \`defaults\` and may override any of them. Validate a file with
\`subsecond check <file>\`; editors complete and validate it with \`config/schema.json\`.

${sections.join("\n")}`;
}
