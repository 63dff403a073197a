// The top-level members of a JSON object and its nesting depth, found in its bytes without parsing them,
// so that the gateway can refuse a pathological body before JSON.parse spends time on it, and rewrite a
// few members of a client's body while forwarding every other byte as it came (RFC 8259).

/** One top-level member: its key's opening quote at `start`, its value from `valueStart` to `end` (exclusive). */
export interface JsonMember {
  readonly start: number;
  readonly valueStart: number;
  readonly end: number;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COLON = 0x3a;
const COMMA = 0x2c;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;
/** Strings up to this long are crossed in JS; longer ones with Buffer#indexOf. */
const SHORT_STRING = 32;

function isSpace(byte: number | undefined): boolean {
  return byte === 0x20 || byte === 0x0a || byte === 0x0d || byte === 0x09;
}

function skipSpace(text: Buffer, at: number): number {
  while (isSpace(text[at])) at++;
  return at;
}

/** Index just past the string whose opening quote is at `at`; -1 when it does not end. */
function skipString(text: Buffer, at: number): number {
  // Keys and ids end within a few bytes, where a JS loop beats a call into native code.
  const shortEnd = Math.min(text.length, at + 1 + SHORT_STRING);
  let i = at + 1;
  for (; i < shortEnd; i++) {
    const byte = text[i];
    if (byte === QUOTE) return i + 1;
    if (byte === BACKSLASH) i++;
  }
  // A long one (a prompt) at memchr speed: the quote that ends it has an even run of backslashes before it.
  for (;;) {
    const quote = text.indexOf(QUOTE, i);
    if (quote === -1) return -1;
    let slashes = 0;
    while (text[quote - 1 - slashes] === BACKSLASH) slashes++;
    if (slashes % 2 === 0) return quote + 1;
    i = quote + 1;
  }
}

/** Index just past the value that starts at `at`; -1 when it does not end. */
function skipValue(text: Buffer, at: number): number {
  const first = text[at];
  if (first === QUOTE) return skipString(text, at);
  if (first === OPEN_OBJECT || first === OPEN_ARRAY) {
    let depth = 0;
    let i = at;
    while (i < text.length) {
      const byte = text[i];
      if (byte === QUOTE) {
        i = skipString(text, i);
        if (i === -1) return -1;
        continue;
      }
      if (byte === OPEN_OBJECT || byte === OPEN_ARRAY) depth++;
      else if ((byte === CLOSE_OBJECT || byte === CLOSE_ARRAY) && --depth === 0) return i + 1;
      i++;
    }
    return -1;
  }
  // A number, true, false or null.
  let i = at;
  while (i < text.length && text[i] !== COMMA && text[i] !== CLOSE_OBJECT && !isSpace(text[i])) i++;
  return i;
}

/** The member's key is `key` (ASCII, without quotes), spelled without escapes. */
export function keyIs(text: Buffer, member: JsonMember, key: string): boolean {
  if (text[member.start + key.length + 1] !== QUOTE) return false;
  for (let i = 0; i < key.length; i++) if (text[member.start + 1 + i] !== key.charCodeAt(i)) return false;
  return true;
}

/**
 * The members of the JSON object in `text`, in order. `text` must be JSON that `JSON.parse` accepted.
 * Undefined when a key holds an escape: its bytes would not say which key it is. Equal keys are the
 * caller's to find (JSON.parse keeps one of them, so the parsed object has fewer keys than members).
 */
export function topLevelMembers(text: Buffer): JsonMember[] | undefined {
  let i = skipSpace(text, 0);
  if (text[i] !== OPEN_OBJECT) return undefined;
  const members: JsonMember[] = [];
  i = skipSpace(text, i + 1);
  if (text[i] === CLOSE_OBJECT) return members;
  for (;;) {
    if (text[i] !== QUOTE) return undefined;
    const keyEnd = skipString(text, i);
    if (keyEnd === -1) return undefined;
    for (let k = i + 1; k < keyEnd - 1; k++) if (text[k] === BACKSLASH) return undefined;
    const colon = skipSpace(text, keyEnd);
    if (text[colon] !== COLON) return undefined;
    const valueStart = skipSpace(text, colon + 1);
    const end = skipValue(text, valueStart);
    if (end === -1) return undefined;
    members.push({ start: i, valueStart, end });
    i = skipSpace(text, end);
    if (text[i] === CLOSE_OBJECT) return members;
    if (text[i] !== COMMA) return undefined;
    i = skipSpace(text, i + 1);
  }
}

/** Where a body nests deeper than allowed: the top-level member holding that place, when there is one. */
export interface ExcessDepth {
  /** The member's key as written (escapes included); undefined when the body is not an object. */
  readonly key: string | undefined;
}

/**
 * Whether `text` nests arrays and objects more than `limit` levels deep (its outer value is level 1),
 * by one pass over its bytes that crosses strings at memchr speed and stops at the first level too many.
 * Unterminated strings end the scan: the text is not JSON, which JSON.parse then reports.
 */
export function findExcessDepth(text: Buffer, limit: number): ExcessDepth | undefined {
  let depth = 0;
  // The last string at level 1: when a value at level 1 goes too deep, the key just before it.
  let topString = -1;
  for (let i = 0; i < text.length; i++) {
    const byte = text[i];
    if (byte === QUOTE) {
      if (depth === 1) topString = i;
      const end = skipString(text, i);
      if (end === -1) return undefined;
      i = end - 1;
    } else if (byte === OPEN_OBJECT || byte === OPEN_ARRAY) {
      if (++depth > limit) {
        const objectBody = text[skipSpace(text, 0)] === OPEN_OBJECT && topString !== -1;
        return { key: objectBody ? text.toString("utf8", topString + 1, skipString(text, topString) - 1) : undefined };
      }
    } else if (byte === CLOSE_OBJECT || byte === CLOSE_ARRAY) depth--;
  }
  return undefined;
}
