// The status page in a real browser: Debian's headless Chromium, driven by playwright-core (which downloads
// nothing), loads /ui from a gateway that serves live traffic from a scripted upstream, and the test reads
// what a person sees: the key prompt, the route's table, a model's state turning to open when its upstream
// starts failing, and the events that say so.
import { afterEach, describe, expect, it } from "vitest";
import { setTimeout as sleep } from "node:timers/promises";
import { chromium, type Browser, type Page } from "playwright-core";
import { scriptByModel, startFakeUpstream, type FakeUpstream, type ModelBehavior } from "../helpers/fake-upstream.js";
import { startTestGateway, testConfig, type TestGateway } from "../helpers/gateway.js";
import { findBinary } from "../observability/processes.js";

const CHROMIUM = findBinary("chromium");
const IN_CI = process.env.CI !== undefined && !["", "0", "false"].includes(process.env.CI);
const CHEAP = "acme/cheap";
const SPARE = "acme/spare";
/** Columns of a candidate's row after its model name (a row header), as the page lays them out. */
const STATE = 3;
const SHARE = 4;
const WOULD_CHOOSE = 6;

let upstream: FakeUpstream | undefined;
let gateway: TestGateway | undefined;
let browser: Browser | undefined;
let traffic: Promise<void> | undefined;
let stopTraffic = false;
afterEach(async () => {
  stopTraffic = true;
  await traffic;
  await browser?.close();
  await gateway?.close();
  await upstream?.close();
  browser = undefined;
  gateway = undefined;
  upstream = undefined;
  traffic = undefined;
});

/** Streams on route `chat` every 50 ms until the test ends; failures are the point, so they are ignored. */
function startTraffic(test: TestGateway): Promise<void> {
  stopTraffic = false;
  return (async () => {
    while (!stopTraffic) {
      try {
        const stream = await test.client.chat.completions.create({ model: "chat", stream: true, messages: [{ role: "user", content: "hi" }] });
        for await (const part of stream) void part;
      } catch {
        // a 5xx while every candidate fails: the page shows it, the test goes on
      }
      await sleep(50);
    }
  })();
}

/** Chromium without its sandbox only as root, where it refuses to start sandboxed. */
function launch(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM as string, chromiumSandbox: process.getuid?.() !== 0 });
}

function problemsOf(page: Page): string[] {
  const problems: string[] = [];
  page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
  page.on("console", (message) => {
    // A refused fetch (the 401 before the key is given) is logged by Chromium itself; anything else is a problem.
    if (message.type() === "error" && !message.text().startsWith("Failed to load resource: the server responded with a status of 401")) {
      problems.push(`console: ${message.text()}`);
    }
  });
  return problems;
}

if (CHROMIUM === undefined && IN_CI) {
  describe("the status page in a browser", () => {
    it("has chromium installed", () => {
      expect.fail("chromium not found on PATH: .ci/run installs it (Debian: apt-get install -y --no-install-recommends chromium)");
    });
  });
}

describe.skipIf(CHROMIUM === undefined)("the status page in a browser", () => {
  it("asks for the admin key, then shows the route live: a failing model turns open and the events say why", { timeout: 60_000 }, async () => {
    const behaviors: Record<string, ModelBehavior> = { [CHEAP]: { kind: "ok", ttftMs: 10 }, [SPARE]: { kind: "ok", ttftMs: 10 } };
    upstream = await startFakeUpstream(scriptByModel(behaviors));
    const test = await startTestGateway(
      testConfig(upstream.url, [{ id: CHEAP, input: 0.05, output: 0.1 }, { id: SPARE }], {
        auth: { adminKeysEnv: "TEST_ADMIN_KEYS", apiKeysEnv: "TEST_CLIENT_KEYS" },
        health: { consecutiveFailures: 3, openMs: 60_000 },
      }),
      { clientKey: "client", env: { TEST_ADMIN_KEYS: "admin", TEST_CLIENT_KEYS: "client" } },
    );
    gateway = test;
    traffic = startTraffic(test);

    browser = await launch();
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.setDefaultTimeout(10_000);
    const problems = problemsOf(page);
    await page.goto(`${test.url}/ui`);

    // The data needs the admin key: the page asks, refuses a wrong one, and keeps the right one for the tab.
    const keyField = page.getByLabel("Admin key");
    await keyField.fill("not-the-key");
    await page.getByRole("button", { name: "Show status" }).click();
    await page.getByText("That key was refused").waitFor();
    await keyField.fill("admin");
    await page.getByRole("button", { name: "Show status" }).click();

    const table = page.getByRole("table", { name: /^chat — ordered · target p95 ttft ≤ 800 ms/ });
    const cheap = table.getByRole("row", { name: new RegExp(`^${CHEAP}`) });
    const spare = table.getByRole("row", { name: new RegExp(`^${SPARE}`) });
    const cell = (row: typeof cheap, index: number) => async () => (await row.getByRole("cell").nth(index).textContent())?.trim();
    await table.waitFor();
    expect(await table.getByRole("columnheader").allTextContents()).toEqual([
      "Model",
      "Price in / out per 1M",
      "Predicted p95",
      "Observed p95",
      "State",
      "Share",
      "Samples",
      "Would choose",
    ]);
    expect(await cell(cheap, 0)()).toBe("$0.05 / $0.1");
    expect(await cell(cheap, STATE)()).toBe("ok");
    expect(await cell(cheap, WOULD_CHOOSE)()).toBe("yes");
    await expect.poll(cell(cheap, SHARE), { timeout: 10_000 }).toBe("100.0%");
    expect(await keyField.isVisible()).toBe(false);

    // The cheap model's upstream starts failing: within seconds its circuit shows open and traffic moves on.
    behaviors[CHEAP] = { kind: "error" };
    await expect.poll(cell(cheap, STATE), { timeout: 10_000 }).toBe("open");
    expect(await cell(cheap, WOULD_CHOOSE)()).toBe("circuit open");
    expect(await cell(spare, WOULD_CHOOSE)()).toBe("yes");

    const events = page.getByRole("region", { name: "Recent events" }).getByRole("listitem");
    const opened = events.filter({ hasText: "circuit.opened" });
    await opened.first().waitFor();
    expect(await opened.first().textContent()).toContain(`${CHEAP} — 3 failures in a row: circuit open for 60 s`);
    expect(await events.filter({ hasText: "fallback" }).first().textContent()).toContain(`chat: ${CHEAP} — failed; tried the next candidate`);
    expect(await page.locator("#events").getAttribute("aria-live")).toBe("polite");

    // The key lasts for the tab: a reload shows the data without asking again.
    await page.reload();
    await table.waitFor();
    expect(await keyField.isVisible()).toBe(false);

    // On a phone's width nothing needs horizontal scrolling: each candidate becomes a card.
    await page.setViewportSize({ width: 390, height: 844 });
    const overflow = () =>
      page.evaluate(() => [document.documentElement, ...Array.from(document.querySelectorAll(".scroll"))].map((box) => box.scrollWidth - box.clientWidth));
    await expect.poll(overflow, { timeout: 5000 }).toEqual([0, 0]);
    expect(problems).toEqual([]);
  });

  it("needs no key when the gateway is open", { timeout: 30_000 }, async () => {
    upstream = await startFakeUpstream(scriptByModel({ [CHEAP]: { kind: "ok", ttftMs: 10 } }));
    gateway = await startTestGateway(testConfig(upstream.url, [{ id: CHEAP }]));
    browser = await launch();
    const page = await browser.newPage();
    const problems = problemsOf(page);
    await page.goto(`${gateway.url}/ui`);
    await page.getByRole("table", { name: /^chat — ordered/ }).waitFor();
    expect(await page.getByLabel("Admin key").isVisible()).toBe(false);
    expect(await page.getByText("None yet").isVisible()).toBe(true);
    expect(problems).toEqual([]);
  });
});
