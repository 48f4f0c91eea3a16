/**
 * RequestBuffers: the guest buffers of one storage request, a PagedRange over GuestMemory plus
 * the direction in which guest memory may be touched.
 *
 * `isWrite` means *guest memory may be written*, i.e. the request is a disk READ (data flows
 * from the disk into the guest). A disk WRITE only reads guest memory, so its buffers are
 * read-only: its writer has length 0 and locking it for write is a `ReadOnlyError`.
 *
 * Alignment (`isAligned`) follows the reference rule: the buffers are aligned to `a` iff
 * `(offset | len | 4096) & (a - 1) == 0`. Folding 4096 in means an alignment above the page
 * size is never met, even when offset and length are multiples of it: interior page boundaries
 * are not contiguous in host memory, so the kernel cannot rely on anything beyond one page.
 *
 * `lock` produces the request's iovecs (one per run of consecutive GPNs) after checking every
 * covered page against guest memory, so a bad GPN never reaches the kernel.
 */
import { PAGE_SIZE } from "../base/constants";
import { checkAlignment, memoryAlignmentReasons } from "../base/alignment-rules";
import { InvalidInputError, ReadOnlyError } from "../base/errors";
import { GuestMemory } from "./guest-memory";
import { IovecArray } from "../native";
import { PagedRange } from "./paged-range";
import { PagedRangeReader, PagedRangeWriter } from "./paged-range-io";
import { requireArray } from "../base/arguments";

export class RequestBuffers {
  constructor(
    readonly memory: GuestMemory,
    readonly range: PagedRange,
    readonly isWrite: boolean,
  ) {
    if (!(memory instanceof GuestMemory)) throw new InvalidInputError("RequestBuffers: memory is not a GuestMemory");
    if (!(range instanceof PagedRange)) throw new InvalidInputError("RequestBuffers: range is not a PagedRange");
  }

  get len(): number {
    return this.range.len;
  }

  /**
   * True iff `(offset | len | 4096) & (alignment - 1) == 0`.
   * @throws InvalidAlignmentError unless `alignment` is a power of two.
   */
  isAligned(alignment: number): boolean {
    checkAlignment(alignment);
    return alignment <= PAGE_SIZE && this.range.offset % alignment === 0 && this.len % alignment === 0;
  }

  /** The reasons `isAligned(alignment)` is false, one per violated condition; empty when true. */
  alignmentReasons(alignment: number): string[] {
    return memoryAlignmentReasons(this.range.offset, this.len, alignment);
  }

  /** Reads the request's guest bytes in order. Always allowed. */
  reader(): PagedRangeReader {
    return new PagedRangeReader(this.range, this.memory);
  }

  /** Writes the request's guest bytes in order; length 0 when the request is read-only. */
  writer(): PagedRangeWriter {
    return new PagedRangeWriter(this.range, this.memory, !this.isWrite);
  }

  subrange(offset: number, len: number): RequestBuffers {
    return new RequestBuffers(this.memory, this.range.subrange(offset, len), this.isWrite);
  }

  trySubrange(offset: number, len: number): RequestBuffers | null {
    const range = this.range.trySubrange(offset, len);
    return range === null ? null : new RequestBuffers(this.memory, range, this.isWrite);
  }

  /**
   * The request's iovecs in a new native array (one per run of consecutive GPNs), which the
   * caller releases (`using iovecs = buffers.lock(...)`).
   * @param forWrite the IO will store into guest memory (a disk read).
   * @throws ReadOnlyError when `forWrite` and the request is read-only;
   *   GuestAccessError when a covered page is not in guest memory.
   */
  lock(forWrite: boolean): IovecArray {
    const iovecs = new IovecArray(Math.max(1, this.range.pageCount));
    try {
      this.lockInto(forWrite, iovecs);
      return iovecs;
    } catch (error) {
      iovecs.release();
      throw error;
    }
  }

  /**
   * Like `lock`, into an existing array (cleared first), so a hot loop allocates nothing.
   * With `append`, the entries are added after those already there (several segments sharing
   * one array). On error the array is left as it was before the call (empty unless appending).
   */
  lockInto(forWrite: boolean, iovecs: IovecArray, append = false): void {
    if (forWrite && !this.isWrite) throw new ReadOnlyError("lock for write");
    const memory = this.memory;
    const start = append ? iovecs.count : 0;
    if (!append) iovecs.clear();
    try {
      this.range.forEachRun(0, this.len, (gpn, offset, runLen) => {
        const lastGpn = gpn + Math.ceil((offset + runLen) / PAGE_SIZE) - 1;
        memory.checkPage(lastGpn, "lock");
        iovecs.push(memory.hostAddress(gpn, offset), runLen);
      });
    } catch (error) {
      iovecs.truncate(start);
      throw error;
    }
  }
}

/** No single buffer built by `linear` may cover more pages than this (64 GiB). */
const MAX_LINEAR_PAGES = 2 ** 24;

/**
 * The page list and byte range of a request, without guest memory: built once, turned into
 * `RequestBuffers` over any GuestMemory with `buffer`.
 */
export class OwnedRequestBuffers {
  readonly #gpns: number[];
  readonly #range: PagedRange;

  private constructor(
    gpns: number[],
    offset: number,
    len: number,
    readonly isWrite: boolean,
  ) {
    this.#gpns = gpns;
    this.#range = new PagedRange(offset, len, gpns);
  }

  /** Whole pages, guest-writable. */
  static new(gpns: readonly number[]): OwnedRequestBuffers {
    requireArray(gpns, "OwnedRequestBuffers.new gpns");
    return new OwnedRequestBuffers([...gpns], 0, gpns.length * PAGE_SIZE, true);
  }

  /** `len` bytes from `offset` over `gpns`, guest-writable. */
  static newUnaligned(gpns: readonly number[], offset: number, len: number): OwnedRequestBuffers {
    requireArray(gpns, "OwnedRequestBuffers.newUnaligned gpns");
    return new OwnedRequestBuffers([...gpns], offset, len, true);
  }

  /**
   * Guest physical bytes `[offset, offset+len)` as a request over the pages that hold them:
   * GPNs `floor(offset/4096) .. ceil((offset+len)/4096) - 1`. (The reference counted
   * `ceil(len/4096)` pages from the first, one short whenever the range crosses a page boundary
   * it did not start on, e.g. `linear(4000, 200)`.)
   */
  static linear(offset: number, len: number, isWrite: boolean): OwnedRequestBuffers {
    if (!(Number.isSafeInteger(offset) && offset >= 0 && Number.isSafeInteger(len) && len >= 0)) {
      throw new InvalidInputError(`linear buffer ${offset}+${len}: offset and length must be non-negative integers`);
    }
    const first = Math.floor(offset / PAGE_SIZE);
    const end = Math.ceil((offset + len) / PAGE_SIZE);
    if (end - first > MAX_LINEAR_PAGES) {
      throw new InvalidInputError(`linear buffer ${offset}+${len}: ${end - first} pages is more than ${MAX_LINEAR_PAGES}`);
    }
    const gpns = Array.from({ length: end - first }, (_, i) => first + i);
    return new OwnedRequestBuffers(gpns, offset - first * PAGE_SIZE, len, isWrite);
  }

  get range(): PagedRange {
    return this.#range;
  }

  get gpns(): readonly number[] {
    return this.#gpns;
  }

  /** The request over `memory`. */
  buffer(memory: GuestMemory): RequestBuffers {
    return new RequestBuffers(memory, this.#range, this.isWrite);
  }
}
