// Parses the human durations `subsecond demo` and `subsecond simulate` accept on the command line.

const UNIT_MS = { ms: 1, s: 1000, m: 60_000 } as const;

/** A duration flag that cannot be read; the message says what is accepted. */
export class DurationError extends Error {
  readonly code = "invalid_duration";
  constructor(flag: string, value: string) {
    super(`${flag} must be a positive duration such as 45, 45s, 1500ms or 2m (a bare number is seconds), got "${value}"`);
    this.name = "DurationError";
  }
}

/**
 * Reads `45`, `45s`, `1500ms`, `2m` or `0.5s` as milliseconds. A bare number is seconds.
 * @param flag the flag's name, for the error message (e.g. `--duration`).
 * @throws DurationError for anything else, zero or negative values included.
 */
export function parseDurationMs(flag: string, value: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m)?\s*$/.exec(value);
  if (match === null) throw new DurationError(flag, value);
  const unit = (match[2] ?? "s") as keyof typeof UNIT_MS;
  const ms = Math.round(Number(match[1]) * UNIT_MS[unit]);
  if (!(ms > 0)) throw new DurationError(flag, value);
  return ms;
}
