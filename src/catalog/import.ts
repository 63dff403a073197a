// Brings a config's catalog entries up to date from OpenRouter's published catalog: prices, context
// windows and capabilities from the models list, priors from endpoint statistics; written into the
// config's YAML text in place, so nothing else in the file moves. Ranks and scores are never touched:
// they come from the ranking, not from the catalog.
import { parseConfigText, type LoadedConfig } from "../config/load.js";
import type { Capability, Config, ModelConfig } from "../config/schema.js";
import { appendYamlListItem, setYamlValues, YamlEditError, type YamlSet, type YamlValue } from "../config/yaml-edit.js";
import { formatPath, InvalidFileError, type FileIssue } from "../config/yaml-file.js";
import { perTokenToPerMillion } from "./decimal.js";
import {
  capabilitiesOf,
  contextTokensOf,
  endpointName,
  publishedPrior,
  servingEndpoint,
  type ModelEndpoints,
  type ModelsList,
  type OpenRouterModel,
} from "./openrouter.js";

/** A catalog that cannot be applied; `issues` name the field (`data[3] (qwen/qwen3.5-9b).pricing.prompt`). */
export class CatalogImportError extends InvalidFileError {
  constructor(source: string, issues: readonly FileIssue[]) {
    super("catalog_invalid", source, issues);
    this.name = "CatalogImportError";
  }
}

export interface CatalogSource {
  /** Where the models list came from (a file or a URL), for messages. */
  readonly name: string;
  readonly models: ModelsList;
  /** Endpoint statistics by model id (each endpoints response's `data.id`). */
  readonly endpoints?: ReadonlyMap<string, ModelEndpoints>;
}

/** Models to add from the catalog (`--add`). */
export interface AddModels {
  readonly ids: readonly string[];
  /** Ranking score of the added models: the catalog publishes none, so the user states it. */
  readonly score: number | undefined;
  /** Provider serving them; default: the config's only provider. */
  readonly provider?: string;
}

export interface CatalogImport {
  /** The config's new text: the same string when nothing changed. */
  readonly text: string;
  /** What was kept as configured, and why; where each prior came from. */
  readonly notes: readonly string[];
  /** Catalog entries of the config that the catalog lists. */
  readonly matched: number;
}

interface Found {
  readonly model: OpenRouterModel;
  /** Position in the catalog's `data`, for issue paths. */
  readonly index: number;
}

const sameSet = (a: readonly Capability[], b: readonly Capability[]) => a.length === b.length && a.every((item) => b.includes(item));

/** What the catalog says about one entry; problems go to `issues`, what is kept to `notes`. */
function readCatalog(
  found: Found,
  source: CatalogSource,
  entry: Pick<ModelConfig, "id" | "capabilities" | "prior">,
  defaultTokensPerSecond: number,
  issues: FileIssue[],
  notes: string[],
) {
  const { model, index } = found;
  const price: { input?: number; output?: number } = {};
  for (const [side, field] of [
    ["input", "prompt"],
    ["output", "completion"],
  ] as const) {
    const perToken = model.pricing?.[field];
    if (perToken === undefined) continue;
    const perMillion = perTokenToPerMillion(perToken);
    if (perMillion === undefined) {
      issues.push({
        path: formatPath(["data", index, "pricing", field], source.models),
        message: `"${perToken}" is not a non-negative decimal number of USD per token`,
      });
    } else {
      price[side] = Number(perMillion);
    }
  }
  const unpriced = (["input", "output"] as const).filter((side) => price[side] === undefined);
  if (unpriced.length > 0) notes.push(`${entry.id}: no ${unpriced.join(" or ")} price published; kept as configured`);
  const contextTokens = contextTokensOf(model);
  if (contextTokens === undefined) notes.push(`${entry.id}: no context length published; kept as configured`);
  const capabilities = capabilitiesOf(model, entry.capabilities);
  let prior: { ttftMs: number; tokensPerSecond: number } | undefined;
  const statistics = source.endpoints?.get(model.id);
  if (source.endpoints && !statistics) notes.push(`${entry.id}: no endpoint statistics; prior kept as configured`);
  if (statistics) {
    const serving = servingEndpoint(statistics.endpoints);
    const published = serving && publishedPrior(serving);
    if (!serving || !published) {
      notes.push(`${entry.id}: no endpoint that is up publishes its latency (OpenRouter shows it to authenticated requests only); prior kept as configured`);
    } else {
      prior = { ttftMs: published.ttftMs, tokensPerSecond: published.tokensPerSecond ?? entry.prior?.tokensPerSecond ?? defaultTokensPerSecond };
      notes.push(
        `${entry.id}: prior from endpoint ${endpointName(serving)}${published.tokensPerSecond === undefined ? " (no throughput published: tokensPerSecond kept)" : ""}`,
      );
    }
  }
  return { price, contextTokens, capabilities, prior };
}

/**
 * Applies `source` to the catalog entries of `configText` that it lists (matched by `upstreamModel`, else
 * `id`): prices converted to USD per 1M tokens, the context window (the smaller of the model's and its top
 * provider's), tools/json/vision from supported parameters and input modalities, and, with endpoint
 * statistics, `prior` from the endpoint that serves (openrouter.ts). Then appends `add`'s models, ranked
 * after the last. Values already right are left as written, so a catalog that agrees with the file
 * returns it byte for byte. The result is not validated as a config: parse it to check it.
 * @throws ConfigError when `configText` is not a valid config; CatalogImportError listing every problem.
 */
export function importCatalog(configText: string, configSource: string, source: CatalogSource, add?: AddModels): CatalogImport {
  return applyCatalog(configText, configSource, parseConfigText(configText, configSource).config, source, add);
}

/** importCatalog on a config already parsed from `configText`. */
function applyCatalog(configText: string, configSource: string, config: Config, source: CatalogSource, add?: AddModels): CatalogImport {
  const byId = new Map<string, Found>();
  source.models.data.forEach((model, index) => {
    if (!byId.has(model.id)) byId.set(model.id, { model, index });
  });
  const defaultTokensPerSecond = config.stats.defaultPrior.tokensPerSecond;
  const issues: FileIssue[] = [];
  const notes: string[] = [];
  const sets: YamlSet[] = [];
  let matched = 0;
  config.models.forEach((entry, index) => {
    const found = byId.get(entry.upstreamModel ?? entry.id);
    if (!found) {
      notes.push(`${entry.id}: not in ${source.name}; kept as configured`);
      return;
    }
    matched++;
    const read = readCatalog(found, source, entry, defaultTokensPerSecond, issues, notes);
    const fields: Record<string, YamlValue> = {};
    if (read.price.input !== undefined || read.price.output !== undefined) fields.pricePerMTok = read.price;
    if (read.contextTokens !== undefined) fields.contextTokens = read.contextTokens;
    // Compared as sets: an absent `capabilities` means the default, and the file's order is kept.
    if (!sameSet(read.capabilities, entry.capabilities)) fields.capabilities = read.capabilities;
    if (read.prior) fields.prior = read.prior;
    // One set per entry: its new keys go in together (yaml-edit.ts).
    sets.push({ path: ["models", index], value: fields });
  });
  const added = add ? newEntries(config, byId, source, add, defaultTokensPerSecond, issues, notes) : [];
  if (issues.length > 0) throw new CatalogImportError(source.name, issues);
  try {
    let text = setYamlValues(configText, sets);
    for (const entry of added) text = appendYamlListItem(text, ["models"], entry);
    return { text, notes, matched };
  } catch (error) {
    if (error instanceof YamlEditError) throw new CatalogImportError(configSource, [{ path: "(yaml)", message: error.message }]);
    throw error;
  }
}

/** Catalog entries for `add.ids`, ranked after the last; problems go to `issues`. */
function newEntries(
  config: Config,
  byId: ReadonlyMap<string, Found>,
  source: CatalogSource,
  add: AddModels,
  defaultTokensPerSecond: number,
  issues: FileIssue[],
  notes: string[],
): YamlValue[] {
  const providers = Object.keys(config.providers);
  const provider = add.provider ?? (providers.length === 1 ? providers[0] : undefined);
  if (add.ids.length > 0 && add.score === undefined) {
    issues.push({
      path: "--score",
      message: "required with --add: the catalog publishes no ranking score, so state the one you give the new models (routes filter on it with minScore)",
    });
  }
  if (add.ids.length > 0 && provider === undefined) {
    issues.push({ path: "--provider", message: `required with --add when the config has several providers (${providers.join(", ")})` });
  } else if (provider !== undefined && !providers.includes(provider)) {
    issues.push({ path: "--provider", message: `unknown provider "${provider}" (known: ${providers.join(", ")})` });
  }
  let rank = Math.max(0, ...config.models.map((model) => model.rank));
  const entries: YamlValue[] = [];
  for (const id of add.ids) {
    const existing = config.models.findIndex((model) => model.id === id || model.upstreamModel === id);
    const found = byId.get(id);
    if (existing >= 0) {
      issues.push({
        path: `--add ${id}`,
        message: `already in the catalog (models[${existing}]); its prices, window and capabilities are updated without --add`,
      });
      continue;
    }
    if (!found) {
      issues.push({ path: `--add ${id}`, message: `not in ${source.name}` });
      continue;
    }
    const read = readCatalog(found, source, { id, capabilities: [], prior: undefined }, defaultTokensPerSecond, [], []);
    const before = issues.length;
    for (const [side, field] of [
      ["input", "prompt"],
      ["output", "completion"],
    ] as const) {
      if (read.price[side] === undefined)
        issues.push({
          path: formatPath(["data", found.index, "pricing", field], source.models),
          message: `--add ${id} needs a price: a non-negative decimal number of USD per token`,
        });
    }
    if (read.contextTokens === undefined)
      issues.push({ path: formatPath(["data", found.index, "context_length"], source.models), message: `--add ${id} needs a context length` });
    if (issues.length > before || add.score === undefined || provider === undefined) continue;
    notes.push(`${id}: added as rank ${rank + 1}, score ${add.score}, provider ${provider}`);
    entries.push({
      id,
      provider,
      rank: ++rank,
      score: add.score,
      pricePerMTok: { input: read.price.input as number, output: read.price.output as number },
      contextTokens: read.contextTokens as number,
      capabilities: read.capabilities,
      ...(read.prior ? { prior: read.prior } : {}),
    });
  }
  return entries;
}

/**
 * A config's text with `catalog` applied, validated: what a gateway that refreshes its catalog runs.
 * The text alone when there is no catalog yet or the config does not ask for refreshes (no `catalog` key).
 * @throws ConfigError or CatalogImportError listing every problem with its field path.
 */
export function configWithCatalog(text: string, source: string, catalog: CatalogSource | undefined): LoadedConfig {
  const base = parseConfigText(text, source);
  if (catalog === undefined || base.config.catalog === undefined) return base;
  const applied = applyCatalog(text, source, base.config, catalog).text;
  return applied === text ? base : parseConfigText(applied, source);
}
