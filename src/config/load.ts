// Reads a YAML config file, validates it against the schema and compiles it; errors name field paths.
import { createHash } from "node:crypto";
import { ConfigSchema } from "./schema.js";
import { compileConfig, ConfigCompileError, type CompiledConfig } from "./compile.js";
import { InvalidFileError, parseYaml, readTextFile, zodIssues, type FileIssue } from "./yaml-file.js";

export { formatPath } from "./yaml-file.js";

/** A config that cannot be used; `issues` lists every problem with its field path. */
export class ConfigError extends InvalidFileError {
  constructor(source: string, issues: readonly FileIssue[]) {
    super("config_invalid", source, issues);
    this.name = "ConfigError";
  }
}

export interface LoadedConfig extends CompiledConfig {
  /** sha256 of the file's bytes, first 12 hex digits; exported as subsecond_config_info{hash}. */
  readonly hash: string;
  readonly source: string;
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
  const { value, issues } = parseYaml(text);
  if (issues.length > 0) throw new ConfigError(source, issues);
  return parseConfig(value, source, text);
}

/** Reads the whole file, then parses it. Throws `ConfigError` (unreadable files included). */
export async function loadConfigFile(path: string): Promise<LoadedConfig> {
  const { text, issues } = await readTextFile(path);
  if (issues.length > 0) throw new ConfigError(path, issues);
  return parseConfigText(text, path);
}
