// ESLint: typescript-eslint's recommended rules, and the import boundaries of src/ (README, "Develop"):
// imports go down the layers http -> proxy -> router, metrics -> config -> errors, and the pure router
// imports no I/O at all. A layer that imports upward fails the lint.
import js from "@eslint/js";
import tseslint from "typescript-eslint";

const rule = (group, message) => ({ group, message });
const COMPOSITION = ["../main.js", "../gateway.js", "../demo/*", "../cli/*"];
const PROM_CLIENT = rule(["prom-client"], "only src/metrics imports prom-client.");
const OTEL = rule(["@opentelemetry/*"], "only src/observability imports OpenTelemetry, loaded when traces are on.");

/** Per part of src/, the imports it may not make (each file matches one entry; later entries win). */
const boundaries = {
  "src/**": [PROM_CLIENT, OTEL],
  "src/errors.ts": [PROM_CLIENT, OTEL, rule(["./*", "../*"], "errors.ts is the bottom layer: it imports nothing of the gateway.")],
  "src/config/**": [
    PROM_CLIENT,
    OTEL,
    rule(["../router/*", "../proxy/*", "../http/*", "../metrics/*", "../sim/*", ...COMPOSITION], "config is below router, proxy, http and metrics."),
  ],
  "src/router/**": [
    rule(["../proxy/*", "../http/*", "../metrics/*", "../sim/*", ...COMPOSITION], "the router is below proxy, http and metrics."),
    rule(
      ["node:*", "hono", "hono/*", "@hono/*", "undici", "prom-client", "pino", "@opentelemetry/*"],
      "the router is pure: time and randomness are injected, and it does no I/O.",
    ),
  ],
  "src/events/**": [PROM_CLIENT, OTEL, rule(["../proxy/*", "../http/*", "../metrics/*", ...COMPOSITION], "events are below proxy and http.")],
  "src/metrics/**": [OTEL, rule(["../proxy/*", "../http/*", ...COMPOSITION], "metrics are below proxy and http.")],
  "src/proxy/**": [PROM_CLIENT, OTEL, rule(["../http/*", ...COMPOSITION], "proxy is below http: the HTTP layer calls it, never the other way.")],
  "src/http/**": [PROM_CLIENT, OTEL, rule(COMPOSITION, "http is below the composition root (gateway.ts, main.ts).")],
  "src/observability/**": [PROM_CLIENT, rule(["../proxy/*", "../http/*", ...COMPOSITION], "observability is below proxy and http: they call it.")],
};

export default tseslint.config(
  { ignores: ["dist/", "node_modules/", "bench/", "scripts/", "coverage/"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
    },
  },
  ...Object.entries(boundaries).map(([files, patterns]) => ({ files: [files], rules: { "no-restricted-imports": ["error", { patterns }] } })),
);
