// --profile: each proxy alone at c=16 under --cpu-prof, then its top self-time functions and packages.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { kindOf } from "./workload.mjs";

/** Writes bench/results/profiles/<proxy>-<body>-<time>.cpuprofile for both proxies and prints their tops; returns 0. */
export async function runProfile({ root, options, children, targets, runner, log }) {
  const dir = join(root, "bench/results/profiles");
  mkdirSync(dir, { recursive: true });
  const mock = await targets.startMock();
  await targets.writeGatewayConfig(mock.url);
  const seconds = options.profileSeconds;
  const body = options.profileBody;
  const stamp = new Date().toISOString().replace(/[:.]/g, "-");
  const files = [];
  for (const [name, start] of [
    ["subsecond", targets.startGateway],
    ["floor", targets.startFloor],
  ]) {
    const file = `${name}-${body}-${stamp}.cpuprofile`;
    const proc = await start(`${name}-prof`, mock.url, ["--cpu-prof", "--cpu-prof-dir", dir, "--cpu-prof-name", file]);
    await targets.sanity(name, proc.url);
    const target = { name, url: proc.url, proc };
    const stream = body !== "json";
    await runner.warmUp(target, mock, [], [kindOf({ stream })]);
    const res = await runner.runPhase(
      target,
      {
        key: "profile",
        concurrency: 16,
        body,
        stream,
        warm: 500,
        win: seconds * 1000,
        abortAtEnd: body === "stream",
        stagger: body === "stream" ? 1300 : 0,
        cpu: true,
      },
      mock,
      [],
    );
    log(`${name}: ${res.rps.toFixed(0)} req/s, ${(res.cpuMsPerReq * 1000).toFixed(0)} µs CPU per request (profiler on)`);
    await children.stop(proc, 20_000);
    if (!existsSync(join(dir, file))) throw new Error(`${name} wrote no profile (it must exit cleanly on SIGTERM)`);
    files.push(join(dir, file));
  }
  await children.stop(mock);
  for (const f of files) {
    for (const by of ["function", "package"]) {
      const out = execFileSync(process.execPath, [join(root, "bench/profile-top.mjs"), f, "--top", by === "function" ? "30" : "12", "--by", by], {
        cwd: root,
        encoding: "utf8",
      });
      process.stdout.write(`\n${out}`);
    }
  }
  return 0;
}
