// Turns a validated config into what the router runs on: catalog entries and resolved route policies.
import type { Config, ModelConfig, RouteConfig } from "./schema.js";
import type { CatalogModel, RoutePolicy } from "./catalog.js";
import type { FileIssue } from "./yaml-file.js";

export interface CompiledConfig {
  readonly config: Config;
  /** Catalog in ranking order. */
  readonly models: readonly CatalogModel[];
  readonly modelsById: ReadonlyMap<string, CatalogModel>;
  readonly routes: ReadonlyMap<string, RoutePolicy>;
  readonly defaultRoute: string;
}

/** Problems the schema alone cannot see (e.g. filters leaving a route empty). */
export class ConfigCompileError extends Error {
  readonly code = "config_invalid";
  constructor(readonly issues: readonly FileIssue[]) {
    super(issues.map((issue) => `${issue.path}: ${issue.message}`).join("\n"));
    this.name = "ConfigCompileError";
  }
}

/** Free variants are marked `:free` on OpenRouter and priced at zero. */
function isFree(model: ModelConfig): boolean {
  return model.id.endsWith(":free") || (model.pricePerMTok.input === 0 && model.pricePerMTok.output === 0);
}

function toCatalogModel(model: ModelConfig): CatalogModel {
  return {
    id: model.id,
    provider: model.provider,
    upstreamModel: model.upstreamModel ?? model.id,
    rank: model.rank,
    score: model.score,
    pricePerMTok: model.pricePerMTok,
    contextTokens: model.contextTokens,
    capabilities: new Set(model.capabilities),
    prior: model.prior,
    free: isFree(model),
  };
}

function resolveRoute(name: string, route: RouteConfig, config: Config, byId: ReadonlyMap<string, CatalogModel>): RoutePolicy | FileIssue {
  const { defaults } = config;
  const allowFree = route.allowFree ?? defaults.allowFree;
  const listed = route.candidates === "*" ? [...byId.values()] : route.candidates.map((id) => byId.get(id));
  const candidates = listed.filter((model): model is CatalogModel => {
    if (model === undefined) return false;
    if (!allowFree && model.free) return false;
    if (route.minScore !== undefined && model.score < route.minScore) return false;
    const maxPrice = route.maxPricePerMTok;
    if (maxPrice?.input !== undefined && model.pricePerMTok.input > maxPrice.input) return false;
    if (maxPrice?.output !== undefined && model.pricePerMTok.output > maxPrice.output) return false;
    return true;
  });
  if (candidates.length === 0) {
    return { path: `routes.${name}.candidates`, message: "no model is left after the route's filters (minScore, maxPricePerMTok, allowFree)" };
  }
  return {
    name,
    candidates,
    target: route.target ?? defaults.target,
    strategy: route.strategy ?? defaults.strategy,
    deadlines: { ...defaults.deadlines, ...route.deadlines },
    exploration: { ...defaults.exploration, ...route.exploration },
    hedging: { ...defaults.hedging, ...route.hedging },
    continuation: { ...defaults.continuation, ...route.continuation },
    maxAttempts: route.maxAttempts ?? defaults.maxAttempts,
    nearTieRatio: route.nearTieRatio ?? defaults.nearTieRatio,
  };
}

/** Builds catalog and routes; throws `ConfigCompileError` listing every problem. */
export function compileConfig(config: Config): CompiledConfig {
  const models = config.models.map(toCatalogModel);
  const modelsById = new Map(models.map((model) => [model.id, model]));
  const routes = new Map<string, RoutePolicy>();
  const issues: FileIssue[] = [];
  for (const [name, route] of Object.entries(config.routes)) {
    const resolved = resolveRoute(name, route, config, modelsById);
    if ("path" in resolved) issues.push(resolved);
    else routes.set(name, resolved);
  }
  if (issues.length > 0) throw new ConfigCompileError(issues);
  return { config, models, modelsById, routes, defaultRoute: config.defaultRoute };
}
