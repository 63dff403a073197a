// `npm run bench:quality`: the routing-quality bench's command line. Parses the options, runs the bench,
// prints a line per run and the table of medians, and says where the JSON is. Ctrl-C stops the run in
// progress (its gateway is stopped and the simulator closed); a second Ctrl-C kills the children at once.
import { killAllChildren } from "./processes.mjs";
import { parseBenchArgs, ROOT, runQualityBench, USAGE } from "./bench.mjs";

/** @returns {Promise<number>} the exit code */
async function main(argv) {
  let options;
  try {
    options = parseBenchArgs(argv, { root: ROOT });
  } catch (error) {
    process.stderr.write(`${error.message}\n\n${USAGE}`);
    return 2;
  }
  if (options.help) {
    process.stdout.write(USAGE);
    return 0;
  }

  const controller = new AbortController();
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) {
    process.on(signal, () => {
      if (controller.signal.aborted) {
        killAllChildren();
        process.exit(130);
      }
      process.stderr.write(`\n${signal}: stopping the run in progress…\n`);
      controller.abort(new Error(`stopped by ${signal}`));
    });
  }

  const runs = options.scenarios.length * options.seeds.length;
  process.stdout.write(
    `quality bench: ${options.scenarios.join(", ")} × seeds ${options.seeds.join(",")}: ${runs} runs of ${options.durationMs / 1000} s at ${options.ratePerSecond} req/s (about ${Math.ceil((runs * (options.durationMs + 5000)) / 60000)} min)\n`,
  );
  try {
    const { outPath, table, result } = await runQualityBench(options, {
      log: (line) => process.stdout.write(`${line}\n`),
      signal: controller.signal,
    });
    process.stdout.write(`\nMedians over seeds ${options.seeds.join(",")} (${result.runSeconds.toFixed(0)} s in all):\n${table}\n\nJSON: ${outPath}\n`);
    return 0;
  } catch (error) {
    process.stderr.write(`quality bench: ${controller.signal.aborted ? controller.signal.reason.message : (error?.stack ?? String(error))}\n`);
    return controller.signal.aborted ? 130 : 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
