/**
 * GuestMemory: a guest's physical memory, backed by a guest image file mapped `MAP_SHARED`.
 *
 *   image file:  | page 0 | page 1 | page 2 | ... | page N-1 |
 *                  GPN 0    GPN 1    GPN 2          GPN N-1
 *   GPN n = guest physical bytes n*4096 .. n*4096+4095 = the same bytes of the file
 *
 * Whatever an IO writes into guest memory is visible in the image file afterwards, so tests and
 * users prepare and inspect guest memory with ordinary file reads and writes. (The bench can
 * also run on anonymous memory on transparent huge pages that its main thread mapped: `borrow`.)
 *
 * Invariant: the image is a non-empty whole number of pages. Every access is checked against it
 * before any byte moves: a GPN past the end, or a guest physical range that does not fit, is a
 * `GuestAccessError` naming the guest physical address, and no memory outside the mapping is
 * ever touched (or handed to the kernel). Images beyond 4 GiB work: the mapping is seen through
 * 1 GiB views (see `NativeRegion`).
 */
import { PAGE_SHIFT, PAGE_SIZE } from "../base/constants";
import { formatSpan, GuestAccessError, hex, InvalidInputError } from "../base/errors";
import { createSparseFile, openUserFile, type CreateFileOptions } from "../host/files";
import { CHUNK_BYTES, closeFd, fileIdentity, NativeRegion, O_NONBLOCK, O_RDWR, physicalFrames, populateForRead, runLengths, statx, type Address } from "../native";
import { ProvidedPages } from "./provided-pages";
import type { PagedRange } from "./paged-range";
import { requireBytes, requireString } from "../base/arguments";

export class GuestMemory implements Disposable {
  readonly #region: NativeRegion;
  /** Path of the guest image. */
  readonly path: string;
  /** Size in bytes, a whole number of pages. */
  readonly size: number;
  /** Number of guest pages; valid GPNs are `0 .. pageCount-1`. */
  readonly pageCount: number;

  /** Which file backs this memory (`fileIdentity`): to tell it apart from a disk. */
  readonly fileId: string;

  /** Pages the filesystem was asked to provide before any store into them (see `provide`); null for anonymous memory, which needs no help. */
  readonly #provided: ProvidedPages | null;

  private constructor(path: string, region: NativeRegion, fileId: string, provided: ProvidedPages | null) {
    this.path = path;
    this.fileId = fileId;
    this.#provided = provided;
    this.#region = region;
    this.size = region.length;
    this.pageCount = region.length / PAGE_SIZE;
  }

  /**
   * Maps an existing guest image, read-write (guest memory is always writable: a read-only
   * mapping would turn a stray store into a crash instead of an error).
   */
  static open(path: string): GuestMemory {
    requireString(path, "guest image path");
    return GuestMemory.#map(path, openUserFile(path, O_RDWR | O_NONBLOCK, "guest image"));
  }

  /**
   * Guest memory over anonymous memory another thread of this process mapped (and keeps mapped
   * for as long as this is used): `address`, `size` bytes, a whole number of pages. It is no
   * file: `path` only names it in messages, and nothing needs providing.
   */
  static borrow(address: number, size: number, name: string): GuestMemory {
    checkImageSize(name, size);
    return new GuestMemory(name, NativeRegion.borrow(address, size, `guest memory ${name}`), `anonymous:${address}`, null);
  }

  /** Creates a sparse guest image of `size` bytes (a whole number of pages) and maps it. */
  static create(path: string, size: number, options: CreateFileOptions = {}): GuestMemory {
    requireString(path, "guest image path");
    checkImageSize(path, size);
    return GuestMemory.#map(path, createSparseFile(path, size, options, "guest image"));
  }

  /** Maps the image open on `fd`, which the mapping then owns (it allocates pages through it, and closes it on unmap). */
  static #map(path: string, fd: number): GuestMemory {
    try {
      const status = statx(fd);
      if (status.type !== "file") {
        throw new InvalidInputError(`${path}: a guest image must be a regular file, not a ${status.type}`);
      }
      checkImageSize(path, status.size);
      const region = NativeRegion.mapFile(fd, status.size, true, `guest memory ${path}`, 0, false, true);
      return new GuestMemory(path, region, fileIdentity(status), new ProvidedPages(fd, path, status.size / PAGE_SIZE));
    } catch (error) {
      closeFd(fd);
      throw error;
    }
  }

  /**
   * Makes sure the filesystem holds the pages of guest physical bytes `[gpa, gpa+len)` before
   * anything stores into them (an IO reading into them, a copy), so that a full filesystem is an
   * `ENOSPC` error naming the image instead of a SIGBUS that kills the process. Costs nothing
   * for pages already provided (see `ProvidedPages`).
   */
  provide(gpa: number, len: number): void {
    this.#checkSpan("provide", gpa, len);
    if (len === 0) return;
    const first = Math.floor(gpa / PAGE_SIZE);
    this.#provided?.ensure(first, Math.ceil((gpa + len) / PAGE_SIZE) - first);
  }

  get released(): boolean {
    return this.#region.released;
  }

  /** True when `gpn` names a page of this guest. */
  hasPage(gpn: number): boolean {
    return Number.isInteger(gpn) && gpn >= 0 && gpn < this.pageCount;
  }

  /** Throws `GuestAccessError` unless `gpn` names a page of this guest. */
  checkPage(gpn: number, operation: string): void {
    if (!this.hasPage(gpn)) throw this.#pageError(gpn, operation);
  }

  /**
   * Throws `GuestAccessError`, naming the first bad GPN, unless every page covered by bytes
   * `[from, from+len)` of `range` is in guest memory.
   */
  checkPages(range: PagedRange, operation: string, from = 0, len = range.len - from): void {
    range.forEachRun(from, len, (gpn, pageOffset, runLen) => {
      this.checkPage(gpn, operation);
      const last = gpn + Math.ceil((pageOffset + runLen) / PAGE_SIZE) - 1;
      if (last !== gpn) this.checkPage(last, operation);
    });
  }

  /**
   * Host address of byte `offset` of page `gpn`, for an iovec. Valid while this GuestMemory is
   * alive (not released); whoever hands it to the kernel keeps it alive until the IO completes.
   */
  hostAddress(gpn: number, offset = 0): Address {
    this.checkPage(gpn, "lock");
    if (!(Number.isInteger(offset) && offset >= 0 && offset < PAGE_SIZE)) {
      throw new GuestAccessError("lock", `GPN ${gpn}`, `offset ${offset} is not a byte of the page (0 .. ${PAGE_SIZE - 1})`);
    }
    return this.#region.address(gpn * PAGE_SIZE + offset);
  }

  /**
   * Host address of guest physical bytes `[gpa, gpa+len)`, after checking that they all lie in
   * guest memory. Same lifetime rule as `hostAddress`.
   */
  hostAddressOfRange(gpa: number, len: number, operation: string): Address {
    this.#checkSpan(operation, gpa, len);
    return this.#region.address(gpa);
  }

  /**
   * The physical runs, in pages, of the pages `ranges` cover, in order (the ranges' pages one
   * after the other), faulted in first without changing a byte: a direct IO from them makes
   * one DMA segment per run. Null when page frames cannot be read (root only).
   */
  physicalRunsOf(ranges: readonly PagedRange[]): number[] | null {
    const frames: number[] = [];
    for (const range of ranges) {
      for (const run of range.runs()) {
        const address = this.hostAddress(run.gpn, run.offset);
        populateForRead(address, run.len);
        const runFrames = physicalFrames(address, run.len);
        if (runFrames === null) return null;
        frames.push(...runFrames);
      }
    }
    return runLengths(frames);
  }

  /** The guest physical address that a host address from `hostAddress` points to. */
  guestAddressOf(address: number): number {
    return address - this.#region.address(0);
  }

  /** Copies guest physical bytes `[gpa, gpa+target.length)` into `target`. */
  read(gpa: number, target: Uint8Array): void {
    requireBytes(target, "guest memory read: target");
    this.#checkSpan("read", gpa, target.length);
    this.#region.copyOut(gpa, target);
  }

  /** Copies `source` into guest physical bytes `[gpa, gpa+source.length)`. */
  write(gpa: number, source: Uint8Array): void {
    requireBytes(source, "guest memory write: source");
    this.#checkSpan("write", gpa, source.length);
    this.provide(gpa, source.length);
    this.#region.copyIn(gpa, source);
  }

  /** Sets guest physical bytes `[gpa, gpa+len)` to `value`. */
  fill(gpa: number, len: number, value: number): void {
    this.#checkSpan("fill", gpa, len);
    this.provide(gpa, len);
    this.#region.fill(gpa, len, value);
  }

  /** Guest page `gpn` as a 4096-byte view (aliases the mapping; empty after release). */
  page(gpn: number): Uint8Array {
    this.checkPage(gpn, "page");
    return this.#region.view(gpn * PAGE_SIZE, PAGE_SIZE);
  }

  /**
   * Guest physical bytes `[gpa, gpa+len)` as a view (aliases the mapping; empty after release),
   * for copies on a hot path. The bytes must lie within one 1 GiB view of the mapping.
   */
  view(gpa: number, len: number): Uint8Array {
    this.#checkSpan("view", gpa, len);
    return this.#region.view(gpa, len);
  }

  /**
   * Guest physical bytes `[gpa, gpa+len)` as views, split where the mapping's 1 GiB views
   * split, for copies prepared once and repeated (the executor's bounce copies). Same lifetime
   * as `view`.
   */
  views(gpa: number, len: number): Uint8Array[] {
    this.#checkSpan("view", gpa, len);
    const views: Uint8Array[] = [];
    for (let at = gpa; at < gpa + len; ) {
      const n = Math.min(gpa + len, (Math.floor(at / CHUNK_BYTES) + 1) * CHUNK_BYTES) - at;
      views.push(this.#region.view(at, n));
      at += n;
    }
    return views;
  }

  /** msync: every store so far is in the image file when this returns. */
  sync(): void {
    this.#region.sync();
  }

  /**
   * Keeps the mapping while IO points into it (a prepared IO pins the guest memory it was made
   * over, and unpins it when released): a `release` meanwhile is deferred until the last unpin.
   */
  pin(): void {
    this.#region.pin();
  }

  unpin(): void {
    this.#region.unpin();
  }

  /** Unmaps the image (once no IO points into it: see `pin`). Idempotent; later use throws `ReleasedError`. */
  release(): void {
    this.#region.release();
  }

  [Symbol.dispose](): void {
    this.release();
  }

  #checkSpan(operation: string, gpa: number, len: number): void {
    if (!(Number.isSafeInteger(gpa) && gpa >= 0)) {
      throw new GuestAccessError(operation, String(gpa), "not a guest physical address");
    }
    if (!(Number.isSafeInteger(len) && len >= 0)) {
      throw new GuestAccessError(operation, hex(gpa), `${len} is not a length in bytes`);
    }
    if (gpa + len > this.size) {
      const why = `past the end of guest memory (${this.pageCount} pages, ${hex(this.size)} bytes)`;
      throw new GuestAccessError(operation, formatSpan(gpa, len), why);
    }
  }

  #pageError(gpn: number, operation: string): GuestAccessError {
    if (!Number.isSafeInteger(gpn) || gpn < 0) {
      return new GuestAccessError(operation, `GPN ${gpn}`, "not a page number");
    }
    const gpa = BigInt(gpn) << BigInt(PAGE_SHIFT);
    const why = `GPN ${gpn} is past the end of guest memory (${this.pageCount} pages)`;
    return new GuestAccessError(operation, formatSpan(gpa, PAGE_SIZE), why);
  }
}

function checkImageSize(path: string, size: number): void {
  if (size === 0) throw new InvalidInputError(`${path}: the guest image is empty`);
  if (!Number.isSafeInteger(size) || size < 0 || size % PAGE_SIZE !== 0) {
    throw new InvalidInputError(`${path}: a guest image must be a whole number of ${PAGE_SIZE}-byte pages, not ${size} bytes`);
  }
}
