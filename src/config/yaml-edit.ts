// Edits YAML text in place: values are located with the yaml Document API and only their own source
// ranges are rewritten, so comments, their alignment, key order, quoting and number spelling (`0.10`)
// everywhere else stay byte for byte as the author wrote them (Document#toString would re-align them).
import { isAlias, isCollection, isMap, isScalar, isSeq, parse, parseDocument, type Node, type Pair, type YAMLMap } from "yaml";

/** A value to write: numbers, strings and booleans, and lists and maps of them. */
export type YamlValue = number | string | boolean | readonly YamlValue[] | { readonly [key: string]: YamlValue };

/** Set the value at `path` (map keys and list indices). The parent must exist; the last key is added when absent. */
export interface YamlSet {
  readonly path: readonly (string | number)[];
  readonly value: YamlValue;
}

/** A path that does not lead to a map or list, or a document that cannot be edited safely. */
export class YamlEditError extends Error {
  readonly code = "yaml_edit_failed";
  constructor(message: string) {
    super(message);
    this.name = "YamlEditError";
  }
}

interface Splice {
  readonly start: number;
  readonly end: number;
  readonly text: string;
}

const PLAIN = /^[A-Za-z_][A-Za-z0-9_./-]*$/;

/** A scalar as YAML source: plain when that reads back as the same string, else double-quoted (JSON's quoting is valid YAML). */
function scalarText(value: string | number | boolean): string {
  if (typeof value === "number") {
    if (!Number.isFinite(value)) throw new YamlEditError(`cannot write the number ${value}`);
    return String(value);
  }
  if (typeof value === "boolean") return String(value);
  return PLAIN.test(value) && parse(value) === value ? value : JSON.stringify(value);
}

/** A value in flow style, spaced as hand-written configs are: `{ input: 0.1, output: 0.4 }`, `[tools, json]`. */
export function flowText(value: YamlValue): string {
  if (Array.isArray(value)) return `[${value.map(flowText).join(", ")}]`;
  if (typeof value === "object") {
    const entries = Object.entries(value as Record<string, YamlValue>);
    return entries.length === 0 ? "{}" : `{ ${entries.map(([key, item]) => `${scalarText(key)}: ${flowText(item)}`).join(", ")} }`;
  }
  return scalarText(value as string | number | boolean);
}

function rangeOf(node: Node): [number, number] {
  const range = node.range;
  if (!range) throw new YamlEditError("a node without a source range");
  return [range[0], range[1]];
}

function lineStart(text: string, position: number): number {
  return text.lastIndexOf("\n", position - 1) + 1;
}

function lineEnd(text: string, position: number): number {
  const newline = text.indexOf("\n", position);
  return newline < 0 ? text.length : newline;
}

function findPair(map: YAMLMap, key: string): Pair | undefined {
  return map.items.find((pair) => isScalar(pair.key) && String(pair.key.value) === key) as Pair | undefined;
}

/** Where new keys go in `map`, and how each is written there. */
function insertion(text: string, map: YAMLMap, entries: ReadonlyArray<readonly [string, YamlValue]>): Splice {
  const rendered = entries.map(([key, value]) => `${scalarText(key)}: ${flowText(value)}`);
  const last = map.items.at(-1);
  if (map.flow) {
    const [start, end] = rangeOf(map);
    if (last === undefined) return { start, end, text: `{ ${rendered.join(", ")} }` };
    const after = last.value ? rangeOf(last.value as Node)[1] : rangeOf(last.key as Node)[1];
    return { start: after, end: after, text: `, ${rendered.join(", ")}` };
  }
  if (last === undefined) throw new YamlEditError("cannot add a key to an empty block map");
  const keyStart = rangeOf(map.items[0]?.key as Node)[0];
  // The first key's column; a map that is a list item starts after its "- " marker.
  const prefix = text.slice(lineStart(text, keyStart), keyStart);
  if (!/^[ -]*$/.test(prefix)) throw new YamlEditError("cannot add a key to a block map that starts mid-line");
  const indent = " ".repeat(prefix.length);
  const valueEnd = last.value ? rangeOf(last.value as Node)[1] : rangeOf(last.key as Node)[1];
  // A block collection's range ends after its last newline; a scalar's before it (and any comment).
  if (text[valueEnd - 1] === "\n") return { start: valueEnd, end: valueEnd, text: rendered.map((line) => `${indent}${line}\n`).join("") };
  const end = lineEnd(text, valueEnd);
  return { start: end, end, text: rendered.map((line) => `\n${indent}${line}`).join("") };
}

/** The value node of `pair`; aliases and empty values are not edited in place (their text is elsewhere or absent). */
function editable(pair: Pair): Node {
  const value = pair.value as Node | null;
  if (!value || isAlias(value))
    throw new YamlEditError(`${isScalar(pair.key) ? String(pair.key.value) : "a key"}: an alias or empty value cannot be edited in place`);
  return value;
}

function sameScalar(node: Node, value: YamlValue): boolean {
  return isScalar(node) && (typeof value === "number" || typeof value === "string" || typeof value === "boolean") && node.value === value;
}

/** The splices that make `node` (the value of `pair`, when it has a key) hold `value`, touching only what differs. */
function replace(text: string, node: Node, pair: Pair | undefined, value: YamlValue, out: Splice[]): void {
  if (sameScalar(node, value)) return;
  if (isMap(node) && typeof value === "object" && !Array.isArray(value)) {
    const missing: Array<[string, YamlValue]> = [];
    for (const [key, item] of Object.entries(value as Record<string, YamlValue>)) {
      const child = findPair(node, key);
      if (child === undefined) missing.push([key, item]);
      else replace(text, editable(child), child, item, out);
    }
    if (missing.length > 0) out.push(insertion(text, node, missing));
    return;
  }
  if (
    isSeq(node) &&
    Array.isArray(value) &&
    node.items.length === value.length &&
    node.items.every((item, index) => sameScalar(item as Node, value[index] as YamlValue))
  ) {
    return;
  }
  const [start, end] = rangeOf(node);
  if (isCollection(node) && !node.flow && pair && isScalar(pair.key)) {
    // A block list or map becomes a flow one on its key's line: `key: [a, b]`, keeping the line break after it.
    const keyEnd = rangeOf(pair.key)[1];
    out.push({ start: keyEnd, end, text: `: ${flowText(value)}${text[end - 1] === "\n" ? "\n" : ""}` });
    return;
  }
  out.push({ start, end, text: flowText(value) });
}

/** Applies sorted, disjoint splices in one pass. */
function applySplices(text: string, splices: readonly Splice[]): string {
  let out = "";
  let at = 0;
  for (const splice of splices) {
    out += text.slice(at, splice.start) + splice.text;
    at = splice.end;
  }
  return out + text.slice(at);
}

function parseForEdit(text: string) {
  const doc = parseDocument(text, { uniqueKeys: true });
  if (doc.errors.length > 0) throw new YamlEditError(`the YAML does not parse: ${doc.errors[0]?.message.split("\n")[0]}`);
  return doc;
}

function describe(path: readonly (string | number)[]): string {
  return (
    path
      .map((key) => (typeof key === "number" ? `[${key}]` : `.${key}`))
      .join("")
      .replace(/^\./, "") || "(root)"
  );
}

/** The collection at `path`, or an error naming the path. */
function collectionAt(contents: Node | null, path: readonly (string | number)[]): Node {
  let node: Node | null | undefined = contents;
  for (const [depth, key] of path.entries()) {
    if (typeof key === "number" && isSeq(node)) node = node.items[key] as Node | undefined;
    else if (typeof key === "string" && isMap(node)) node = findPair(node, key)?.value as Node | undefined;
    else node = undefined;
    if (!node) throw new YamlEditError(`${describe(path.slice(0, depth + 1))}: not found`);
  }
  if (!node) throw new YamlEditError(`${describe(path)}: not found`);
  return node;
}

/** `splices` sorted by position, refusing two that overlap or start at the same place (their order would be a guess). */
function disjoint(splices: readonly Splice[]): Splice[] {
  const sorted = [...splices].sort((a, b) => a.start - b.start);
  for (let i = 1; i < sorted.length; i++) {
    const previous = sorted[i - 1] as Splice;
    const next = sorted[i] as Splice;
    if (previous.end > next.start || previous.start === next.start) {
      throw new YamlEditError("two edits touch the same place: set the keys of one map together, as one object");
    }
  }
  return sorted;
}

/**
 * Returns the text with every set applied, from one parse of it. Values equal to what is there already
 * are left alone, so setting what a file already says returns it unchanged, byte for byte. Sets must
 * touch disjoint parts of the document: set several keys of one map as one object value.
 * @throws YamlEditError when a parent is missing, two sets overlap, or the text does not parse.
 */
export function setYamlValues(text: string, sets: readonly YamlSet[]): string {
  if (sets.length === 0) return text;
  const doc = parseForEdit(text);
  const splices: Splice[] = [];
  for (const { path, value } of sets) {
    const key = path.at(-1);
    if (key === undefined) throw new YamlEditError("an empty path");
    const parent = collectionAt(doc.contents as Node | null, path.slice(0, -1));
    if (isMap(parent) && typeof key === "string") {
      const pair = findPair(parent, key);
      if (pair === undefined) splices.push(insertion(text, parent, [[key, value]]));
      else replace(text, editable(pair), pair, value, splices);
    } else if (isSeq(parent) && typeof key === "number" && parent.items[key] !== undefined) {
      replace(text, parent.items[key] as Node, undefined, value, splices);
    } else {
      throw new YamlEditError(`${describe(path)}: not found`);
    }
  }
  return applySplices(text, disjoint(splices));
}

/**
 * Appends `value` to the list at `path`, written in flow style on one line: a block list gets a new
 * `- …` line under its last item (same indentation), a flow list a `, …` before its closing bracket.
 * @throws YamlEditError when there is no list at `path`.
 */
export function appendYamlListItem(text: string, path: readonly (string | number)[], value: YamlValue): string {
  const doc = parseForEdit(text);
  const list = collectionAt(doc.contents as Node | null, path);
  if (!isSeq(list)) throw new YamlEditError(`${describe(path)}: not a list`);
  const last = list.items.at(-1) as Node | undefined;
  if (list.flow) {
    const [start, end] = rangeOf(list);
    if (last === undefined) return applySplices(text, [{ start, end, text: `[${flowText(value)}]` }]);
    const after = rangeOf(last)[1];
    return applySplices(text, [{ start: after, end: after, text: `, ${flowText(value)}` }]);
  }
  if (last === undefined) throw new YamlEditError(`${describe(path)}: cannot append to an empty block list`);
  const itemStart = rangeOf(last)[0];
  const dash = text.lastIndexOf("-", itemStart);
  const from = lineStart(text, dash);
  if (dash < from || text.slice(from, dash).trim() !== "") throw new YamlEditError(`${describe(path)}: cannot find the list's "- " marker`);
  const indent = text.slice(from, dash);
  const end = rangeOf(last)[1];
  const at = text[end - 1] === "\n" ? end : lineEnd(text, end);
  const line = `${indent}- ${flowText(value)}`;
  return applySplices(text, [{ start: at, end: at, text: text[end - 1] === "\n" ? `${line}\n` : `\n${line}` }]);
}
