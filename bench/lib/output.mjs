// How the bench writes: progress to stderr, and the number formats of its report.
/** One progress line on stderr (stdout carries only the report). */
export const log = (...a) => process.stderr.write(`${a.join(" ")}\n`);

/** A share (0..1) as a whole percentage. */
export const pct = (x) => `${(x * 100).toFixed(0)}%`;
/** Milliseconds with a sign when not negative, 3 decimals; "-" when not measured. */
export const fmtMs = (v) => (Number.isFinite(v) ? `${v >= 0 ? "+" : ""}${v.toFixed(3)}` : "-");
/** A signed value with `d` decimals; "-" when not measured. */
export const fmtSigned = (v, d = 3) => (Number.isFinite(v) ? `${v >= 0 ? "+" : ""}${v.toFixed(d)}` : "-");
/** A ratio as "1.23x"; "-" when not measured. */
export const fmtRatio = (v) => (Number.isFinite(v) ? `${v.toFixed(2)}x` : "-");
