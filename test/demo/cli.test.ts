import { afterEach, describe, expect, it } from "vitest";
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { createServer, type AddressInfo, type Server } from "node:net";

const MAIN = new URL("../../dist/main.js", import.meta.url).pathname;
const ROOT = new URL("../../", import.meta.url).pathname;

let child: ChildProcess | undefined;

afterEach(() => {
  if (child && child.exitCode === null) child.kill("SIGKILL");
  child = undefined;
});

/** Runs `subsecond <args>` from the repository root, collecting its output. */
function start(args: string[]): { process: ChildProcess; output: () => string; exited: Promise<number | null> } {
  let output = "";
  child = spawn(process.execPath, [MAIN, ...args], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
  child.stdout?.on("data", (data: Buffer) => (output += data.toString()));
  child.stderr?.on("data", (data: Buffer) => (output += data.toString()));
  const exited = once(child, "exit").then(([code]) => code as number | null);
  return { process: child, output: () => output, exited };
}

async function waitFor(predicate: () => boolean, timeoutMs: number): Promise<void> {
  const until = performance.now() + timeoutMs;
  while (!predicate()) {
    if (performance.now() > until) throw new Error("timed out waiting");
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe("subsecond simulate", () => {
  it("prints its URL, serves the 15 models, and exits 0 on SIGTERM", async () => {
    const run = start(["simulate", "--port", "0", "--duration", "30s", "--seed", "3"]);
    await waitFor(() => /listening on (http:\S+)/.test(run.output()), 10_000);
    const url = /listening on (http:\S+)/.exec(run.output())?.[1] ?? "";
    const models = (await (await fetch(`${url}/models`)).json()) as { data: { id: string }[] };
    expect(models.data).toHaveLength(15);
    const answer = await fetch(`${url}/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "openai/gpt-4.1-nano", messages: [{ role: "user", content: "Hi" }], max_tokens: 5 }),
    });
    expect(answer.headers.get("x-sim-model")).toBe("openai/gpt-4.1-nano");
    run.process.kill("SIGTERM");
    expect(await run.exited).toBe(0);
    expect(run.output()).toContain("qwen-flash-brownout");
  });

  it("rejects a bad duration with a message and exit 1", async () => {
    const run = start(["simulate", "--duration", "soon"]);
    expect(await run.exited).toBe(1);
    expect(run.output()).toMatch(/--duration must be a positive duration/);
  });
});

describe("subsecond demo", () => {
  it("runs a short demo without a terminal (log lines), prints where to look and the summary, and exits 0", async () => {
    const run = start(["demo", "--duration", "4s", "--rate", "15", "--port", "0", "--sim-port", "0"]);
    expect(await run.exited).toBe(0);
    const output = run.output();
    expect(output.split("\n")[0]).toMatch(/^Subsecond demo: status page http:\/\/127\.0\.0\.1:\d+\/ui$/);
    expect(output).toMatch(/gateway +http:\/\/127\.0\.0\.1:\d+/);
    expect(output).toMatch(/metrics +http:\/\/127\.0\.0\.1:\d+\/metrics/);
    expect(output).toMatch(/decisions +http:\/\/127\.0\.0\.1:\d+\/admin\/routes/);
    expect(output).toContain('new OpenAI({ baseURL: "http://127.0.0.1:');
    expect(output).toMatch(/\[demo \+ +\d/);
    expect(output).toMatch(/SUMMARY +4\.\ds of traffic at 15 req\/s/);
    expect(output).toMatch(/realtime-chat decisions per slice of the story/);
    // Not a terminal: log lines, no escape code of any kind.
    expect(output).not.toContain("\x1b");
  });

  it("names the flag to pass when the gateway's or the simulator's port is taken, in one line, and exits 1", async () => {
    const taken: Server = createServer();
    await new Promise<void>((resolve) => taken.listen(0, "127.0.0.1", resolve));
    const { port } = taken.address() as AddressInfo;
    try {
      for (const [flags, flag] of [
        [["--port", String(port), "--sim-port", "0"], "--port"],
        [["--port", "0", "--sim-port", String(port)], "--sim-port"],
      ] as const) {
        const run = start(["demo", "--duration", "4s", ...flags]);
        expect(await run.exited, run.output()).toBe(1);
        expect(run.output()).toBe(`port ${port} is in use: pass ${flag} <n> (0 picks a free port)\n`);
      }
    } finally {
      taken.close();
    }
  });

  it("stops early on SIGINT, still printing the summary, and exits 0", async () => {
    const run = start(["demo", "--duration", "60", "--rate", "10", "--port", "0", "--sim-port", "0", "--no-ui"]);
    await waitFor(() => run.output().includes("Ctrl-C stops"), 10_000);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    run.process.kill("SIGINT");
    expect(await run.exited).toBe(0);
    expect(run.output()).toMatch(/SUMMARY .*\(stopped early by a signal\)/);
  });
});
