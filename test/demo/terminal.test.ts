// The demo's live view in real terminals: `subsecond demo` (built, default rate and seed) in tmux panes of
// 80×24, 100×30 and 160×45, on a tmux server of this test's own, captured after 20 s of running.
import { afterEach, describe, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { findBinary } from "../observability/processes.js";
import { useTempDirs } from "../helpers/temp-dir.js";

const MAIN = new URL("../../dist/main.js", import.meta.url).pathname;
const ROOT = new URL("../../", import.meta.url).pathname;
const TMUX = findBinary("tmux");
const IN_CI = process.env.CI !== undefined && !["", "0", "false"].includes(process.env.CI);
const tempDir = useTempDirs();
const HEADER = "Subsecond demo";
const EXITED = "demo exited with status";

interface Pane {
  readonly session: string;
  readonly columns: number;
  readonly rows: number;
  /** How the demo ends: Ctrl-C after the capture, or the end of a short story. */
  readonly end: "ctrl-c" | "story";
}

const PANES: readonly Pane[] = [
  { session: "demo-80x24", columns: 80, rows: 24, end: "ctrl-c" },
  { session: "demo-100x30", columns: 100, rows: 30, end: "story" },
  { session: "demo-160x45", columns: 160, rows: 45, end: "ctrl-c" },
];

const quote = (text: string) => `'${text.replaceAll("'", "'\\''")}'`;

/** A tmux server of this test's own (its socket in a scratch directory): no one else's session is seen or touched. */
function createTmux(socket: string): (...args: string[]) => string {
  return (...args) => execFileSync(TMUX as string, ["-S", socket, ...args], { encoding: "utf8", timeout: 10_000 });
}

if (TMUX === undefined && IN_CI) {
  describe("the demo in a terminal", () => {
    it("has tmux installed", () => {
      expect.fail("tmux not found on PATH: .ci/run installs it (Debian: apt-get install -y --no-install-recommends tmux)");
    });
  });
}

describe.skipIf(TMUX === undefined)("the demo in a terminal", () => {
  const started: Pane[] = [];
  let tmux: (...args: string[]) => string = () => "";

  // Before the scratch directory with the server's socket goes (hooks of a describe run before the file's).
  afterEach(() => {
    for (const pane of started.splice(0)) {
      try {
        tmux("kill-session", "-t", pane.session);
      } catch {
        // already gone
      }
    }
  });

  it("shows exactly one frame after 20 s at 80×24, 100×30 and 160×45, no line wider than the pane, and restores the terminal", async () => {
    tmux = createTmux(join(tempDir("subsecond-tmux-"), "tmux.sock"));
    /** The pane's visible screen (the alternate one while it is on), or with `history` its normal screen's scrollback too. */
    const capture = (pane: Pane, history = false) => tmux("capture-pane", "-p", "-t", pane.session, ...(history ? ["-S", "-1000"] : []));
    const paneFlags = (pane: Pane) => tmux("display-message", "-p", "-t", pane.session, "alternate=#{alternate_on} cursor=#{cursor_flag}").trim();
    for (const pane of PANES) {
      const demo = [
        quote(process.execPath),
        quote(MAIN),
        "demo",
        "--port",
        "0",
        "--sim-port",
        "0",
        ...(pane.end === "story" ? ["--duration", "22s"] : []),
      ].join(" ");
      // The shell outlives the demo, so the pane stays open: its screen and modes can be read after the exit.
      // It catches SIGINT (Ctrl-C reaches the whole foreground group) to go on after the demo stopped.
      const script = `trap : INT; ${demo}; echo "${EXITED} $?"; sleep 120`;
      tmux("new-session", "-d", "-s", pane.session, "-x", String(pane.columns), "-y", String(pane.rows), "-c", ROOT, script);
      started.push(pane);
    }
    await sleep(20_500);

    /** The pane shows one frame, within its size, with the table's header and one chosen model. */
    const expectOneFrame = (pane: Pane, columns: number, rows: number) => {
      const screen = capture(pane).replace(/\n$/, "");
      const lines = screen.split("\n");
      const context = `${pane.session} at ${columns}×${rows}:\n${screen}`;
      expect(lines.length, context).toBeLessThanOrEqual(rows);
      expect(
        lines.filter((line) => line.includes(HEADER)),
        context,
      ).toHaveLength(1);
      expect(lines[0], context).toMatch(/^Subsecond demo {3}t=\d+\.\ds\//);
      for (const line of lines) expect(line.length, `${pane.session}: ${line}`).toBeLessThanOrEqual(columns);
      expect(
        lines.some((line) => /^ {3}model .*share +p95 obs +predicted .*state +cost$/.test(line)),
        context,
      ).toBe(true);
      expect(
        lines.filter((line) => line.startsWith(" → ")),
        context,
      ).toHaveLength(1);
      expect(paneFlags(pane), context).toBe("alternate=1 cursor=0");
    };
    for (const pane of PANES) expectOneFrame(pane, pane.columns, pane.rows);

    // A resized terminal gets a frame for its new size at once (the refresh is every second).
    const resized = PANES[2] as Pane;
    tmux("resize-window", "-t", resized.session, "-x", "90", "-y", "20");
    await sleep(200);
    expectOneFrame(resized, 90, 20);

    for (const pane of PANES) if (pane.end === "ctrl-c") tmux("send-keys", "-t", pane.session, "C-c");
    const until = performance.now() + 30_000;
    while (!PANES.every((pane) => capture(pane, true).includes(EXITED)) && performance.now() < until) await sleep(250);

    for (const pane of PANES) {
      const normal = capture(pane, true);
      const context = `${pane.session}:\n${normal}`;
      expect(normal, context).toContain(`${EXITED} 0`);
      expect(paneFlags(pane), context).toBe("alternate=0 cursor=1");
      // Frames stayed on the alternate screen: the normal one has the intro, the summary and no frame.
      expect(normal, context).toMatch(/^Subsecond demo: status page http:\/\/127\.0\.0\.1:\d+\/ui$/m);
      expect(normal, context).toMatch(/^SUMMARY /m);
      expect(normal, context).not.toMatch(/^Subsecond demo {3}t=/m);
      if (pane.end === "ctrl-c") expect(normal, context).toContain("(stopped early by a signal)");
    }
  }, 70_000);
});
