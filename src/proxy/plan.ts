// Route resolution, once per request: the request's `model` (a route, `auto`, a catalog id) and optional
// `models` list become the brain's decision plus the deadlines, target and attempt limit it runs under.
import { GatewayError } from "../errors.js";
import type { LoadedConfig } from "../config/load.js";
import type { Continuation, Deadlines, Target } from "../config/schema.js";
import { PINNED_ROUTE, REQUEST_LIST_ROUTE } from "../metrics/metrics.js";
import type { Brain } from "../router/brain.js";
import type { CatalogModel, Decision, RequestProfile, RoutePolicy } from "../router/types.js";
import type { ChatRequest } from "./chat-request.js";

/** Everything the executor needs to know about where and how long a request may go. */
export interface RequestPlan {
  readonly decision: Decision;
  /** The `route` label of metrics: the route's name, `pinned` or `request`. */
  readonly routeLabel: string;
  /** The route's policy; undefined for a pinned model or a `models` list (they run on `defaults`). */
  readonly policy: RoutePolicy | undefined;
  readonly deadlines: Deadlines;
  readonly target: Target;
  readonly maxAttempts: number;
  /** Whether and how often a stream cut after content is continued on another model. */
  readonly continuation: Continuation;
}

/** Resolves and decides. Throws a 404 GatewayError for an unknown model, 400 for a bad `models` list. */
export function resolvePlan(config: LoadedConfig, brain: Brain, request: ChatRequest, profile: RequestProfile): RequestPlan {
  const decision = decide(config, brain, request, profile);
  const listed = decision.reason === "pinned" || decision.reason === "request-list";
  const policy = listed ? undefined : config.routes.get(decision.route);
  const defaults = config.config.defaults;
  return {
    decision,
    routeLabel: decision.reason === "pinned" ? PINNED_ROUTE : decision.reason === "request-list" ? REQUEST_LIST_ROUTE : decision.route,
    policy,
    deadlines: policy?.deadlines ?? defaults.deadlines,
    target: policy?.target ?? defaults.target,
    maxAttempts: policy?.maxAttempts ?? Math.max(defaults.maxAttempts, decision.plan.length),
    continuation: policy?.continuation ?? defaults.continuation,
  };
}

function decide(config: LoadedConfig, brain: Brain, request: ChatRequest, profile: RequestProfile): Decision {
  const name = request.model === "auto" ? config.defaultRoute : request.model;
  const route = config.routes.get(name);
  if (request.models) {
    const listed = request.models.map((id, index) => lookup(config, id, index));
    if (route) {
      const choice = brain.decide(route, profile);
      const plan = [...choice.plan.slice(0, 1), ...listed.filter((model) => model.id !== choice.plan[0]?.id)];
      const listDecision = brain.planList(route.name, plan, "request-list", profile);
      // Keep the route's probe marking when its choice still goes first, so the probe's result counts.
      return { ...listDecision, probe: choice.probe && listDecision.plan[0]?.id === choice.plan[0]?.id };
    }
    if (request.models[0] !== request.model) {
      throw new GatewayError(400, "`model` must be the first entry of `models`, or a route.", { code: "invalid_value", param: "model" });
    }
    return brain.planList(REQUEST_LIST_ROUTE, listed, "request-list", profile);
  }
  if (route) return brain.decide(route, profile);
  const model = config.modelsById.get(request.model);
  if (model) return brain.planList(PINNED_ROUTE, [model], "pinned", profile);
  throw new GatewayError(
    404,
    `The model \`${request.model}\` does not exist: use a route (${[...config.routes.keys()].join(", ")}, auto) or a catalog model id.`,
    {
      code: "model_not_found",
      param: "model",
    },
  );
}

function lookup(config: LoadedConfig, id: string, index: number): CatalogModel {
  const model = config.modelsById.get(id);
  if (!model)
    throw new GatewayError(404, `The model \`${id}\` does not exist in this gateway's catalog.`, { code: "model_not_found", param: `models[${index}]` });
  return model;
}
