// Reads a YAML config file, validates it against the schema and compiles it; errors name field paths.
import { readFile } from "node:fs/promises";
import { createHash } from "node:crypto";
import { parseDocument } from "yaml";
import type * as z from "zod";
import { ConfigSchema } from "./schema.js";
import { compileConfig, ConfigCompileError, type CompiledConfig, type CompileIssue } from "./compile.js";

/** A config that cannot be used; `issues` lists every problem with its field path. */
export class ConfigError extends Error {
  readonly code = "config_invalid";
  constructor(
    readonly source: string,
    readonly issues: readonly CompileIssue[],
  ) {
    super(`${source}: ${issues.length} error${issues.length === 1 ? "" : "s"}\n${issues.map((i) => `  ${i.path}: ${i.message}`).join("\n")}`);
    this.name = "ConfigError";
  }
}

export interface LoadedConfig extends CompiledConfig {
  /** sha256 of the file's bytes, first 12 hex digits; exported as subsecond_config_info{hash}. */
  readonly hash: string;
  readonly source: string;
}

/** `models[3] (openai/gpt-5-nano).pricePerMTok.input`, `routes.realtime-chat.candidates[0]`. */
export function formatPath(path: readonly PropertyKey[], input: unknown): string {
  let out = "";
  let node: unknown = input;
  for (const key of path) {
    if (typeof key === "number") {
      out += `[${key}]`;
      const entry: unknown = Array.isArray(node) ? node[key] : undefined;
      const id = typeof entry === "object" && entry !== null && "id" in entry ? entry.id : undefined;
      if (typeof id === "string" && out.startsWith("models") && !out.includes(".")) out += ` (${id})`;
      node = entry;
    } else {
      const name = String(key);
      out += out === "" ? name : `.${name}`;
      node = typeof node === "object" && node !== null ? (node as Record<string, unknown>)[name] : undefined;
    }
  }
  return out === "" ? "(root)" : out;
}

function zodIssues(error: z.ZodError, input: unknown): CompileIssue[] {
  return error.issues.map((issue) => ({ path: formatPath(issue.path, input), message: issue.message }));
}

/** Validates and compiles an already-parsed document. Throws `ConfigError`. */
export function parseConfig(input: unknown, source: string, text = JSON.stringify(input)): LoadedConfig {
  const parsed = ConfigSchema.safeParse(input);
  if (!parsed.success) throw new ConfigError(source, zodIssues(parsed.error, input));
  try {
    const compiled = compileConfig(parsed.data);
    return { ...compiled, hash: createHash("sha256").update(text).digest("hex").slice(0, 12), source };
  } catch (error) {
    if (error instanceof ConfigCompileError) throw new ConfigError(source, error.issues);
    throw error;
  }
}

/** Parses YAML text (syntax errors are reported with line and column). Throws `ConfigError`. */
export function parseConfigText(text: string, source: string): LoadedConfig {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      source,
      doc.errors.map((error) => ({ path: error.linePos ? `line ${error.linePos[0].line}, column ${error.linePos[0].col}` : "(yaml)", message: error.message.split("\n")[0] ?? error.message })),
    );
  }
  return parseConfig(doc.toJS(), source, text);
}

/** Reads the whole file, then parses it. Throws `ConfigError` (unreadable files included). */
export async function loadConfigFile(path: string): Promise<LoadedConfig> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    throw new ConfigError(path, [{ path: "(file)", message: error instanceof Error ? error.message : String(error) }]);
  }
  return parseConfigText(text, path);
}
