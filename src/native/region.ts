/**
 * NativeRegion: one mapping of native memory (a guest image or a bounce buffer) and the JS
 * views through which bounce-bench reads and writes it.
 *
 *   address ─┬─ chunk 0 (1 GiB) ─┬─ chunk 1 ─┬─ ... ─┬─ last chunk ─┐
 *            │   Uint8Array view │   view    │       │   view       │ length
 *
 * A single JS ArrayBuffer over native memory is limited to 4 GiB, so the region is seen through
 * lazily created views of at most `CHUNK_BYTES` each. Chunks are page multiples, so a page never
 * straddles two views; copies that span chunks are split here.
 *
 * Ownership: the region owns the mapping from construction until `release()` (or `using`
 * disposal), which unmaps it. Release first detaches every view it handed out (their length
 * becomes 0), so a stale view can never touch unmapped memory, then unmaps; any later use of
 * the region throws `ReleasedError`. Addresses from `address()` are valid until release: whoever
 * hands one to the kernel must keep the region alive until the call returns.
 *
 * Pins keep it alive for IO in flight: a prepared IO `pin()`s the regions its iovecs point
 * into and `unpin()`s them when it is done. A `release()` while pinned takes effect for every
 * new use at once (`released` is true, `address()`, `view()` and copies throw) but detaches and
 * unmaps only when the last pin goes, so an IO already handed to the kernel can never land in
 * whatever is mapped at the same address next.
 *
 * Offsets are checked by callers (GuestMemory checks GPNs, BounceBuffer its length); the
 * region re-checks only cheaply, with `RangeError`, as a last line of defence.
 */
import { toArrayBuffer, type Pointer } from "bun:ffi";
import { PAGE_SIZE } from "../base/constants";
import { InvalidInputError, ReleasedError } from "../base/errors";
import { readFileSync } from "node:fs";
import { anonHugePageBytes, closeFd, HUGE_PAGE_SIZE, mapAnonymousBase, mapAnonymousHuge, mapFile, movePages, reserveAddresses, syncMapping, unmap, type Address } from "./os";

/** Size of one JS view over a region: 1 GiB, well under the 4 GiB ArrayBuffer limit. */
export const CHUNK_BYTES = 2 ** 30;
const CHUNK_SHIFT = 30;

export class NativeRegion implements Disposable {
  #address: number;
  #mappedLength: number;
  #chunks: (Uint8Array | undefined)[];
  readonly length: number;
  readonly #what: string;
  #pins = 0;
  /** A descriptor closed with the mapping (`mapFile` with `ownFd`), or -1. */
  #ownedFd = -1;
  /** Released while pinned: unmapped when the last pin goes. */
  #releasing = false;
  /** A region over memory another region owns (`borrow`): release detaches its views but never unmaps. */
  #borrowed = false;

  private constructor(address: Address, length: number, mappedLength: number, what: string) {
    this.#address = address;
    this.length = length;
    this.#mappedLength = mappedLength;
    this.#what = what;
    this.#chunks = new Array(Math.ceil(length / CHUNK_BYTES)).fill(undefined);
  }

  /**
   * Zeroed, page-aligned anonymous memory of `length` bytes (rounded up to pages). With
   * `hugePages`, the mapping is rounded up to whole 2 MiB huge pages, starts on one, asks the
   * kernel for transparent huge pages and is touched at once, so the (possibly compacting)
   * faults happen here and not in the first IO. Worth it only for long-lived memory. Without,
   * the mapping stays on base pages even where THP is `always`.
   */
  static anonymous(length: number, what: string, hugePages = false): NativeRegion {
    if (!hugePages) {
      const mapped = Math.max(PAGE_SIZE, Math.ceil(length / PAGE_SIZE) * PAGE_SIZE);
      return new NativeRegion(mapAnonymousBase(mapped), length, mapped, what);
    }
    const mapped = Math.max(HUGE_PAGE_SIZE, Math.ceil(length / HUGE_PAGE_SIZE) * HUGE_PAGE_SIZE);
    const region = new NativeRegion(mapAnonymousHuge(mapped), length, mapped, what);
    for (let at = 0; at < length; at += HUGE_PAGE_SIZE) region.view(at, 1)[0] = 0;
    return region;
  }

  /**
   * A region over `length` bytes at `address` that another region (`owner`, in this process)
   * owns: how a Worker thread sees memory the main thread mapped. The owner must outlive every
   * use of the borrowed region and of the addresses it hands out (the bench keeps the owner
   * until its Workers are gone); releasing the borrowed region detaches its views, never unmaps.
   */
  static borrow(address: number, length: number, what: string): NativeRegion {
    // A public entry point: an address that is not this process's own readable and writable
    // memory would make the first access a SIGSEGV, so it is refused here instead.
    if (!(Number.isSafeInteger(address) && address > 0 && address % PAGE_SIZE === 0 && Number.isSafeInteger(length) && length > 0)) {
      throw new InvalidInputError(`${what}: address 0x${Number.isSafeInteger(address) ? address.toString(16) : String(address)} and length ${length} are not a page-aligned range of memory`);
    }
    if (!mappedReadWrite(address, length)) {
      throw new InvalidInputError(`${what}: 0x${address.toString(16)}+${length} is not memory this process has mapped readable and writable`);
    }
    const region = new NativeRegion(address as Address, length, length, what);
    region.#borrowed = true;
    return region;
  }

  /**
   * The pages of `pieces` (page-aligned ranges of other mappings this process owns) moved, one
   * after the other, into one new region: its bytes are the pieces' in order, on the same
   * physical frames. The pieces' old addresses are left unmapped; their owners still unmap
   * their whole ranges as before (holes are fine).
   */
  static movedPieces(pieces: readonly { address: Address; length: number }[], what: string): NativeRegion {
    const length = pieces.reduce((sum, piece) => sum + piece.length, 0);
    const address = reserveAddresses(length) as number;
    try {
      let at = address;
      for (const piece of pieces) {
        movePages(piece.address, piece.length, at as Address);
        at += piece.length;
      }
    } catch (error) {
      unmap(address as Address, length);
      throw error;
    }
    return new NativeRegion(address as Address, length, length, what);
  }

  /**
   * `length` bytes of an open file mapped `MAP_SHARED`. The descriptor may be closed afterwards:
   * the mapping keeps the file alive. With `ownFd`, the region owns the descriptor and closes it
   * when it unmaps (for callers that keep using it, e.g. to allocate the file's blocks).
   */
  static mapFile(fd: number, length: number, writable: boolean, what: string, offset = 0, populate = false, ownFd = false): NativeRegion {
    const region = new NativeRegion(mapFile(fd, length, writable, offset, populate), length, length, what);
    if (ownFd) region.#ownedFd = fd;
    return region;
  }

  get released(): boolean {
    return this.#mappedLength === 0 || this.#releasing;
  }

  /** Keeps the mapping until the matching `unpin`, whatever `release` says meanwhile. */
  pin(): void {
    this.#check(0, 0);
    this.#pins++;
  }

  /** Drops a pin; the last one performs a release asked for meanwhile. */
  unpin(): void {
    if (this.#pins === 0) throw new RangeError(`${this.#what}: unpinned more often than pinned`);
    this.#pins--;
    if (this.#pins === 0 && this.#releasing) {
      this.#releasing = false;
      this.release();
    }
  }

  /**
   * Bytes of this region that the kernel backs with transparent huge pages now, read from
   * /proc/self/smaps (at most `length`; the kernel may merge the mapping with a neighbouring
   * one of the same kind, whose huge pages are then counted too).
   */
  hugePageBytes(): number {
    this.#check(0, 0);
    return Math.min(this.length, anonHugePageBytes(this.#address as Address));
  }

  /** Host address of byte `offset`; valid until `release()`. */
  address(offset: number): Address {
    this.#check(offset, 0);
    return (this.#address + offset) as Address;
  }

  /**
   * The bytes `[offset, offset+len)` as a view; they must lie within one chunk (a page always
   * does). The view aliases native memory and becomes empty when the region is released.
   */
  view(offset: number, len: number): Uint8Array {
    this.#check(offset, len);
    const index = Math.floor(offset / CHUNK_BYTES);
    const within = offset - index * CHUNK_BYTES;
    if (within + len > CHUNK_BYTES) throw new RangeError(`${this.#what}: view crosses a ${CHUNK_BYTES}-byte chunk`);
    const chunk = this.#chunk(index);
    return chunk.subarray(within, within + len);
  }

  /** Copies `target.length` bytes from `[offset, ...)` into `target`. */
  copyOut(offset: number, target: Uint8Array): void {
    this.#check(offset, target.length);
    this.#forEachChunkSpan(offset, target.length, (chunk, at, done, len) => {
      target.set(chunk.subarray(at, at + len), done);
    });
  }

  /** Copies `source` into `[offset, offset+source.length)`. */
  copyIn(offset: number, source: Uint8Array): void {
    this.#check(offset, source.length);
    this.#forEachChunkSpan(offset, source.length, (chunk, at, done, len) => {
      chunk.set(source.subarray(done, done + len), at);
    });
  }

  /** Sets `[offset, offset+len)` to `value`. */
  fill(offset: number, len: number, value: number): void {
    this.#check(offset, len);
    this.#forEachChunkSpan(offset, len, (chunk, at, _done, n) => {
      chunk.fill(value, at, at + n);
    });
  }

  /** Copies `len` bytes from this region at `offset` to `target` at `targetOffset`. */
  copyTo(offset: number, target: NativeRegion, targetOffset: number, len: number): void {
    this.#check(offset, len);
    this.#forEachChunkSpan(offset, len, (chunk, at, done, n) => {
      target.copyIn(targetOffset + done, chunk.subarray(at, at + n));
    });
  }

  /** msync(MS_SYNC) of a file mapping: stores reach the file before this returns. */
  sync(): void {
    this.#check(0, 0);
    syncMapping(this.#address as Address, this.#mappedLength);
  }

  /** Detaches every view, then unmaps; while pinned, only marks the region released (see above). Idempotent. */
  release(): void {
    if (this.released) return;
    if (this.#pins > 0) {
      this.#releasing = true;
      return;
    }
    for (const chunk of this.#chunks) (chunk?.buffer as ArrayBuffer | undefined)?.transfer(0);
    this.#chunks.fill(undefined);
    const length = this.#mappedLength;
    this.#mappedLength = 0;
    if (!this.#borrowed) unmap(this.#address as Address, length);
    if (this.#ownedFd >= 0) {
      closeFd(this.#ownedFd);
      this.#ownedFd = -1;
    }
  }

  [Symbol.dispose](): void {
    this.release();
  }

  #check(offset: number, len: number): void {
    if (this.#mappedLength === 0 || this.#releasing) throw new ReleasedError(this.#what);
    if (!(offset >= 0 && len >= 0 && offset + len <= this.length)) {
      throw new RangeError(`${this.#what}: bytes ${offset}+${len} outside its ${this.length} bytes`);
    }
  }

  #chunk(index: number): Uint8Array {
    let chunk = this.#chunks[index];
    if (chunk === undefined) {
      const start = index * CHUNK_BYTES;
      const len = Math.min(CHUNK_BYTES, this.length - start);
      chunk = new Uint8Array(toArrayBuffer((this.#address + start) as Pointer, 0, len));
      this.#chunks[index] = chunk;
    }
    return chunk;
  }

  #forEachChunkSpan(
    offset: number,
    len: number,
    body: (chunk: Uint8Array, at: number, done: number, len: number) => void,
  ): void {
    let done = 0;
    while (done < len) {
      const position = offset + done;
      const index = position >>> 0 === position ? position >>> CHUNK_SHIFT : Math.floor(position / CHUNK_BYTES);
      const at = position - index * CHUNK_BYTES;
      const n = Math.min(len - done, CHUNK_BYTES - at);
      body(this.#chunk(index), at, done, n);
      done += n;
    }
  }
}

/** Whether `[address, address+length)` lies wholly in this process's readable and writable mappings (/proc/self/maps). */
function mappedReadWrite(address: number, length: number): boolean {
  let maps: string;
  try {
    maps = readFileSync("/proc/self/maps", "utf8");
  } catch {
    return false;
  }
  let covered = address;
  const end = address + length;
  const ranges = maps
    .split("\n")
    .map((line) => /^([0-9a-f]+)-([0-9a-f]+) (r)(w)/.exec(line))
    .filter((match): match is RegExpExecArray => match !== null)
    .map((match) => [parseInt(match[1]!, 16), parseInt(match[2]!, 16)] as const)
    .sort((a, b) => a[0] - b[0]);
  for (const [start, stop] of ranges) {
    if (start <= covered && stop > covered) covered = stop;
    if (covered >= end) return true;
  }
  return false;
}
