// Exact decimal arithmetic on price strings: OpenRouter publishes USD per token, the config holds USD per 1M tokens.

const DECIMAL = /^(\d+)(?:\.(\d+))?$/;

/**
 * USD per token as published ("0.00000015") to USD per 1M tokens ("0.15"): the decimal point moves six
 * places and no digit is computed, so no floating-point noise appears (0.0000004 × 1e6 is
 * 0.39999999999999997 in floating point). Returns the shortest spelling, without leading or trailing
 * zeros; undefined when `perToken` is not a plain non-negative decimal (no sign, exponent or spaces).
 */
export function perTokenToPerMillion(perToken: string): string | undefined {
  const match = DECIMAL.exec(perToken);
  if (!match) return undefined;
  const whole = match[1] as string;
  const fraction = (match[2] ?? "").padEnd(6, "0");
  const integer = `${whole}${fraction.slice(0, 6)}`.replace(/^0+(?=\d)/, "");
  const rest = fraction.slice(6).replace(/0+$/, "");
  return rest === "" ? integer : `${integer}.${rest}`;
}
