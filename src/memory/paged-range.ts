/**
 * PagedRange: a byte range laid over a list of guest pages, in list order.
 *
 *   gpns:     [ 7        | 8        | 3        | 9        ]   (4 pages, 16 KiB of list)
 *   range:          |<------ len ------------------->|
 *                   ^ start = offset                 ^ end = offset + len
 *   covered:  [ 7 (partial) | 8 (whole) | 3 (whole) | 9 (partial) ]
 *
 * The one key constraint: only the first and the last covered page may be partial; every
 * interior page is covered whole. Byte `i` of the range is byte `(start+i) % 4096` of page
 * `gpns[floor((start+i) / 4096)]`.
 *
 * Validity is checked at construction: `offset + len <= gpns.length * 4096`. `offset` may exceed
 * 4096 (whole pages are skipped) and trailing GPNs may be left unused. GPN values are NOT
 * checked here: the range knows nothing of guest memory. Whoever touches the pages (readers,
 * writers, `RequestBuffers.lock`) checks them against `GuestMemory` first.
 *
 * As reported, `offset` is the offset into the first covered page (`start % 4096`) and `gpns()`
 * lists the covered pages only. An empty range covers no page.
 *
 * Consecutive GPNs (`g, g+1, ...`) are contiguous in host memory, so they form one *run* (one
 * iovec); `forEachRun` walks the range run by run.
 */
import { PAGE_SIZE } from "../base/constants";
import { InvalidRangeError } from "../base/errors";
import { requireArray } from "../base/arguments";

/** A stretch of host-contiguous guest memory: `len` bytes from byte `offset` of page `gpn`. */
export interface PageRun {
  gpn: number;
  offset: number;
  len: number;
}

export class PagedRange {
  readonly #gpns: readonly number[];
  readonly #start: number;
  readonly #end: number;

  /**
   * @throws InvalidRangeError unless `offset` and `len` are non-negative integers and
   *   `offset + len <= gpns.length * 4096`.
   */
  constructor(offset: number, len: number, gpns: readonly number[]) {
    requireArray(gpns, "PagedRange gpns");
    const problem = rangeProblem(offset, len, gpns.length);
    if (problem !== null) throw new InvalidRangeError(problem);
    this.#gpns = gpns;
    this.#start = offset;
    this.#end = offset + len;
  }

  /**
   * A copy of `range` whose every value was read once, from its own fields (a subclass cannot
   * change them: they are private) and its GPN list copied: what code that reads a range many
   * times takes from a caller, so that a list or getter that changes between reads cannot make it
   * loop or disagree with itself.
   */
  static snapshot(range: PagedRange): PagedRange {
    const list = range.#gpns;
    const count = list.length; // once: an iterator would read it at every step
    const gpns = new Array<number>(count);
    for (let i = 0; i < count; i++) gpns[i] = list[i]!;
    return new PagedRange(range.#start, range.#end - range.#start, gpns);
  }

  /** Like the constructor, but returns null instead of throwing. */
  static tryNew(offset: number, len: number, gpns: readonly number[]): PagedRange | null {
    if (!Array.isArray(gpns)) return null;
    return rangeProblem(offset, len, gpns.length) === null ? new PagedRange(offset, len, gpns) : null;
  }

  static empty(): PagedRange {
    return new PagedRange(0, 0, []);
  }

  /** Offset into the first covered page, `0 .. 4095`. */
  get offset(): number {
    return this.#start % PAGE_SIZE;
  }

  get len(): number {
    return this.#end - this.#start;
  }

  get isEmpty(): boolean {
    return this.#end === this.#start;
  }

  /** Number of covered pages. */
  get pageCount(): number {
    if (this.isEmpty) return 0;
    return Math.ceil(this.#end / PAGE_SIZE) - Math.floor(this.#start / PAGE_SIZE);
  }

  /** The `i`th covered page. */
  gpn(i: number): number {
    if (!(Number.isInteger(i) && i >= 0 && i < this.pageCount)) throw new InvalidRangeError(`page ${i} of a range covering ${this.pageCount} pages`);
    return this.#gpns[Math.floor(this.#start / PAGE_SIZE) + i]!;
  }

  /** The covered pages, in order. */
  gpns(): number[] {
    if (this.isEmpty) return [];
    const first = Math.floor(this.#start / PAGE_SIZE);
    return this.#gpns.slice(first, first + this.pageCount);
  }

  /**
   * The bytes `[offset, offset+len)` of this range, as a range of its own.
   * @throws InvalidRangeError when `offset + len > this.len`.
   */
  subrange(offset: number, len: number): PagedRange {
    const sub = this.trySubrange(offset, len);
    if (sub === null) {
      throw new InvalidRangeError(`subrange ${offset}+${len} does not fit in a range of ${this.len} bytes`);
    }
    return sub;
  }

  /** Like `subrange`, but returns null instead of throwing. */
  trySubrange(offset: number, len: number): PagedRange | null {
    if (!isByteCount(offset) || !isByteCount(len) || offset + len > this.len) return null;
    return new PagedRange(this.#start + offset, len, this.#gpns);
  }

  /**
   * Calls `body` for each run of host-contiguous pages within bytes `[from, from+len)` of the
   * range (relative to the range's start), with `done`, the bytes of the span before the run.
   * The span must lie within the range.
   */
  forEachRun(
    from: number,
    len: number,
    body: (gpn: number, pageOffset: number, runLen: number, done: number) => void,
  ): void {
    const gpns = this.#gpns;
    let position = this.#start + from;
    const end = position + len;
    let done = 0;
    while (position < end) {
      let index = Math.floor(position / PAGE_SIZE);
      const gpn = gpns[index]!;
      const pageOffset = position - index * PAGE_SIZE;
      let runEnd = Math.min(end, (index + 1) * PAGE_SIZE);
      while (runEnd < end && gpns[index + 1] === gpns[index]! + 1) {
        index++;
        runEnd = Math.min(end, (index + 1) * PAGE_SIZE);
      }
      const runLen = runEnd - position;
      body(gpn, pageOffset, runLen, done);
      done += runLen;
      position = runEnd;
    }
  }

  /** The runs of the whole range, in order. */
  runs(): PageRun[] {
    const runs: PageRun[] = [];
    this.forEachRun(0, this.len, (gpn, offset, len) => runs.push({ gpn, offset, len }));
    return runs;
  }

  toString(): string {
    return `PagedRange(offset ${this.offset}, len ${this.len}, gpns [${this.gpns().join(",")}])`;
  }
}

function isByteCount(value: number): boolean {
  return Number.isSafeInteger(value) && value >= 0;
}

function rangeProblem(offset: number, len: number, pages: number): string | null {
  if (!isByteCount(offset)) return `range offset ${offset} is not a non-negative integer`;
  if (!isByteCount(len)) return `range length ${len} is not a non-negative integer`;
  if (offset + len > pages * PAGE_SIZE) {
    return `range ${offset}+${len} does not fit in ${pages} pages (${pages * PAGE_SIZE} bytes)`;
  }
  return null;
}
