// Text rendering of the demo: the start-up notice, the live view (fitted to the terminal, drawn on its
// alternate screen; no dependency), the periodic log line of --no-ui, and the final summary. Pure functions
// of demo-state.ts data; the live screen writes through the function it is given.
import { failedCount, shareOf, type DemoSummary, type Frame, type ModelRow, type RouteAttainment, type TimelineWindow } from "./demo-state.js";

/** Where to look once the demo runs. */
export interface IntroInfo {
  readonly gatewayUrl: string;
  readonly simulatorUrl: string;
  readonly route: string;
  readonly durationMs: number;
  readonly ratePerSecond: number;
  readonly seed: number;
  readonly configPath: string;
}

const pad = (text: string, width: number): string => (text.length > width ? `${text.slice(0, width - 1)}…` : text.padEnd(width));
/** Right-aligned in `width` columns, always after at least one space (truncated with … if need be). */
const padLeft = (text: string, width: number): string => ` ${text.length > width - 1 ? `${text.slice(0, width - 2)}…` : text}`.padStart(width);
const pct = (value: number): string => `${(value * 100).toFixed(value >= 0.995 || value === 0 ? 0 : 1)}%`;
const ms = (value: number | null): string => (value === null || !Number.isFinite(value) ? "-" : `${Math.round(value)} ms`);
const usd = (value: number): string => `$${value.toFixed(value >= 1 ? 2 : 6)}`;
const seconds = (valueMs: number): string => `${(valueMs / 1000).toFixed(1)}s`;
const plural = (n: number, noun: string): string => `${n} ${noun}${n === 1 ? "" : "s"}`;
/** The part of a catalog id after its vendor, e.g. `qwen3.5-flash-02-23`. */
const shortId = (id: string): string => id.slice(id.indexOf("/") + 1);

function countParts(map: ReadonlyMap<string | number, number>): string[] {
  return [...map].filter(([, n]) => n > 0).map(([key, n]) => `${key} ${n}`);
}

function counts(map: ReadonlyMap<string | number, number>, separator: string): string {
  const parts = countParts(map);
  return parts.length > 0 ? parts.join(separator) : "none";
}

function attainmentParts(rows: readonly RouteAttainment[]): string[] {
  const parts = rows
    .filter((row) => row.met + row.missed > 0)
    .map((row) => `${row.route} ${pct(row.met / (row.met + row.missed))} (${row.met}/${row.met + row.missed})`);
  return parts.length > 0 ? parts : ["no finished request yet"];
}

function attainmentText(rows: readonly RouteAttainment[]): string {
  return attainmentParts(rows).join(" · ");
}

/**
 * The notice printed before traffic starts: the gateway's status page first, then the other URLs, and how
 * to point a client at the gateway.
 */
export function renderIntro(info: IntroInfo): string {
  const base = `${info.gatewayUrl}/v1`;
  return [
    `Subsecond demo: status page ${info.gatewayUrl}/ui`,
    `${Math.round(info.durationMs / 1000)} s of simulated traffic at ${info.ratePerSecond} req/s (seed ${info.seed}, ${info.configPath})`,
    "",
    `  gateway        ${info.gatewayUrl}  (OpenAI-compatible base URL: ${base})`,
    `  metrics        ${info.gatewayUrl}/metrics`,
    `  decisions      ${info.gatewayUrl}/admin/routes`,
    `  simulator      ${info.simulatorUrl}  (simulated providers; their story lasts --duration)`,
    "",
    "  Point the openai SDK at it (any API key: the demo gateway is open on loopback):",
    `    const client = new OpenAI({ baseURL: "${base}", apiKey: "demo" });`,
    `    await client.chat.completions.create({ model: "${info.route}", messages: [{ role: "user", content: "Hi" }] });`,
    "  or curl:",
    `    curl -s ${base}/chat/completions -H 'content-type: application/json' -d '{"model":"${info.route}","messages":[{"role":"user","content":"Hi"}]}' -D - `,
    "",
    "  Ctrl-C stops the traffic early and prints the summary.",
    "",
  ].join("\n");
}

/** A terminal's size in character cells. */
export interface ScreenSize {
  readonly columns: number;
  readonly rows: number;
}

/** No limit: every line at its full length and every row shown (logs, captures, tests). */
const UNBOUNDED: ScreenSize = { columns: Number.POSITIVE_INFINITY, rows: Number.POSITIVE_INFINITY };

/** `text` in at most `width` characters, ending in … when cut. */
const fit = (text: string, width: number): string => (text.length <= width ? text : width < 1 ? "" : `${text.slice(0, width - 1)}…`);

/** One piece of a labelled line, and what joins it to the piece before it on the same line. */
interface Part {
  readonly text: string;
  readonly glue: string;
}

/** A labelled line of the live view (`traffic   256 sent · 234 ok · …`), wrapped between parts when narrow. */
interface Section {
  readonly label: string;
  readonly parts: readonly Part[];
}

/** The width of the live view's labels: continuation lines start under the first part. */
const INDENT = " ".repeat(10);

const section = (label: string, texts: readonly string[], glue = " · "): Section => ({ label, parts: texts.map((text) => ({ text, glue })) });

/** The section's lines at `width`: parts never split, a part longer than a line cut with …. */
function wrapSection({ label, parts }: Section, width: number): string[] {
  const [first, ...rest] = parts;
  const lines: string[] = [];
  let line = label + (first?.text ?? "");
  for (const part of rest) {
    if (line.length + part.glue.length + part.text.length <= width) line += part.glue + part.text;
    else {
      lines.push(line);
      line = INDENT + part.text;
    }
  }
  lines.push(line);
  return lines.map((text) => fit(text, width));
}

/** The section in one line: its first line, with … when parts were left out. */
function collapseSection(lines: readonly string[], width: number): string[] {
  const [first = ""] = lines;
  return [lines.length > 1 ? fit(`${first} …`, width) : first];
}

/** A column of the model table, after the model's name. */
interface Column {
  readonly title: string;
  /** Characters, the separating space(s) included. */
  readonly width: number;
  readonly cell: (row: ModelRow) => string;
  /** Left-aligned after two spaces (else right-aligned after at least one). */
  readonly left?: boolean;
}

const COLUMNS: readonly Column[] = [
  { title: "req/s", width: 6, cell: (row) => row.requestsPerSecond.toFixed(1) },
  { title: "share", width: 7, cell: (row) => (row.decisionShare === null ? "-" : pct(row.decisionShare)) },
  { title: "p95 obs", width: 9, cell: (row) => ms(row.observedP95Ms) },
  { title: "predicted", width: 10, cell: (row) => ms(row.predictedMs) },
  { title: "samples", width: 8, cell: (row) => row.samples.toFixed(1) },
  { title: "state", width: 11, cell: (row) => row.state, left: true },
  { title: "cost", width: 10, cell: (row) => usd(row.costUsd) },
];
/** Columns left out, in this order, when the terminal is too narrow; share, p95 obs and state always stay. */
const DROPPED_FIRST = ["samples", "req/s", "cost", "predicted"];
/** The model column: full ids up to 46 characters; columns are dropped before it gets narrower than 28. */
const MODEL_WIDTH = { min: 28, max: 46 } as const;
/** The row marker: → chosen, ∘ outside the route. */
const MARKER_WIDTH = 3;

/** The table's columns at `width`, and the width left to the model's name. */
function tableLayout(width: number): { columns: readonly Column[]; modelWidth: number } {
  let columns = COLUMNS;
  const used = () => MARKER_WIDTH + columns.reduce((sum, column) => sum + column.width, 0);
  for (const title of DROPPED_FIRST) {
    if (used() + MODEL_WIDTH.min <= width) break;
    columns = columns.filter((column) => column.title !== title);
  }
  return { columns, modelWidth: Math.max(1, Math.min(MODEL_WIDTH.max, width - used())) };
}

function cell(column: Column, text: string): string {
  return column.left ? `  ${pad(text, column.width - 2)}` : padLeft(text, column.width);
}

function tableHeader({ columns, modelWidth }: ReturnType<typeof tableLayout>): string {
  return `${" ".repeat(MARKER_WIDTH)}${pad("model", modelWidth)}${columns.map((column) => cell(column, column.title)).join("")}`;
}

function modelLine(row: ModelRow, { columns, modelWidth }: ReturnType<typeof tableLayout>): string {
  const marker = row.chosen ? " → " : row.candidate ? "   " : " ∘ ";
  return `${marker}${pad(row.id, modelWidth)}${columns.map((column) => cell(column, column.cell(row))).join("")}`;
}

/**
 * The model rows that fit in `room` lines. When they do not all fit, one line says how many are left
 * out, and idle rows (no traffic, no share of decisions) go first, from the bottom; the chosen row stays.
 */
function visibleRows(models: readonly ModelRow[], room: number): { rows: ModelRow[]; hidden: number } {
  if (models.length <= room) return { rows: [...models], hidden: 0 };
  const active = (row: ModelRow) => row.requestsPerSecond > 0 || (row.decisionShare ?? 0) > 0;
  const rank = (row: ModelRow) => (row.chosen ? 0 : active(row) ? 1 : 2);
  const kept = new Set(
    models
      .map((row, index) => ({ row, index }))
      .sort((a, b) => rank(a.row) - rank(b.row) || a.index - b.index)
      .slice(0, Math.max(0, room - 1))
      .map(({ index }) => index),
  );
  return { rows: models.filter((_, index) => kept.has(index)), hidden: models.length - kept.size };
}

/**
 * One frame of the live view as lines that fit `size` (default: unbounded), with no escape codes.
 * Nothing wraps: a line of parts that is too wide continues on the next line under its label; the model
 * table drops its least needed columns (samples, then req/s, cost, predicted) before the model's name gets
 * narrow. When the lines do not fit the rows, labelled lines collapse to one line each, the last fallbacks
 * and the links go, then idle model rows; whatever is still too long is cut with ….
 */
export function frameLines(frame: Frame, size: ScreenSize = UNBOUNDED): string[] {
  const { columns: width, rows: height } = size;
  const { tally } = frame;
  const barWidth = 30;
  const filled = Math.min(barWidth, Math.round(frame.storyFraction * barWidth));
  const recent = frame.recentFallbacks.map((event) => `+${seconds(event.atMs)} ${event.model} ${event.reason} ×${event.count}`);
  const title = section(
    "Subsecond demo   ",
    [
      `t=${seconds(frame.elapsedMs)}/${seconds(frame.durationMs)}`,
      `story ${pct(frame.storyFraction).padStart(4)} [${"#".repeat(filled)}${".".repeat(barWidth - filled)}]`,
      `simulator plays: ${frame.scripted.length > 0 ? frame.scripted.join(", ") : "healthy"}`,
    ],
    "   ",
  );
  const traffic = section("traffic   ", [
    `${frame.sent} sent (${frame.sentPerSecond.toFixed(1)}/s)`,
    `${tally.byOutcome.ok} ok`,
    `${failedCount(tally)} not ok`,
    `${frame.inFlight} in flight`,
    `${tally.rescued} rescued by fallback`,
    `stream cuts ended by an error event ${tally.byOutcome["stream-error-event"]}`,
    `silent truncations ${tally.byOutcome["silent-truncation"]}`,
  ]);
  const route: Section = {
    label: "route     ",
    parts: [
      { text: `${frame.route}: ${frame.target}`, glue: "" },
      { text: "(→ the brain's choice now;", glue: "   " },
      { text: "share: of its decisions in the last 5 s;", glue: " " },
      { text: "∘ other routes only)", glue: " " },
    ],
  };
  const fallbackParts = countParts(frame.fallbacksByReason);
  const target = section("target    ", attainmentParts(frame.attainment));
  const fallbacks = section("fallbacks ", fallbackParts.length > 0 ? fallbackParts : ["none"]);
  const last = section("last      ", recent.length > 0 ? recent : ["none yet"]);
  const cost = section("cost      ", [`${usd(frame.costUsd)} so far`]);
  const open = section("open      ", [
    `${frame.gatewayUrl}/ui (status page)`,
    `${frame.gatewayUrl}/v1 (OpenAI base URL)`,
    "Ctrl-C stops the traffic and prints the summary",
  ]);

  const lines = new Map<Section, string[]>([title, traffic, route, target, fallbacks, last, cost, open].map((s) => [s, wrapSection(s, width)]));
  const tableRoom = () => height - [...lines.values()].reduce((sum, text) => sum + text.length, 0) - 1;
  const collapse = (s: Section) => () => lines.set(s, collapseSection(lines.get(s) ?? [], width));
  const leaveOut = (s: Section) => () => lines.set(s, []);
  const shrink = [
    collapse(open),
    collapse(last),
    collapse(route),
    collapse(fallbacks),
    collapse(target),
    leaveOut(last),
    collapse(traffic),
    leaveOut(open),
    collapse(title),
  ];
  for (const step of shrink) {
    if (frame.models.length <= tableRoom()) break;
    step();
  }

  const table = tableLayout(width);
  const { rows, hidden } = visibleRows(frame.models, tableRoom());
  const at = (s: Section) => lines.get(s) ?? [];
  return [
    ...at(title),
    ...at(traffic),
    ...at(route),
    tableHeader(table),
    ...rows.map((row) => modelLine(row, table)),
    ...(hidden > 0 ? [`   … ${plural(hidden, "more model")} (the terminal is too short for them)`] : []),
    ...at(target),
    ...at(fallbacks),
    ...at(last),
    ...at(cost),
    ...at(open),
  ]
    .slice(0, Math.max(0, height))
    .map((line) => fit(line, width));
}

/** One frame of the live view as text (see `frameLines`). */
export function renderFrame(frame: Frame, size: ScreenSize = UNBOUNDED): string {
  return frameLines(frame, size).join("\n");
}

/** The one-line status of --no-ui, printed every few seconds. */
export function renderLogLine(frame: Frame): string {
  const shares = frame.models
    .filter((row) => row.decisionShare !== null && row.decisionShare >= 0.05)
    .sort((a, b) => (b.decisionShare ?? 0) - (a.decisionShare ?? 0))
    .map((row) => `${shortId(row.id)} ${pct(row.decisionShare ?? 0)}`);
  const routed = frame.attainment.find((row) => row.route === frame.route);
  const attainment = routed && routed.met + routed.missed > 0 ? pct(routed.met / (routed.met + routed.missed)) : "-";
  let fallbacks = 0;
  for (const n of frame.fallbacksByReason.values()) fallbacks += n;
  return (
    `[demo +${seconds(frame.elapsedMs).padStart(6)} story ${pct(frame.storyFraction).padStart(4)}] sent ${frame.sent} ok ${frame.tally.byOutcome.ok} not-ok ${failedCount(frame.tally)} ` +
    `| ${frame.route} share: ${shares.join(", ") || "-"} | target met ${attainment} | fallbacks ${fallbacks} | cost ${usd(frame.costUsd)}` +
    (frame.scripted.length > 0 ? ` | simulator plays: ${frame.scripted.join(", ")}` : "")
  );
}

/** The models given a column in the timeline: the focus model, then the most chosen others. */
function timelineColumns(summary: DemoSummary, count: number): string[] {
  const others = [...summary.decisionsByModel]
    .filter(([id]) => id !== summary.focusModel)
    .sort((a, b) => b[1] - a[1])
    .slice(0, count - 1)
    .map(([id]) => id);
  return [summary.focusModel, ...others];
}

function timelineLine(window: TimelineWindow, columns: readonly string[], width: number): string {
  let shown = 0;
  const cells = columns.map((id) => {
    const share = shareOf(window, id);
    shown += share;
    return padLeft(window.decisions > 0 ? pct(share) : "-", width);
  });
  const other = window.decisions > 0 ? pct(Math.max(0, 1 - shown)) : "-";
  const met = window.met + window.missed > 0 ? pct(window.met / (window.met + window.missed)) : "-";
  return [
    pad(`${Math.round(window.fromFraction * 100)}–${Math.round(window.toFraction * 100)}%`, 9),
    pad(`${seconds(window.startMs)}–${seconds(window.endMs)}`, 13),
    padLeft(String(window.decisions), 5),
    ...cells,
    padLeft(other, 7),
    padLeft(met, 7),
    padLeft(String(window.fallbacks), 6),
    padLeft(ms(window.focusObservedP95Ms), 10),
    padLeft(ms(window.focusPredictedMs), 10),
    `  ${window.scripted.join(", ")}`,
  ].join("");
}

/** How many hedges went out, how they ended, and how many the budget refused. */
function hedgeLine(summary: DemoSummary): string {
  const outcomes = summary.hedgesByOutcome;
  const sent = (outcomes.get("won") ?? 0) + (outcomes.get("lost") ?? 0) + (outcomes.get("failed") ?? 0);
  const perHundred = summary.sent > 0 ? ((100 * sent) / summary.sent).toFixed(1) : "0.0";
  const ended = counts(new Map([...outcomes].filter(([outcome]) => outcome !== "over_budget")), ", ");
  return `hedges    ${sent} sent (${perHundred} per 100 requests) — ${ended}; ${outcomes.get("over_budget") ?? 0} due but over budget`;
}

/** How many streams cut after content another model finished, and what became of the others. */
function continuationLine(summary: DemoSummary): string {
  const outcomes = summary.continuationsByOutcome;
  const others = counts(new Map([...outcomes].filter(([outcome]) => outcome !== "completed")), ", ");
  return `continued ${plural(outcomes.get("completed") ?? 0, "stream")} cut mid-answer, finished by another model; other outcomes: ${others}`;
}

/** The final summary. */
export function renderSummary(summary: DemoSummary): string {
  const { tally } = summary;
  const routedErrors = [...tally.routedHttpErrorsByStatus.values()].reduce((a, b) => a + b, 0);
  const pinnedErrors = tally.notOkByKind.pinned;
  const columns = timelineColumns(summary, 4);
  const width = 16;
  let fallbacks = 0;
  for (const n of summary.fallbacksByReason.values()) fallbacks += n;
  const costs = [...summary.costByModel].sort((a, b) => b[1] - a[1]).map(([id, value]) => `${shortId(id)} ${usd(value)}`);
  const lines = [
    "",
    `SUMMARY  ${seconds(summary.ranMs)} of traffic at ${summary.ratePerSecond} req/s, seed ${summary.seed}${summary.interrupted ? " (stopped early by a signal)" : ""}; gateway ${summary.gatewayUrl}`,
    "         every number below is what the gateway answered (status, x-subsecond-* headers, stream endings) or counted (/metrics, brain)",
    `requests  ${summary.sent} sent · ${tally.byOutcome.ok} ok · ${failedCount(tally)} not ok${summary.skipped > 0 ? ` · ${summary.skipped} not sent (too many in flight)` : ""}`,
    `          not ok: ${plural(tally.byOutcome["http-error"], "HTTP error")} (${counts(tally.httpErrorsByStatus, ", ")}), ${plural(tally.byOutcome["stream-error-event"], "stream")} cut mid-answer and ended by an error event, ` +
      `${tally.byOutcome["silent-truncation"]} silent truncations, ${tally.byOutcome["network-error"]} network errors, ${tally.byOutcome.abandoned} abandoned`,
    `          HTTP errors on routes (${summary.route}, auto, free): ${routedErrors}${
      routedErrors === 0
        ? " — every failure before the first token was rescued by a fallback"
        : ` (${counts(tally.routedHttpErrorsByStatus, ", ")}; ${tally.routedTimeoutsAfterBudget} of them 504s once the whole ${tally.budgetMs / 1000} s budget was spent on timeouts)`
    }`,
    `          not ok on pinned ids: ${pinnedErrors} (a pinned id is served by that model alone: no fallback by design)`,
    `          rescued by a fallback: ${tally.rescued} answers (x-subsecond-attempts > 1); reasons: ${counts(tally.reasons, ", ")}`,
    `fallbacks ${fallbacks} — by reason: ${counts(summary.fallbacksByReason, ", ")}`,
    `          by model left: ${counts(new Map([...summary.fallbacksByModel].sort((a, b) => b[1] - a[1])), ", ")}`,
    hedgeLine(summary),
    continuationLine(summary),
    `upstream  attempts by outcome: ${counts(summary.attemptsByOutcome, ", ")}`,
    `cost      ${usd(summary.costUsd)} total — ${costs.join(", ") || "none"}`,
    `target    ${attainmentText(summary.attainment)}`,
    `decisions ${summary.route}: ${[...summary.decisionsByReason.values()].reduce((a, b) => a + b, 0)} — ${counts(summary.decisionsByReason, ", ")}`,
    "",
    `${summary.route} decisions per slice of the story (share of first choices; p95/pred: the brain's measured and predicted p95 TTFT of ${shortId(summary.focusModel)} at the slice's end)`,
    [
      pad("story", 9),
      pad("time", 13),
      padLeft("n", 5),
      ...columns.map((id) => padLeft(shortId(id), width)),
      padLeft("other", 7),
      padLeft("met", 7),
      padLeft("fallb", 6),
      padLeft("p95", 10),
      padLeft("pred", 10),
      "  simulator played",
    ].join(""),
    ...summary.timeline.map((window) => timelineLine(window, columns, width)),
    "",
  ];
  return lines.join("\n");
}

/** Draws the live view on a terminal: a whole screen at a time, from the top-left corner. */
export interface LiveScreen {
  /**
   * Shows what `render` returns for the terminal's current size, and again after `resize()`. The first call
   * switches to the alternate screen, so what was printed before, and the scrollback, stay as they were.
   */
  show(render: (size: ScreenSize) => readonly string[]): void;
  /** The terminal changed size: clears it and shows the last picture again, rendered for the new size. */
  resize(): void;
  /** Shows the cursor and goes back to the normal screen (a no-op when not shown or already closed). */
  close(): void;
}

/** Alternate screen on (xterm's mode 1049: saves the cursor and clears), cursor hidden (DECTCEM). */
const ENTER_SCREEN = "\x1b[?1049h\x1b[?25l";
/** Cursor shown, normal screen back with the cursor where it was. */
const LEAVE_SCREEN = "\x1b[?25h\x1b[?1049l";

/**
 * A live screen writing ANSI escape codes (ECMA-48: CUP, EL, ED; xterm's alternate screen) to `write`.
 * Every line is placed with its own cursor position and cut to `size().columns`, and only `size().rows`
 * lines are drawn: nothing wraps or scrolls, whatever the width, so each picture replaces the last one.
 */
export function createLiveScreen(write: (text: string) => void, size: () => ScreenSize): LiveScreen {
  let render: ((size: ScreenSize) => readonly string[]) | undefined;
  let open = false;
  const draw = (clear: boolean) => {
    if (render === undefined) return;
    const { columns, rows } = size();
    const lines = render({ columns, rows }).slice(0, rows);
    // Each line is erased before it is written: after a full-width line the cursor waits past the last
    // column, and an erase there would take the line's last character with it.
    let text = open ? "" : ENTER_SCREEN;
    open = true;
    if (clear) text += "\x1b[2J";
    text += lines.map((line, index) => `\x1b[${index + 1};1H\x1b[2K${fit(line, columns)}`).join("");
    if (lines.length < rows) text += `\x1b[${lines.length + 1};1H\x1b[J`;
    write(text);
  };
  return {
    show(next) {
      render = next;
      draw(false);
    },
    resize() {
      if (open) draw(true);
    },
    close() {
      render = undefined;
      if (!open) return;
      open = false;
      write(LEAVE_SCREEN);
    },
  };
}
