/**
 * IovecArray: an array of Linux `struct iovec` in native memory, ready for preadv/pwritev.
 *
 *   entry i at byte 16*i:  u64 iov_base  (two u32 halves, low first)
 *                          u64 iov_len   (two u32 halves, low first)
 *
 * 64-bit values are written as two 32-bit halves so the hot path never makes a BigInt. The
 * array is meant to be built once and refilled for every IO (`clear`, then `push`).
 *
 * Ownership: the array owns its native memory (an anonymous mapping) until `release()`. The
 * address from `address()` is valid until the array grows (a `push` beyond `capacity`) or is
 * released; the caller that hands it to the kernel keeps the array, and the buffers its entries
 * point to, alive until the call returns. The entries themselves own nothing.
 */
import { ReleasedError } from "../base/errors";
import type { Address } from "./os";
import { NativeRegion } from "./region";

const IOVEC_BYTES = 16;
const TWO_32 = 2 ** 32;

export class IovecArray implements Disposable {
  #region: NativeRegion;
  #words: Uint32Array;
  #capacity: number;
  #count = 0;
  #released = false;

  constructor(capacity = 16) {
    this.#capacity = Math.max(1, capacity);
    this.#region = NativeRegion.anonymous(this.#capacity * IOVEC_BYTES, "iovec array");
    this.#words = wordsOf(this.#region, this.#capacity);
  }

  /** Number of entries in use. */
  get count(): number {
    return this.#count;
  }

  get capacity(): number {
    return this.#capacity;
  }

  get released(): boolean {
    return this.#released;
  }

  /** Address of entry 0, for the kernel. See the module doc for how long it stays valid. */
  address(): Address {
    this.#checkLive();
    return this.#region.address(0);
  }

  /** Address of entry `index`, for a call that starts there (continuing a short transfer). */
  addressOf(index: number): Address {
    this.#checkLive();
    if (!(index >= 0 && index <= this.#count)) throw new RangeError(`iovec ${index} of ${this.#count}`);
    return this.#region.address(index * IOVEC_BYTES);
  }

  /** Rewrites entry `index` (in use) as `{ base, len }`. */
  set(index: number, base: Address | number, len: number): void {
    this.#checkIndex(index);
    const at = index * 4;
    const words = this.#words;
    words[at] = base >>> 0;
    words[at + 1] = (base / TWO_32) >>> 0;
    words[at + 2] = len >>> 0;
    words[at + 3] = (len / TWO_32) >>> 0;
  }

  clear(): void {
    this.truncate(0);
  }

  /** Drops the entries from `count` on. */
  truncate(count: number): void {
    this.#checkLive();
    if (count < this.#count) this.#count = Math.max(0, count);
  }

  /** Appends `{ base, len }`, growing the array if it is full. */
  push(base: Address | number, len: number): void {
    this.#checkLive();
    if (this.#count === this.#capacity) this.#grow(this.#capacity * 2);
    this.#count++;
    this.set(this.#count - 1, base, len);
  }

  /** `iov_base` of entry `i`, as read back from native memory. */
  base(i: number): number {
    this.#checkIndex(i);
    return this.#words[i * 4]! + this.#words[i * 4 + 1]! * TWO_32;
  }

  /** `iov_len` of entry `i`, as read back from native memory. */
  length(i: number): number {
    this.#checkIndex(i);
    return this.#words[i * 4 + 2]! + this.#words[i * 4 + 3]! * TWO_32;
  }

  /** Sum of the lengths of the entries in use. */
  totalBytes(): number {
    let total = 0;
    for (let i = 0; i < this.#count; i++) total += this.length(i);
    return total;
  }

  /** Frees the native memory. Idempotent; any later use throws `ReleasedError`. */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    this.#count = 0;
    this.#region.release();
  }

  [Symbol.dispose](): void {
    this.release();
  }

  #grow(capacity: number): void {
    const region = NativeRegion.anonymous(capacity * IOVEC_BYTES, "iovec array");
    this.#region.copyTo(0, region, 0, this.#count * IOVEC_BYTES);
    this.#region.release();
    this.#region = region;
    this.#words = wordsOf(region, capacity);
    this.#capacity = capacity;
  }

  #checkLive(): void {
    if (this.#released) throw new ReleasedError("iovec array");
  }

  #checkIndex(i: number): void {
    this.#checkLive();
    if (!(i >= 0 && i < this.#count)) throw new RangeError(`iovec ${i} of ${this.#count}`);
  }
}

function wordsOf(region: NativeRegion, capacity: number): Uint32Array {
  const bytes = region.view(0, capacity * IOVEC_BYTES);
  return new Uint32Array(bytes.buffer, bytes.byteOffset, capacity * 4);
}
