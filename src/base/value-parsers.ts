/**
 * Parsing of the value syntax shared by the command line and scenario files (SPEC.md, "Values").
 *
 * Sizes and offsets: a non-negative integer, decimal or `0x` hex, with an optional binary
 * suffix `k`/`K`/`KiB`, `m`/`M`/`MiB`, `g`/`G`/`GiB`, `t`/`T`/`TiB` (`4k` = 4096). Anything else
 * (negative, fractional, empty, trailing garbage, 2^53 or more) is an `InvalidInputError` that
 * names the option and the value; a decimal unit (`1GB`, `4kB`) is refused with the binary one
 * it may have meant, since the two differ by 7% at G.
 *
 * Durations: seconds, a decimal number with an optional unit `ms`, `s`, `m`, `h` (fio's).
 */
import { PAGE_SIZE } from "./constants";
import { InvalidInputError } from "./errors";
import { requireString } from "./arguments";

const SIZE_PATTERN = /^(0x[0-9a-f]+|[0-9]+)\s*(k|kib|m|mib|g|gib|t|tib)?$/i;
const MULTIPLIERS: Record<string, number> = { k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 };
/** A decimal unit (`1GB`, `4kB`): refused, naming the binary one. */
const DECIMAL_SIZE_PATTERN = /^(0x[0-9a-f]+|[0-9]+)\s*([kmgt])b$/i;

/** Examples quoted in size errors. */
const SIZE_EXAMPLES = "e.g. 4096, 0x1000, 4k, 1MiB";

/**
 * Parses a size or offset. `what` names where the value came from (`--size`,
 * `steps[2].at`) and starts the error message.
 */
export function parseSize(text: string | number, what: string): number {
  if (typeof text === "number") {
    if (Number.isSafeInteger(text) && text >= 0) return text;
    throw new InvalidInputError(`${what}: ${text} is not a size (${SIZE_EXAMPLES})`);
  }
  requireString(text, what);
  const match = SIZE_PATTERN.exec(text.trim());
  if (match === null) {
    const decimal = DECIMAL_SIZE_PATTERN.exec(text.trim());
    if (decimal !== null) {
      const unit = decimal[2]!.toUpperCase();
      throw new InvalidInputError(
        `${what}: ${JSON.stringify(text)} is a decimal unit; did you mean ${decimal[1]}${unit} (${unit === "K" ? "KiB" : `${unit}iB`})? Sizes are binary: 1G is 2^30 bytes`,
      );
    }
    throw new InvalidInputError(`${what}: ${JSON.stringify(text)} is not a size (${SIZE_EXAMPLES})`);
  }
  const digits = match[1]!;
  const suffix = match[2]?.[0]?.toLowerCase();
  const value = BigInt(digits) * BigInt(suffix === undefined ? 1 : MULTIPLIERS[suffix]!);
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new InvalidInputError(`${what}: ${JSON.stringify(text)} is 2^53 or more (the largest exact whole number is 2^53 - 1)`);
  }
  return Number(value);
}

const DURATION_PATTERN = /^([0-9]+(?:\.[0-9]+)?)\s*(ms|s|m|h)?$/i;
const DURATION_UNITS: Record<string, number> = { ms: 1e-3, s: 1, m: 60, h: 3600 };

/**
 * Parses a duration into seconds: `30`, `30s`, `0.5`, `500ms`, `2m`, `1h` (fio's units). With
 * `allowZero`, `0` is accepted (a ramp of none); otherwise it must be positive.
 */
export function parseDuration(text: string, what: string, allowZero = false): number {
  requireString(text, what);
  const match = DURATION_PATTERN.exec(text.trim());
  const seconds = match === null ? NaN : Number(match[1]) * DURATION_UNITS[(match[2] ?? "s").toLowerCase()]!;
  if (!(allowZero ? seconds >= 0 : seconds > 0) || !Number.isFinite(seconds)) {
    throw new InvalidInputError(`${what}: ${JSON.stringify(text)} is not a ${allowZero ? "" : "positive "}duration (e.g. 30, 30s, 500ms, 2m)`);
  }
  return seconds;
}

/** Most GPNs one list may expand to (16 GiB of pages): a typo like `0-99999999999` is an error, not an allocation. */
export const MAX_LIST_PAGES = 2 ** 22;

const NUMBER_PATTERN = /^(0x[0-9a-f]+|[0-9]+)$/i;

function parseNumber(text: string, what: string, whole: string): number {
  if (!NUMBER_PATTERN.test(text)) {
    throw new InvalidInputError(`${what}: ${JSON.stringify(whole)}: ${JSON.stringify(text)} is not a page number`);
  }
  const value = BigInt(text);
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new InvalidInputError(`${what}: ${JSON.stringify(whole)}: ${text} is 2^53 or more (the largest exact whole number is 2^53 - 1)`);
  }
  return Number(value);
}

/**
 * Parses a GPN list: comma-separated items, each `N`, `A-B` (inclusive, `A <= B`) or `A-B/S`
 * (every S-th page from A to B: `0-10/2` is 0,2,4,6,8,10), decimal or hex; spaces are ignored,
 * order is kept, repeats are allowed: `3,7-9,0x10`.
 */
/**
 * Pages a whole command or scenario may still name: shared by every list it parses, so that
 * many lists within their own cap cannot add up to more than one may (checked before a list is
 * expanded, so nothing grows past it).
 */
export class PageBudget {
  constructor(
    public remaining = MAX_LIST_PAGES,
    readonly what = "one command",
  ) {}
}

export function parseGpnList(text: string, what: string, budget?: PageBudget): number[] {
  const compact = requireString(text, what).replace(/\s+/g, "");
  if (compact === "") throw new InvalidInputError(`${what}: the GPN list is empty`);
  const gpns: number[] = [];
  for (const item of compact.split(",")) {
    if (item === "") throw new InvalidInputError(`${what}: ${JSON.stringify(text)}: empty item in the GPN list`);
    const slash = item.indexOf("/");
    const range = slash < 0 ? item : item.slice(0, slash);
    const dash = range.indexOf("-", 1);
    const first = parseNumber(dash < 0 ? range : range.slice(0, dash), what, text);
    const last = dash < 0 ? first : parseNumber(range.slice(dash + 1), what, text);
    const step = slash < 0 ? 1 : parseNumber(item.slice(slash + 1), what, text);
    if (last < first) throw new InvalidInputError(`${what}: ${JSON.stringify(text)}: range ${item} runs backwards`);
    if (step < 1 || (slash >= 0 && dash < 0)) throw new InvalidInputError(`${what}: ${JSON.stringify(text)}: ${item}: a step needs a range A-B/S with S >= 1`);
    const count = gpns.length + Math.floor((last - first) / step) + 1;
    if (count > MAX_LIST_PAGES) {
      throw new InvalidInputError(`${what}: ${JSON.stringify(text)}: more than ${MAX_LIST_PAGES} pages`);
    }
    if (budget !== undefined && count > budget.remaining) {
      throw new InvalidInputError(`${what}: ${JSON.stringify(text)}: more pages than the ${MAX_LIST_PAGES} ${budget.what} may name in all`);
    }
    for (let gpn = first; gpn <= last; gpn += step) gpns.push(gpn);
  }
  if (budget !== undefined) budget.remaining -= gpns.length;
  return gpns;
}

/** One element of a scatter-gather list: `len` bytes from byte `offset` of the pages `gpns`. */
export interface SegmentSpec {
  gpns: number[];
  offset: number;
  len: number;
}

const SEGMENT_PATTERN = /^([^@+]+)(?:@([^+]*))?(?:\+(.*))?$/;

/**
 * Parses a segment `GPNS[@OFFSET][+LEN]` (`0-1@512+3584`). OFFSET defaults to 0 and LEN to the
 * rest of the pages; the range must fit in the pages.
 */
export function parseSegment(text: string, what: string, budget?: PageBudget): SegmentSpec {
  const match = SEGMENT_PATTERN.exec(requireString(text, what).trim());
  if (match === null) {
    throw new InvalidInputError(`${what}: ${JSON.stringify(text)} is not a segment (GPNS[@OFFSET][+LEN], e.g. 0-1@512+3584)`);
  }
  const gpns = parseGpnList(match[1]!, what, budget);
  const offset = match[2] === undefined ? 0 : parseSize(match[2], `${what} ${JSON.stringify(text)} offset`);
  const pagesBytes = gpns.length * PAGE_SIZE;
  const len = match[3] === undefined ? Math.max(0, pagesBytes - offset) : parseSize(match[3], `${what} ${JSON.stringify(text)} length`);
  return checkSegment({ gpns, offset, len }, `${what} ${JSON.stringify(text)}`);
}

/** Checks that a segment's range fits in its pages. */
export function checkSegment(segment: SegmentSpec, what: string): SegmentSpec {
  const pagesBytes = segment.gpns.length * PAGE_SIZE;
  if (segment.offset + segment.len > pagesBytes) {
    const pages = `${segment.gpns.length} page${segment.gpns.length === 1 ? "" : "s"}`;
    throw new InvalidInputError(
      `${what}: ${segment.len} bytes from offset ${segment.offset} do not fit in ${pages} (${pagesBytes} bytes)`,
    );
  }
  return segment;
}

/** A GPN list in the syntax `parseGpnList` reads, runs compacted: `0,1,2,5` is `0-2,5`. */
export function formatGpnList(gpns: readonly number[]): string {
  const parts: string[] = [];
  for (let i = 0; i < gpns.length; ) {
    let j = i;
    while (j + 1 < gpns.length && gpns[j + 1] === gpns[j]! + 1) j++;
    parts.push(j === i ? String(gpns[i]) : `${gpns[i]}-${gpns[j]}`);
    i = j + 1;
  }
  return parts.join(",") || "none";
}

/** 4096 as `4k`, 1048576 as `1m`. */
export function formatBytes(bytes: number): string {
  if (bytes % 2 ** 30 === 0) return `${bytes / 2 ** 30}g`;
  if (bytes % 2 ** 20 === 0) return `${bytes / 2 ** 20}m`;
  if (bytes % 1024 === 0) return `${bytes / 1024}k`;
  return String(bytes);
}

/** A whole number written in decimal or 0x hex, at least `min` (a pid, a count of seconds). */
export function parseCount(text: string, what: string, min = 1): number {
  requireString(text, what);
  const value = NUMBER_PATTERN.test(text.trim()) ? Number(text.trim()) : NaN;
  if (!Number.isSafeInteger(value) || value < min) throw new InvalidInputError(`${what}: ${JSON.stringify(text)} is not a whole number of at least ${min}`);
  return value;
}
