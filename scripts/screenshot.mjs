// Writes docs/status-page.png (run `npm run screenshot`): the status page of a running `npm run demo`,
// captured by Debian's headless Chromium (playwright-core) in the middle of the demo's story, when one
// model is browned out and another answers 5xx. Needs `chromium` on the PATH.
import { spawn } from "node:child_process";
import { once } from "node:events";
import { setTimeout as sleep } from "node:timers/promises";
import { chromium } from "playwright-core";

const root = new URL("..", import.meta.url);
const output = new URL("docs/status-page.png", root);
const DURATION_S = 60;
/** 48% into the story: qwen3.5-flash browned out, gpt-4.1-nano answering 502/503 (config/sim-profiles.yaml). */
const CAPTURE_AT_S = DURATION_S * 0.48;

const demo = spawn(process.execPath, ["dist/main.js", "demo", "--port", "0", "--sim-port", "0", "--no-ui", "--duration", String(DURATION_S)], {
  cwd: root,
  stdio: ["ignore", "pipe", "inherit"],
});
let printed = "";
demo.stdout.setEncoding("utf8");
const url = await new Promise((resolve, reject) => {
  demo.stdout.on("data", (text) => {
    printed += text;
    const found = /status page (http:\/\/\S+\/ui)/.exec(printed);
    if (found) resolve(found[1]);
  });
  demo.once("exit", (code) => reject(new Error(`the demo exited (${code}) before printing its status page:\n${printed}`)));
});
const startedAt = Date.now();

// Without its sandbox only as root, where Chromium refuses to start sandboxed.
const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", chromiumSandbox: process.getuid?.() !== 0 });
try {
  const page = await browser.newPage({ viewport: { width: 1600, height: 1000 }, colorScheme: "light" });
  await page.goto(url);
  await sleep(Math.max(0, CAPTURE_AT_S * 1000 - (Date.now() - startedAt)));
  await page.screenshot({ path: output.pathname });
  console.log(`wrote ${output.pathname} from ${url}`);
} finally {
  await browser.close();
  demo.kill("SIGINT");
  await once(demo, "exit");
}
