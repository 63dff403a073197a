// The status page served at GET /ui: one self-contained HTML document (inline CSS and script, no CDN, no
// build step) that polls /admin/routes and /admin/events every second. It holds no data itself: the data
// endpoints need the admin key, which the page asks for and keeps in the tab's sessionStorage.
import { createHash } from "node:crypto";

const STYLE = `
:root { color-scheme: light dark; --bg: #ffffff; --fg: #1b1f24; --muted: #57606a; --line: #d0d7de; --head: #f6f8fa;
  --ok-bg: #dafbe1; --ok-fg: #116329; --warn-bg: #fff8c5; --warn-fg: #7d4e00; --bad-bg: #ffebe9; --bad-fg: #a40e26;
  --info-bg: #ddf4ff; --info-fg: #0a4a8a; --accent: #0a58ca; }
@media (prefers-color-scheme: dark) {
  :root { --bg: #0d1117; --fg: #e6edf3; --muted: #9da7b3; --line: #30363d; --head: #161b22;
    --ok-bg: #12361f; --ok-fg: #7ee2a0; --warn-bg: #3b2e05; --warn-fg: #f2cc60; --bad-bg: #4a1419; --bad-fg: #ffa8a8;
    --info-bg: #0c2d4d; --info-fg: #9ccdff; --accent: #79b8ff; }
}
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--fg); font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
header { display: flex; flex-wrap: wrap; gap: .25rem 1rem; align-items: baseline; padding: .75rem 1rem; border-bottom: 1px solid var(--line); }
h1 { font-size: 1.15rem; margin: 0; }
h2 { font-size: 1rem; margin: 1.25rem 0 .5rem; }
main { padding: 0 1rem 2rem; max-width: 80rem; }
.muted { color: var(--muted); }
#status { font-weight: 600; }
#status.bad { color: var(--bad-fg); }
form { margin: 1rem 0; padding: .75rem; border: 1px solid var(--line); border-radius: 6px; max-width: 32rem; }
form[hidden] { display: none; }
label { display: block; font-weight: 600; margin-bottom: .25rem; }
input { font: inherit; padding: .35rem .5rem; width: 100%; max-width: 22rem; color: var(--fg); background: var(--bg); border: 1px solid var(--muted); border-radius: 4px; }
button { font: inherit; padding: .35rem .75rem; margin-top: .5rem; border: 1px solid var(--accent); border-radius: 4px; background: var(--accent); color: var(--bg); cursor: pointer; }
button.link { background: none; color: var(--accent); border: none; padding: 0; margin: 0; text-decoration: underline; }
:focus-visible { outline: 3px solid var(--accent); outline-offset: 2px; }
.scroll { overflow-x: auto; border: 1px solid var(--line); border-radius: 6px; margin-bottom: 1rem; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
caption { text-align: left; padding: .6rem .75rem; font-weight: 600; }
caption .muted { font-weight: 400; }
th, td { padding: .35rem .75rem; border-top: 1px solid var(--line); text-align: right; white-space: nowrap; }
thead th { background: var(--head); font-weight: 600; }
th[scope="row"], thead th:first-child { text-align: left; font-weight: 500; }
th[scope="row"] { white-space: normal; overflow-wrap: anywhere; min-width: 10rem; }
tr.chosen th[scope="row"]::before { content: "\\2192  " / ""; color: var(--accent); font-weight: 700; }
.badge { display: inline-block; padding: 0 .45rem; border-radius: 999px; font-size: .85em; font-weight: 600; }
.ok { background: var(--ok-bg); color: var(--ok-fg); }
.half-open, .warn { background: var(--warn-bg); color: var(--warn-fg); }
.cooling, .info { background: var(--info-bg); color: var(--info-fg); }
.open, .bad { background: var(--bad-bg); color: var(--bad-fg); }
.over { color: var(--bad-fg); font-weight: 600; }
ol { list-style: none; margin: 0; padding: 0; }
li { display: grid; grid-template-columns: 5.5rem 8.5rem 1fr; gap: .5rem; padding: .3rem 0; border-top: 1px solid var(--line); }
li time { color: var(--muted); font-variant-numeric: tabular-nums; }
.sr-only { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
/* A wide screen shows the events beside the routes. */
@media (min-width: 90rem) {
  main { display: grid; grid-template-columns: minmax(0, 1fr) minmax(22rem, 28rem); gap: 0 1.5rem; max-width: none; align-items: start; }
  main > form { grid-column: 1 / -1; }
  #events-section { position: sticky; top: 0; }
  li { grid-template-columns: 5.5rem 1fr; }
  li .what { grid-column: 1 / -1; }
}
@media (max-width: 40rem) {
  body { font-size: 14px; }
  main { padding: 0 .5rem 1.5rem; }
  th, td { padding: .3rem .45rem; }
  li { grid-template-columns: 4.5rem 1fr; }
  li .what { grid-column: 1 / -1; }
  /* Each candidate as a card: the model's name on top, then its figures labelled by their column. */
  table, caption, tbody, th[scope="row"], td { display: block; }
  thead { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); }
  tr { display: grid; grid-template-columns: repeat(3, 1fr); border-top: 1px solid var(--line); padding: .25rem 0; }
  th[scope="row"] { grid-column: 1 / -1; border: none; font-weight: 600; }
  td { border: none; text-align: left; white-space: normal; }
  td::before { content: attr(data-label); display: block; font-size: .8em; color: var(--muted); }
}
`;

// Browser script: plain ES2020, DOM built with textContent only (nothing from the gateway becomes markup).
const SCRIPT = `
"use strict";
const KEY = "subsecond.adminKey";
const $ = (id) => document.getElementById(id);
const el = (tag, props, ...children) => {
  const node = document.createElement(tag);
  Object.assign(node, props);
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
  return node;
};
const ms = (value) => (value === null || value === undefined || !Number.isFinite(value) ? "\\u2013" : Math.round(value) + " ms");
const pct = (value) => (value === null || value === undefined ? "\\u2013" : (Math.round(value * 1000) / 10).toFixed(1) + "%");
const usd = (value) => "$" + (value >= 1 ? value.toFixed(2) : String(Number(value.toPrecision(2))));
const clock = (iso) => new Date(iso).toLocaleTimeString([], { hour12: false });
const EXCLUSION = { "over-target": "over target", context: "context too small", capability: "lacks capability", open: "circuit open", cooling: "cooling" };
let lastEventId = 0;
let timer;

function authHeaders() {
  const key = sessionStorage.getItem(KEY);
  return key ? { authorization: "Bearer " + key } : {};
}

function setStatus(text, bad) {
  $("status").textContent = text;
  $("status").className = bad ? "bad" : "";
  // Only problems are announced: the ticking "updated" time would be read out every second.
  const alert = bad ? text : "";
  if ($("alert").textContent !== alert) $("alert").textContent = alert;
}

async function getJson(path) {
  const response = await fetch(path, { headers: authHeaders(), cache: "no-store" });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const error = new Error((body.error && body.error.message) || "HTTP " + response.status);
    error.status = response.status;
    throw error;
  }
  return body;
}

function askForKey(message) {
  $("key-form").hidden = false;
  $("key-message").textContent = message;
  $("forget").hidden = true;
}

function targetText(target) {
  return "p" + target.percentile + " " + target.metric + " \\u2264 " + target.ms + " ms";
}

function renderRoute(route) {
  const hedging = route.hedging || {};
  const caption = el(
    "caption",
    {},
    route.name,
    el(
      "span",
      { className: "muted" },
      " \\u2014 " + route.strategy + " \\u00b7 target " + targetText(route.target) + " \\u00b7 attainment " + pct(route.attainment) +
        (hedging.enabled ? " \\u00b7 hedges " + pct(hedging.hedgeRate) + (hedging.hedgeWinRate === null ? "" : " (won " + pct(hedging.hedgeWinRate) + ")") : ""),
    ),
  );
  const columns = ["Model", "Price in / out per 1M", "Predicted p" + route.target.percentile, "Observed p" + route.target.percentile, "State", "Share", "Samples", "Would choose"];
  const head = el("thead", {}, el("tr", {}, ...columns.map((name) => el("th", { scope: "col", textContent: name }))));
  const body = el("tbody", {});
  for (const candidate of route.candidates) {
    const over = candidate.observedMs !== null && candidate.observedMs > route.target.ms;
    const observed = el("td", {}, ms(candidate.observedMs));
    if (over) observed.append(" ", el("span", { className: "over", textContent: "over" }));
    const choice = candidate.wouldChoose ? "yes" : candidate.exclusion ? EXCLUSION[candidate.exclusion] || candidate.exclusion : "no";
    const row = el(
      "tr",
      { className: candidate.wouldChoose ? "chosen" : "" },
      el("th", { scope: "row", textContent: candidate.id }),
      el("td", { textContent: usd(candidate.pricePerMTok.input) + " / " + usd(candidate.pricePerMTok.output) }),
      el("td", { textContent: ms(candidate.predictedMs) }),
      observed,
      el("td", {}, el("span", { className: "badge " + candidate.state, textContent: candidate.state })),
      el("td", { textContent: pct(candidate.share) }),
      el("td", { textContent: candidate.samples.toFixed(1) }),
      el("td", { textContent: choice }),
    );
    columns.forEach((name, index) => row.children[index].setAttribute("data-label", name));
    body.append(row);
  }
  const table = el("table", {}, caption, head, body);
  // Explicit roles: the phone layout restyles the table as cards, which can drop the implicit ones.
  const roles = [["table", "table"], ["thead, tbody", "rowgroup"], ["tr", "row"], ["thead th", "columnheader"], ["tbody th", "rowheader"], ["td", "cell"]];
  table.setAttribute("role", "table");
  for (const [selector, role] of roles) for (const node of table.querySelectorAll(selector)) node.setAttribute("role", role);
  const region = el("div", { className: "scroll", tabIndex: 0 }, table);
  region.setAttribute("role", "region");
  region.setAttribute("aria-label", "Route " + route.name);
  return region;
}

function renderRoutes(data) {
  $("routes").replaceChildren(...data.routes.map(renderRoute));
  $("config").textContent = "config " + data.configHash.slice(0, 12) + (data.catalogRefreshedAt ? " \\u00b7 catalog " + clock(data.catalogRefreshedAt) : "");
}

const KIND_CLASS = { fallback: "warn", "hedge.fired": "info", "hedge.won": "ok", "hedge.lost": "info", "hedge.failed": "bad", "circuit.opened": "bad", "circuit.closed": "ok", cooldown: "info", "reload.ok": "ok", "reload.failed": "bad", "catalog.ok": "ok", "catalog.failed": "bad" };

function renderEvents(page) {
  const list = $("events");
  if (page.latestId < lastEventId) {
    list.replaceChildren();
    lastEventId = 0;
  }
  for (const event of page.events) {
    const what = (event.route ? event.route + ": " : "") + (event.models.length > 0 ? event.models.join(" \\u2192 ") + " \\u2014 " : "") + event.detail;
    list.prepend(
      el(
        "li",
        {},
        el("time", { dateTime: event.time, textContent: clock(event.time) }),
        el("span", {}, el("span", { className: "badge " + (KIND_CLASS[event.kind] || "info"), textContent: event.kind })),
        el("span", { className: "what", textContent: what }),
      ),
    );
    lastEventId = event.id;
  }
  while (list.children.length > 50) list.lastElementChild.remove();
  $("no-events").hidden = list.children.length > 0;
}

async function refresh() {
  clearTimeout(timer);
  try {
    const [routes, events] = await Promise.all([getJson("/admin/routes"), getJson("/admin/events?since=" + lastEventId)]);
    $("key-form").hidden = true;
    $("forget").hidden = !sessionStorage.getItem(KEY);
    renderRoutes(routes);
    renderEvents(events);
    setStatus("live \\u00b7 updated " + new Date().toLocaleTimeString([], { hour12: false }), false);
  } catch (error) {
    if (error.status === 401) {
      const had = sessionStorage.getItem(KEY);
      sessionStorage.removeItem(KEY);
      askForKey(had ? "That key was refused: enter an admin key." : "This gateway needs an admin key to show its status.");
      setStatus("waiting for an admin key", true);
      return;
    }
    setStatus(error.status ? error.message : "cannot reach the gateway; retrying", true);
    if (error.status === 403) return;
  }
  timer = setTimeout(refresh, 1000);
}

$("key-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const key = $("key").value.trim();
  if (!key) return;
  sessionStorage.setItem(KEY, key);
  $("key").value = "";
  void refresh();
});
$("forget").addEventListener("click", () => {
  sessionStorage.removeItem(KEY);
  void refresh();
});
document.addEventListener("visibilitychange", () => {
  if (!document.hidden) void refresh();
});
void refresh();
`;

const HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Subsecond status</title>
<link rel="icon" href="data:,">
<style>${STYLE}</style>
</head>
<body>
<header>
<h1>Subsecond status</h1>
<span id="status">loading…</span>
<span id="alert" class="sr-only" role="alert"></span>
<span id="config" class="muted"></span>
<button type="button" id="forget" class="link" hidden>Forget the admin key</button>
</header>
<main>
<form id="key-form" hidden>
<label for="key">Admin key</label>
<p id="key-message" class="muted"></p>
<input id="key" type="password" autocomplete="off" required>
<p class="muted">Kept in this browser tab only (sessionStorage) and sent as <code>Authorization: Bearer</code> to /admin/routes and /admin/events.</p>
<button type="submit">Show status</button>
</form>
<section aria-labelledby="routes-heading">
<h2 id="routes-heading">Routes</h2>
<div id="routes"></div>
</section>
<section id="events-section" aria-labelledby="events-heading">
<h2 id="events-heading">Recent events</h2>
<p id="no-events" class="muted">None yet: fallbacks, hedges, circuit changes, cooldowns and reloads appear here.</p>
<ol id="events" aria-live="polite" aria-relevant="additions"></ol>
</section>
</main>
<script>${SCRIPT}</script>
</body>
</html>
`;

const sha256 = (text: string) => `'sha256-${createHash("sha256").update(text).digest("base64")}'`;

/** The page and the headers it is served with: a CSP that admits only its own inline style and script. */
export const STATUS_PAGE = {
  html: HTML,
  headers: {
    "content-type": "text/html; charset=utf-8",
    "cache-control": "no-cache",
    "content-security-policy": `default-src 'none'; style-src ${sha256(STYLE)}; script-src ${sha256(SCRIPT)}; connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
  },
} as const;
