// Describes what a config change does, in words, and warns about policies that can never be met.
import type { LoadedConfig } from "./load.js";
import type { CatalogModel, RoutePolicy } from "./catalog.js";

const price = (model: CatalogModel) => `$${model.pricePerMTok.input}/$${model.pricePerMTok.output}`;
const capabilities = (model: CatalogModel) => `[${[...model.capabilities].join(", ")}]`;
const sameCapabilities = (a: CatalogModel, b: CatalogModel) =>
  a.capabilities.size === b.capabilities.size && [...a.capabilities].every((c) => b.capabilities.has(c));
const target = (route: RoutePolicy) => `p${route.target.percentile} ${route.target.metric} ≤ ${route.target.ms} ms`;

/** Sentences describing every difference between `before` and `after` that changes routing. */
export function describeChanges(before: LoadedConfig, after: LoadedConfig): string[] {
  const lines: string[] = [];
  for (const model of after.models) {
    const old = before.modelsById.get(model.id);
    if (!old) {
      lines.push(`model added: ${model.id} (${price(model)} per 1M tokens, ${model.contextTokens} context, provider ${model.provider})`);
      continue;
    }
    if (old.pricePerMTok.input !== model.pricePerMTok.input || old.pricePerMTok.output !== model.pricePerMTok.output) {
      lines.push(`price changed: ${model.id} ${price(old)} → ${price(model)} per 1M tokens (input/output)`);
    }
    if (old.contextTokens !== model.contextTokens) lines.push(`context changed: ${model.id} ${old.contextTokens} → ${model.contextTokens} tokens`);
    if (!sameCapabilities(old, model)) lines.push(`capabilities changed: ${model.id} ${capabilities(old)} → ${capabilities(model)}`);
    if (old.provider !== model.provider || old.upstreamModel !== model.upstreamModel) {
      lines.push(`upstream changed: ${model.id} ${old.provider}/${old.upstreamModel} → ${model.provider}/${model.upstreamModel}`);
    }
    if (old.rank !== model.rank || old.score !== model.score)
      lines.push(`ranking changed: ${model.id} rank ${old.rank} → ${model.rank}, score ${old.score} → ${model.score}`);
    if (JSON.stringify(old.prior) !== JSON.stringify(model.prior))
      lines.push(`prior changed: ${model.id} ${JSON.stringify(old.prior ?? null)} → ${JSON.stringify(model.prior ?? null)}`);
  }
  for (const model of before.models) if (!after.modelsById.has(model.id)) lines.push(`model removed: ${model.id}`);
  for (const [name, provider] of Object.entries(after.config.providers)) {
    const old = before.config.providers[name];
    if (!old) lines.push(`provider added: ${name} (${provider.baseUrl})`);
    else if (old.baseUrl !== provider.baseUrl) lines.push(`provider ${name} moved: ${old.baseUrl} → ${provider.baseUrl} (fresh connections)`);
  }
  for (const name of Object.keys(before.config.providers)) if (!(name in after.config.providers)) lines.push(`provider removed: ${name}`);
  for (const route of after.routes.values()) {
    const old = before.routes.get(route.name);
    if (!old) {
      lines.push(`route added: ${route.name} (${route.strategy}, ${target(route)}, ${route.candidates.length} candidates)`);
      continue;
    }
    const oldIds = new Set(old.candidates.map((model) => model.id));
    const newIds = new Set(route.candidates.map((model) => model.id));
    const added = [...newIds].filter((id) => !oldIds.has(id));
    const removed = [...oldIds].filter((id) => !newIds.has(id));
    if (added.length > 0) lines.push(`route ${route.name}: candidates added: ${added.join(", ")}`);
    if (removed.length > 0) lines.push(`route ${route.name}: candidates removed: ${removed.join(", ")}`);
    if (target(old) !== target(route)) lines.push(`route ${route.name}: target ${target(old)} → ${target(route)}`);
    if (old.strategy !== route.strategy) lines.push(`route ${route.name}: strategy ${old.strategy} → ${route.strategy}`);
    if (JSON.stringify(old.deadlines) !== JSON.stringify(route.deadlines)) {
      lines.push(`route ${route.name}: deadlines ${JSON.stringify(old.deadlines)} → ${JSON.stringify(route.deadlines)}`);
    }
  }
  for (const name of before.routes.keys()) if (!after.routes.has(name)) lines.push(`route removed: ${name}`);
  if (before.defaultRoute !== after.defaultRoute) lines.push(`defaultRoute: ${before.defaultRoute} → ${after.defaultRoute}`);
  return lines;
}

/** Policies that can never be met, or that have no fallback; and catalog entries nothing routes to. */
export function policyWarnings(config: LoadedConfig): string[] {
  const warnings: string[] = [];
  const { defaultPrior } = config.config.stats;
  const routed = new Set<string>();
  for (const route of config.routes.values()) {
    for (const model of route.candidates) routed.add(model.id);
    if (route.candidates.length === 1) {
      warnings.push(`routes.${route.name}: a single candidate (${route.candidates[0]?.id}) and no fallback`);
    }
    if (route.target.metric === "ttft") {
      const priors = route.candidates.map((model) => (model.prior ?? defaultPrior).ttftMs);
      if (priors.every((ms) => ms > route.target.ms)) {
        warnings.push(
          `routes.${route.name}: no candidate's prior first-token time (fastest ${Math.min(...priors)} ms) meets the target of ${route.target.ms} ms`,
        );
      }
    }
  }
  for (const model of config.models) if (!routed.has(model.id)) warnings.push(`models: ${model.id} is referenced by no route (only reachable pinned)`);
  return warnings;
}
