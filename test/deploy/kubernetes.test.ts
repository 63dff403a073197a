// deploy/kubernetes/ against the Kubernetes API schemas (the OpenAPI definitions bundled by the
// kubernetes-models package, validated with ajv), no cluster needed; and the promises the manifests make
// to the gateway: probes, a grace period above the drain, non-root and read-only, keys from a Secret, and
// a ConfigMap the gateway itself accepts.
import { readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseAllDocuments } from "yaml";
import { describe, expect, it } from "vitest";
import { ConfigMap } from "kubernetes-models/v1/ConfigMap";
import { Service } from "kubernetes-models/v1/Service";
import { Deployment, type IDeployment } from "kubernetes-models/apps/v1/Deployment";
import { PodDisruptionBudget } from "kubernetes-models/policy/v1/PodDisruptionBudget";
import { HorizontalPodAutoscaler } from "kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler";
import { parseConfigText } from "../../src/config/load.js";

const DIR = resolve(import.meta.dirname, "../../deploy/kubernetes");

/** The API schema of each kind the manifests use: `new Model(object).validate()` throws on a violation. */
const MODELS: Record<string, (object: Record<string, unknown>) => { validate(): void }> = {
  "v1/ConfigMap": (object) => new ConfigMap(object as never),
  "v1/Service": (object) => new Service(object as never),
  "apps/v1/Deployment": (object) => new Deployment(object as never),
  "policy/v1/PodDisruptionBudget": (object) => new PodDisruptionBudget(object as never),
  "autoscaling/v2/HorizontalPodAutoscaler": (object) => new HorizontalPodAutoscaler(object as never),
};

interface Manifest {
  readonly file: string;
  readonly object: Record<string, unknown> & { apiVersion: string; kind: string; metadata: { name: string } };
}

const manifests: Manifest[] = readdirSync(DIR)
  .filter((file) => file.endsWith(".yaml"))
  .sort()
  .flatMap((file) =>
    parseAllDocuments(readFileSync(join(DIR, file), "utf8")).map((document) => {
      expect(document.errors, file).toEqual([]);
      return { file, object: document.toJS() as Manifest["object"] };
    }),
  );

function validate(object: Record<string, unknown>): void {
  const model = MODELS[`${String(object.apiVersion)}/${String(object.kind)}`];
  if (model === undefined) throw new Error(`no schema for ${String(object.apiVersion)} ${String(object.kind)}`);
  model(object).validate();
}

const find = (kind: string, name: string) => manifests.find((m) => m.object.kind === kind && m.object.metadata.name === name)?.object;

describe("deploy/kubernetes", () => {
  it("holds a Deployment, Service, ConfigMap, PodDisruptionBudget, HorizontalPodAutoscaler and a Redis example", () => {
    for (const [kind, name] of [
      ["Deployment", "subsecond"],
      ["Service", "subsecond"],
      ["ConfigMap", "subsecond-config"],
      ["PodDisruptionBudget", "subsecond"],
      ["HorizontalPodAutoscaler", "subsecond"],
      ["Deployment", "subsecond-redis"],
      ["Service", "subsecond-redis"],
    ]) {
      expect(find(kind!, name!), `${kind} ${name}`).toBeDefined();
    }
  });

  it.each(manifests.map((m) => [`${m.file}: ${m.object.kind} ${m.object.metadata.name}`, m] as const))(
    "%s validates against the Kubernetes API schema",
    (_name, m) => {
      expect(() => validate(m.object)).not.toThrow();
    },
  );

  it("the validator refuses a manifest that breaks the schema", () => {
    const deployment = structuredClone(find("Deployment", "subsecond")) as unknown as IDeployment;
    const broken = { ...deployment, spec: { ...deployment.spec!, replicas: "three" } };
    expect(() => validate(broken as unknown as Record<string, unknown>)).toThrow(/replicas must be integer/);
    const noPort = structuredClone(deployment);
    delete (noPort.spec!.template.spec!.containers[0]!.livenessProbe!.httpGet as { port?: unknown }).port;
    expect(() => validate(noPort as unknown as Record<string, unknown>)).toThrow(/required property 'port'|required property port/);
  });

  it("keeps the gateway's promises: probes, drain within the grace period, non-root, read-only, keys from the Secret", () => {
    const deployment = find("Deployment", "subsecond") as unknown as IDeployment;
    const pod = deployment.spec!.template.spec!;
    const [container] = pod.containers;
    expect(container!.livenessProbe?.httpGet?.path).toBe("/healthz");
    expect(container!.readinessProbe?.httpGet?.path).toBe("/readyz");
    expect(pod.securityContext?.runAsNonRoot).toBe(true);
    expect(container!.securityContext?.readOnlyRootFilesystem).toBe(true);
    expect(container!.resources?.requests).toBeDefined();
    expect(container!.resources?.limits).toBeDefined();

    const configMap = find("ConfigMap", "subsecond-config") as unknown as { data: Record<string, string> };
    const config = parseConfigText(configMap.data["gateway.yaml"]!, "deploy/kubernetes/configmap.yaml").config;
    // preStop first (the endpoint leaves the Service), then the drain: both within the grace period.
    const preStop = container!.lifecycle?.preStop?.exec?.command ?? [];
    expect(preStop[0]).toBe("sleep");
    const preStopMs = Number(preStop[1]) * 1000;
    expect(preStopMs).toBeGreaterThan(0);
    expect(pod.terminationGracePeriodSeconds! * 1000).toBeGreaterThan(preStopMs + config.server.drainTimeoutMs);

    // Every secret the config names comes from a Secret; nothing secret is written in the manifests.
    const fromSecret = new Set((container!.env ?? []).filter((variable) => variable.valueFrom?.secretKeyRef).map((variable) => variable.name));
    const secretEnvs = [
      config.auth.apiKeysEnv,
      config.auth.adminKeysEnv,
      ...Object.values(config.providers).map((provider) => provider.apiKeyEnv),
      ...Object.values(config.clients).map((client) => client.keyEnv),
    ].filter((name): name is string => name !== undefined);
    for (const name of secretEnvs) expect(fromSecret.has(name), `${name} from a secretKeyRef`).toBe(true);
    const redisUrl = (container!.env ?? []).find((variable) => variable.name === config.sharedState?.redisUrlEnv);
    expect(redisUrl?.value ?? redisUrl?.valueFrom).toBeDefined();
    expect(container!.volumeMounts?.find((mount) => mount.name === "config")?.mountPath).toBe("/app/config");
  });
});
