/**
 * Readers and writers that move bytes between JS buffers and the guest pages of a PagedRange.
 *
 * Each keeps a position in the range and moves forward as it transfers; `len` is what remains.
 * Every operation is all-or-nothing: asking for more than remains is an `OutOfRangeError`
 * `(remaining, requested)`, and a page missing from guest memory is a `GuestAccessError`, both
 * raised before a single byte moves. Copies go run by run (consecutive GPNs at once), not page
 * by page.
 */
import { PAGE_SIZE } from "../base/constants";
import { OutOfRangeError, ReadOnlyError } from "../base/errors";
import type { GuestMemory } from "./guest-memory";
import type { PagedRange } from "./paged-range";
import { requireBytes } from "../base/arguments";

abstract class PagedRangeCursor {
  protected position = 0;

  constructor(
    protected readonly range: PagedRange,
    protected readonly memory: GuestMemory,
  ) {}

  /** Bytes remaining. */
  get len(): number {
    return this.range.len - this.position;
  }

  /** Moves forward `n` bytes without transferring them. */
  skip(n: number): void {
    this.claim("skip", n);
    this.position += n;
  }

  /** Checks that `n` bytes remain and that every page they cover is in guest memory. */
  protected claim(operation: string, n: number): void {
    if (!(Number.isSafeInteger(n) && n >= 0) || n > this.len) throw new OutOfRangeError(operation, this.len, n);
    this.memory.checkPages(this.range, operation, this.position, n);
  }
}

export class PagedRangeReader extends PagedRangeCursor {
  /** Fills `target` with the next `target.length` bytes of the range. */
  read(target: Uint8Array): void {
    requireBytes(target, "read: target");
    this.claim("read", target.length);
    const memory = this.memory;
    this.range.forEachRun(this.position, target.length, (gpn, offset, runLen, done) => {
      memory.read(gpn * PAGE_SIZE + offset, target.subarray(done, done + runLen));
    });
    this.position += target.length;
  }

  /** The next `n` bytes (all that remain by default), as a new array. */
  readBytes(n = this.len): Uint8Array<ArrayBuffer> {
    const bytes = new Uint8Array(n);
    this.read(bytes);
    return bytes;
  }
}

export class PagedRangeWriter extends PagedRangeCursor {
  /**
   * @param readOnly the request may not write guest memory: the writer then has length 0, and
   *   transferring any byte is a `ReadOnlyError` (transferring none succeeds).
   */
  constructor(
    range: PagedRange,
    memory: GuestMemory,
    private readonly readOnly = false,
  ) {
    super(range, memory);
  }

  override get len(): number {
    return this.readOnly ? 0 : super.len;
  }

  /** Writes `source` into the next `source.length` bytes of the range. */
  write(source: Uint8Array): void {
    requireBytes(source, "write: source");
    this.#claimWritable("write", source.length);
    const memory = this.memory;
    this.range.forEachRun(this.position, source.length, (gpn, offset, runLen, done) => {
      memory.write(gpn * PAGE_SIZE + offset, source.subarray(done, done + runLen));
    });
    this.position += source.length;
  }

  /** Sets the next `n` bytes of the range to `value`. */
  fill(value: number, n: number): void {
    this.#claimWritable("fill", n);
    const memory = this.memory;
    this.range.forEachRun(this.position, n, (gpn, offset, runLen) => {
      memory.fill(gpn * PAGE_SIZE + offset, runLen, value);
    });
    this.position += n;
  }

  /** Zeroes the next `n` bytes. */
  zero(n: number): void {
    this.fill(0, n);
  }

  #claimWritable(operation: string, n: number): void {
    if (this.readOnly && n !== 0) throw new ReadOnlyError(`guest memory: ${operation} of ${n} bytes`);
    this.claim(operation, n);
  }
}
