// What can be checked of the container setup without a Docker engine: the compose file and its mounts, the
// Dockerfile's stages, and its CMD and HEALTHCHECK run with node from a production-only install.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse } from "yaml";

const ROOT = new URL("../../", import.meta.url).pathname;
const read = (path: string) => readFileSync(join(ROOT, path), "utf8");

interface ComposeService {
  build?: string;
  image?: string;
  environment?: Record<string, string>;
  volumes?: string[];
  ports?: string[];
  depends_on?: unknown;
}
interface Compose {
  services: Record<string, ComposeService>;
  volumes?: Record<string, unknown>;
}

/** One Dockerfile instruction, continuation lines joined. */
interface Instruction {
  readonly keyword: string;
  readonly args: string;
}

/** Dockerfile stages: instructions after each FROM (comments and blank lines dropped). */
function dockerfileStages(text: string): Instruction[][] {
  const joined = text.replace(/\\\r?\n/g, " ");
  const stages: Instruction[][] = [];
  for (const line of joined.split(/\r?\n/)) {
    const trimmed = line.trim();
    if (trimmed === "" || trimmed.startsWith("#")) continue;
    const [keyword = "", ...rest] = trimmed.split(/\s+/);
    const instruction = { keyword: keyword.toUpperCase(), args: rest.join(" ") };
    if (instruction.keyword === "FROM") stages.push([]);
    stages[stages.length - 1]?.push(instruction);
  }
  return stages;
}

/** The exec-form (JSON array) arguments of `CMD [...]` or `HEALTHCHECK [options] CMD [...]`. */
function execForm(args: string): string[] {
  const json = args.slice(args.indexOf("["));
  const parsed: unknown = JSON.parse(json);
  if (!Array.isArray(parsed) || !parsed.every((part) => typeof part === "string")) throw new Error(`not an exec form: ${args}`);
  return parsed as string[];
}

const compose = parse(read("docker-compose.yml")) as Compose;
const stages = dockerfileStages(read("Dockerfile"));
const finalStage = stages[stages.length - 1] ?? [];
const buildStage = stages[0] ?? [];
const finalOf = (keyword: string) => finalStage.filter((i) => i.keyword === keyword);

describe("docker-compose.yml", () => {
  it("is valid YAML with two gateway replicas behind haproxy, Redis, Prometheus and Grafana", () => {
    expect(Object.keys(compose.services).sort()).toEqual(["gateway", "gateway-2", "grafana", "lb", "prometheus", "redis"]);
    expect(compose.services.gateway?.build).toBe(".");
    expect(compose.services["gateway-2"]).toEqual(compose.services.gateway);
    expect(compose.services.lb?.image).toMatch(/^haproxy:\d/);
    expect(compose.services.redis?.image).toMatch(/^redis:\d/);
    expect(compose.services.prometheus?.image).toMatch(/^prom\/prometheus:v\d/);
    expect(compose.services.grafana?.image).toMatch(/^grafana\/grafana:\d/);
  });

  it("mounts only files and directories that exist", () => {
    const named = new Set(Object.keys(compose.volumes ?? {}));
    const mounts = Object.values(compose.services).flatMap((service) => service.volumes ?? []);
    expect(mounts.length).toBeGreaterThan(5);
    for (const mount of mounts) {
      const [source = ""] = mount.split(":");
      if (named.has(source)) continue;
      expect(source, mount).toMatch(/^\.\//);
      expect(existsSync(join(ROOT, source)), mount).toBe(true);
    }
  });

  it("mounts each file where the files themselves say it must go", () => {
    const targetOf = (service: string, source: string) => compose.services[service]?.volumes?.find((mount) => mount.split(":")[0] === source)?.split(":")[1];
    const prometheus = parse(read("docker/prometheus.yml")) as { rule_files: string[]; scrape_configs: { static_configs: { targets: string[] }[] }[] };
    expect(targetOf("prometheus", "./docker/prometheus.yml")).toBe("/etc/prometheus/prometheus.yml");
    expect(prometheus.rule_files).toContain(targetOf("prometheus", "./dashboards/alerts.yaml"));
    // Prometheus scrapes the gateway service on the port the image exposes.
    expect(prometheus.scrape_configs[0]?.static_configs[0]?.targets).toEqual(["gateway:8080"]);
    expect(finalOf("EXPOSE").map((i) => i.args)).toEqual(["8080"]);

    const datasources = parse(read("dashboards/provisioning/datasources.yaml")) as { datasources: { url: string }[] };
    const dashboards = parse(read("dashboards/provisioning/dashboards.yaml")) as { providers: { options: { path: string } }[] };
    expect(datasources.datasources[0]?.url).toBe("http://prometheus:9090");
    expect(targetOf("grafana", "./dashboards/provisioning/datasources.yaml")).toMatch(/^\/etc\/grafana\/provisioning\/datasources\/[\w.-]+\.yaml$/);
    expect(targetOf("grafana", "./dashboards/provisioning/dashboards.yaml")).toMatch(/^\/etc\/grafana\/provisioning\/dashboards\/[\w.-]+\.yaml$/);
    expect(targetOf("grafana", "./dashboards")).toBe(dashboards.providers[0]?.options.path);
    expect(targetOf("gateway", "./config")).toBe("/app/config");
  });

  it("requires client keys for the gateway, which listens on 0.0.0.0 in its container", () => {
    expect(compose.services.gateway?.environment?.SUBSECOND_API_KEYS).toMatch(/^\$\{SUBSECOND_API_KEYS:\?/);
    expect(compose.services.gateway?.environment?.OPENROUTER_API_KEY).toMatch(/^\$\{OPENROUTER_API_KEY/);
  });

  it("points the replicas' sharedState at the redis service, and haproxy at both replicas", () => {
    const shared = parse(read("docker/shared-state.yaml")) as { sharedState: { redisUrlEnv: string } };
    expect(compose.services.gateway?.environment?.[shared.sharedState.redisUrlEnv]).toBe("redis://redis:6379/0");
    const haproxy = read("docker/haproxy.cfg");
    expect(haproxy).toMatch(/server gateway gateway:8080/);
    expect(haproxy).toMatch(/server gateway-2 gateway-2:8080/);
    expect(compose.services.lb?.volumes).toContain("./docker/haproxy.cfg:/usr/local/etc/haproxy/haproxy.cfg:ro");
  });
});

describe("Dockerfile", () => {
  it("builds in one stage and runs production dependencies only, as a non-root user, in the other", () => {
    expect(stages).toHaveLength(2);
    expect(buildStage.map((i) => `${i.keyword} ${i.args}`)).toEqual(expect.arrayContaining([expect.stringMatching(/^RUN npm ci\b/), "RUN npm run build"]));
    expect(
      finalOf("RUN")
        .map((i) => i.args)
        .join(" && "),
    ).toMatch(/npm ci --omit=dev/);
    const users = finalOf("USER").map((i) => i.args);
    expect(users).toEqual(["node"]);
    expect(finalStage.findIndex((i) => i.keyword === "USER")).toBeGreaterThan(finalStage.findIndex((i) => i.keyword === "RUN"));
    const env = finalOf("ENV")
      .map((i) => i.args)
      .join(" ");
    expect(env).toMatch(/\bPORT=8080\b/);
    expect(env).toMatch(/\bHOST=0\.0\.0\.0\b/);
    expect(execForm(finalOf("CMD")[0]?.args ?? "")).toEqual(["node", "dist/main.js", "serve", "--config", "/app/config/gateway.yaml"]);
  });

  it("copies only paths that exist and that .dockerignore lets through", () => {
    const ignored = read(".dockerignore")
      .split(/\r?\n/)
      .map((line) => line.trim())
      .filter((line) => line !== "" && !line.startsWith("#"));
    const sources = stages
      .flat()
      .filter((i) => i.keyword === "COPY" && !i.args.startsWith("--from"))
      .flatMap((i) => i.args.split(/\s+/).slice(0, -1));
    expect(sources).toEqual(expect.arrayContaining(["package.json", "package-lock.json", "src", "config"]));
    for (const source of sources) {
      expect(existsSync(join(ROOT, source)), source).toBe(true);
      expect(ignored, source).not.toContain(source);
    }
  });
});

describe("the image's CMD and HEALTHCHECK, run with node from a production-only install", () => {
  let app = "";
  let gateway: ChildProcess | undefined;
  let output = "";
  let port = 0;
  const cmd = execForm(finalOf("CMD")[0]?.args ?? "");
  const healthcheck = execForm(finalOf("HEALTHCHECK")[0]?.args ?? "");
  /** The final stage's environment (ENV PORT=8080 HOST=0.0.0.0 …), for the processes run as in the image. */
  const imageEnv = Object.fromEntries(
    finalOf("ENV")
      .flatMap((i) => i.args.split(/\s+/))
      .map((pair) => pair.split("=") as [string, string]),
  );
  const run = (command: readonly string[], env: Record<string, string>) =>
    spawn(command[0] === "node" ? process.execPath : (command[0] ?? ""), command.slice(1), {
      cwd: app,
      env: { PATH: process.env.PATH ?? "", ...imageEnv, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });

  beforeAll(() => {
    // /app as the final stage builds it: package files, `npm ci --omit=dev` (the lockfile's non-dev packages),
    // dist/ and config/. Nothing else is on the module path, so an import of a dev dependency would fail.
    app = mkdtempSync(join(tmpdir(), "subsecond-image-"));
    for (const path of ["package.json", "package-lock.json", "dist", "config"]) cpSync(join(ROOT, path), join(app, path), { recursive: true });
    const lock = JSON.parse(read("package-lock.json")) as { packages: Record<string, { dev?: boolean }> };
    for (const [path, entry] of Object.entries(lock.packages)) {
      if (!path.startsWith("node_modules/") || path.lastIndexOf("node_modules/") !== 0 || entry.dev === true) continue;
      cpSync(join(ROOT, path), join(app, path), { recursive: true });
    }
    expect(existsSync(join(app, "node_modules/vitest"))).toBe(false);
    expect(existsSync(join(app, "node_modules/openai"))).toBe(false);
  });

  afterAll(() => {
    if (gateway && gateway.exitCode === null) gateway.kill("SIGKILL");
    rmSync(app, { recursive: true, force: true });
  });

  it("runs the demo too (it needs no dev dependency: traffic uses Node's fetch, not the openai SDK)", async () => {
    const child = run(["node", "dist/main.js", "demo", "--duration", "3s", "--rate", "10", "--port", "0", "--sim-port", "0", "--no-ui"], {});
    let text = "";
    child.stdout?.on("data", (data: Buffer) => (text += data.toString()));
    child.stderr?.on("data", (data: Buffer) => (text += data.toString()));
    const [code] = (await once(child, "exit")) as [number | null];
    expect(code, text).toBe(0);
    expect(text).toMatch(/SUMMARY +3\.\ds of traffic at 10 req\/s/);
  });

  it("refuses to listen on 0.0.0.0 without client keys, naming the variable to set", async () => {
    const child = run(
      cmd.map((arg) => arg.replace("/app/config", join(app, "config"))),
      { PORT: "0", OPENROUTER_API_KEY: "x" },
    );
    let text = "";
    child.stdout?.on("data", (data: Buffer) => (text += data.toString()));
    child.stderr?.on("data", (data: Buffer) => (text += data.toString()));
    const [code] = (await once(child, "exit")) as [number | null];
    expect(code).toBe(1);
    expect(text).toMatch(/refusing to serve 0\.0\.0\.0 without client keys: set SUBSECOND_API_KEYS/);
  });

  it("serves with client keys, passes its HEALTHCHECK, and exits 0 on SIGTERM", async () => {
    gateway = run(
      cmd.map((arg) => arg.replace("/app/config", join(app, "config"))),
      { PORT: "0", OPENROUTER_API_KEY: "x", SUBSECOND_API_KEYS: "test-key" },
    );
    gateway.stdout?.on("data", (data: Buffer) => (output += data.toString()));
    gateway.stderr?.on("data", (data: Buffer) => (output += data.toString()));
    const until = performance.now() + 10_000;
    while (port === 0) {
      const listening = /"msg":"listening".*?"url":"http:\/\/[^:]+:(\d+)"|"url":"http:\/\/[^:]+:(\d+)".*?"msg":"listening"/.exec(output);
      if (listening) port = Number(listening[1] ?? listening[2]);
      else if (gateway.exitCode !== null || performance.now() > until) throw new Error(`the gateway did not start:\n${output}`);
      else await new Promise((resolve) => setTimeout(resolve, 25));
    }
    expect(output).toMatch(/"url":"http:\/\/0\.0\.0\.0:\d+"/);

    const models = await fetch(`http://127.0.0.1:${port}/v1/models`, { headers: { authorization: "Bearer test-key" } });
    expect(models.status).toBe(200);
    expect((await fetch(`http://127.0.0.1:${port}/v1/models`)).status).toBe(401);

    const check = (checkPort: number) => {
      const child = run(healthcheck, { PORT: String(checkPort) });
      return once(child, "exit").then(([code]) => code as number | null);
    };
    expect(await check(port)).toBe(0);
    gateway.kill("SIGTERM");
    const [code] = (await once(gateway, "exit")) as [number | null];
    expect(code).toBe(0);
    // And the check fails once nothing answers.
    expect(await check(port)).toBe(1);
  });
});
