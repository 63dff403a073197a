// `subsecond catalog import`: applies OpenRouter's models list (and endpoint statistics) to a config,
// says what that changes in the words of `check --against`, and writes the file only when asked.
import { readdir, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { parseConfigText } from "../config/load.js";
import { describeChanges } from "../config/diff.js";
import { readTextFile, type FileIssue } from "../config/yaml-file.js";
import { CatalogImportError, importCatalog, type AddModels } from "../catalog/import.js";
import { parseModelEndpoints, parseModelsList, type ModelEndpoints, type ModelsList } from "../catalog/openrouter.js";
import type { RequestProfile } from "../router/types.js";
import { decisionChanges } from "./explain.js";

export interface CatalogImportOptions {
  /** A models list as GET https://openrouter.ai/api/v1/models returns it. */
  readonly modelsPath: string;
  /** A directory of GET /api/v1/models/{author}/{slug}/endpoints responses, any file names (matched by `data.id`). */
  readonly endpointsDir?: string;
  readonly configPath: string;
  /** Write the config; otherwise only describe the change. */
  readonly write: boolean;
  readonly add?: AddModels;
  /** The hypothetical request of the before/after decisions. */
  readonly request: RequestProfile;
}

/** Reads and validates a models list; throws CatalogImportError naming every bad field. */
export async function readModelsList(path: string): Promise<ModelsList> {
  const file = await readTextFile(path);
  if (file.issues.length > 0) throw new CatalogImportError(path, file.issues);
  const { value, issues } = parseModelsList(file.text);
  if (value === undefined) throw new CatalogImportError(path, issues);
  return value;
}

/** Reads every `*.json` under `dir` as one model's endpoint statistics, by model id; throws CatalogImportError naming file and field. */
export async function readEndpointsDir(dir: string): Promise<Map<string, ModelEndpoints>> {
  let files: string[];
  try {
    files = (await readdir(dir, { recursive: true })).filter((name) => name.endsWith(".json")).sort();
  } catch (error) {
    throw new CatalogImportError(dir, [{ path: "(directory)", message: error instanceof Error ? error.message : String(error) }]);
  }
  const byId = new Map<string, ModelEndpoints>();
  const fileOf = new Map<string, string>();
  const issues: FileIssue[] = [];
  for (const name of files) {
    const file = await readTextFile(join(dir, name));
    const { value, issues: found } = file.issues.length > 0 ? { value: undefined, issues: file.issues } : parseModelEndpoints(file.text);
    issues.push(...found.map((issue) => ({ path: `${name}: ${issue.path}`, message: issue.message })));
    if (value === undefined) continue;
    const first = fileOf.get(value.id);
    if (first !== undefined) issues.push({ path: `${name}: data.id`, message: `"${value.id}" is also in ${first}` });
    fileOf.set(value.id, first ?? name);
    byId.set(value.id, value);
  }
  if (issues.length > 0) throw new CatalogImportError(dir, issues);
  return byId;
}

/** Writes through a temporary file and a rename, so a watching gateway reads the old or the new file whole. */
async function writeAtomically(path: string, text: string): Promise<void> {
  const temporary = `${path}.catalog-import-${process.pid}.tmp`;
  await writeFile(temporary, text);
  await rename(temporary, path);
}

/**
 * Runs the import and prints, line by line: what was matched, notes on what was kept, the changes
 * (describeChanges, as `check --against`), each route's choice before and after, and whether the file
 * was written. Nothing is written when the result is not a valid config.
 * @throws CatalogImportError or ConfigError listing every problem with its field path.
 */
export async function catalogImport(options: CatalogImportOptions, print: (line: string) => void): Promise<void> {
  const { configPath } = options;
  const models = await readModelsList(options.modelsPath);
  const endpoints = options.endpointsDir === undefined ? undefined : await readEndpointsDir(options.endpointsDir);
  const configFile = await readTextFile(configPath);
  if (configFile.issues.length > 0) throw new CatalogImportError(configPath, configFile.issues);
  const before = parseConfigText(configFile.text, configPath);
  const result = importCatalog(configFile.text, configPath, { name: options.modelsPath, models, ...(endpoints ? { endpoints } : {}) }, options.add);
  const after = parseConfigText(result.text, configPath);

  print(
    `${options.modelsPath}: ${models.data.length} models; ${result.matched} of the ${before.models.length} catalog entries of ${configPath} listed` +
      (endpoints ? `; endpoint statistics of ${endpoints.size} models from ${options.endpointsDir}` : ""),
  );
  for (const note of result.notes) print(`  note: ${note}`);
  const changes = describeChanges(before, after);
  print("");
  print(`Changes to ${configPath}:`);
  for (const line of changes.length > 0 ? changes : ["no change that affects routing"]) print(`  ${line}`);
  const { request } = options;
  print("");
  print(`Decisions (${request.promptTokens} prompt tokens, ${request.maxOutputTokens ?? "default"} output tokens, prior statistics):`);
  for (const line of decisionChanges(before, after, request)) print(`  ${line}`);
  print("");
  if (result.text === configFile.text) {
    print(`${configPath}: already up to date; nothing to write`);
  } else if (options.write) {
    await writeAtomically(configPath, result.text);
    print(`${configPath}: written (hash ${after.hash}); comments and order kept`);
  } else {
    print(`${configPath}: not written (a dry run; --write writes it)`);
  }
}
