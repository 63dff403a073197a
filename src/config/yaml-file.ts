// Reading and validating YAML files with zod, with every problem reported by field path (config, sim profiles).
import { readFile } from "node:fs/promises";
import { parseDocument } from "yaml";
import type * as z from "zod";

/** One problem in a file: where (a field path, or a line for YAML syntax) and what. */
export interface FileIssue {
  readonly path: string;
  readonly message: string;
}

/** A file that cannot be used; `issues` lists every problem with its field path. */
export class InvalidFileError extends Error {
  constructor(
    readonly code: string,
    readonly source: string,
    readonly issues: readonly FileIssue[],
  ) {
    super(`${source}: ${issues.length} error${issues.length === 1 ? "" : "s"}\n${issues.map((i) => `  ${i.path}: ${i.message}`).join("\n")}`);
    this.name = "InvalidFileError";
  }
}

/**
 * A zod path as people read it, naming entries of top-level lists by their `id` or `name`:
 * `models[3] (openai/gpt-5-nano).pricePerMTok.input`, `routes.realtime-chat.candidates[0]`.
 */
export function formatPath(path: readonly PropertyKey[], input: unknown): string {
  let out = "";
  let node: unknown = input;
  path.forEach((key, depth) => {
    if (typeof key === "number") {
      out += `[${key}]`;
      const entry: unknown = Array.isArray(node) ? node[key] : undefined;
      if (depth === 1 && typeof entry === "object" && entry !== null) {
        const label = "id" in entry ? entry.id : "name" in entry ? entry.name : undefined;
        if (typeof label === "string") out += ` (${label})`;
      }
      node = entry;
    } else {
      const name = String(key);
      out += out === "" ? name : `.${name}`;
      node = typeof node === "object" && node !== null ? (node as Record<string, unknown>)[name] : undefined;
    }
  });
  return out === "" ? "(root)" : out;
}

/** zod's issues as file issues with readable paths. */
export function zodIssues(error: z.ZodError, input: unknown): FileIssue[] {
  return error.issues.map((issue) => ({ path: formatPath(issue.path, input), message: issue.message }));
}

/** Parses YAML (duplicate keys are errors); syntax errors are issues with line and column. */
export function parseYaml(text: string): { value: unknown; issues: FileIssue[] } {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  const issues = doc.errors.map((error) => ({
    path: error.linePos ? `line ${error.linePos[0].line}, column ${error.linePos[0].col}` : "(yaml)",
    message: error.message.split("\n")[0] ?? error.message,
  }));
  return { value: issues.length > 0 ? undefined : doc.toJS(), issues };
}

/** Reads a whole text file; an unreadable file is one issue at `(file)`. */
export async function readTextFile(path: string): Promise<{ text: string; issues: FileIssue[] }> {
  try {
    return { text: await readFile(path, "utf8"), issues: [] };
  } catch (error) {
    return { text: "", issues: [{ path: "(file)", message: error instanceof Error ? error.message : String(error) }] };
  }
}
