/**
 * BounceBuffer: page-aligned (or more: `alignment`), zeroed native memory of exactly `size`
 * bytes that the kernel can always do direct IO with, used when the guest's own buffers cannot
 * be handed over.
 *
 * It is one iovec (`iovecs()`); its bytes are visible to JS through `bytes`. The memory is
 * freed deterministically by `release()` or `using`: idempotent, and any later use throws
 * `ReleasedError` (a `bytes` view taken earlier becomes empty rather than dangling).
 *
 * A long-lived buffer can ask for transparent huge pages (`hugePages`): direct IO into it then
 * pins one 2 MiB folio and makes one DMA segment instead of one per 4 KiB page, which on the
 * machines measured pays for much of the copy (docs/performance.md). The memory is
 * rounded up to whole 2 MiB pages, so it is for buffers that are reused, not made per IO.
 *
 * A buffer on base pages can instead ask for a physical layout (`runs`): its pages then form
 * physically contiguous runs of those lengths (`physical-layout.ts`), so that direct IO into it
 * makes as many DMA segments as into the guest buffer it stands in for. Where frames cannot be
 * read (not root), it is plain anonymous memory and `layoutMatched` says so.
 */
import { PAGE_SIZE } from "../base/constants";
import { InvalidInputError } from "../base/errors";
import { checkAlignment } from "../base/alignment-rules";
import { CHUNK_BYTES, IovecArray, NativeRegion, type Address } from "../native";
import { memoryWithRuns } from "./physical-layout";

/** Largest single bounce buffer: one JS view (1 GiB). Bounce budgets are far smaller. */
export const MAX_BOUNCE_BYTES = CHUNK_BYTES;

export class BounceBuffer implements Disposable {
  readonly #region: NativeRegion;
  /** Where the buffer starts in the region: 0 unless `alignment` exceeds a page. */
  readonly #start: number;
  #iovecs: IovecArray | undefined;
  readonly size: number;
  /**
   * For a buffer asked to have physical `runs`: whether it has them exactly (false: some long
   * runs are made of shorter ones; frames unreadable: plain memory). Null when none were asked.
   */
  readonly layoutMatched: boolean | null;

  /**
   * @param alignment of the first byte's address, a power of two; anonymous memory is already
   *   page-aligned, larger alignments (a simulated disk's) cost up to `alignment - 4096` bytes.
   * @param options.hugePages back the buffer with transparent huge pages where the kernel
   *   allows it (see `hugePageBytes`); the mapping is rounded up to a multiple of 2 MiB.
   * @param options.runs the physical runs, in pages, of the buffer's pages (at least
   *   `ceil(size / 4096)` of them in all); only for page alignment, not with `hugePages`.
   */
  constructor(size: number, alignment = PAGE_SIZE, options: { hugePages?: boolean; runs?: readonly number[] } = {}) {
    if (!(Number.isSafeInteger(size) && size > 0 && size <= MAX_BOUNCE_BYTES)) {
      throw new InvalidInputError(`bounce buffer size ${size} is not a whole number of bytes in 1 .. ${MAX_BOUNCE_BYTES}`);
    }
    checkAlignment(alignment);
    const slack = Math.max(0, alignment - PAGE_SIZE);
    this.size = size;
    const runs = options.runs;
    if (runs !== undefined && (slack > 0 || options.hugePages === true || runs.reduce((sum, run) => sum + run, 0) * PAGE_SIZE < size)) {
      throw new InvalidInputError(`a bounce buffer laid out in runs of ${runs.join(",")} pages must be page-aligned, on base pages, and hold ${size} bytes`);
    }
    const laidOut = runs === undefined ? null : memoryWithRuns(runs, "bounce buffer");
    this.layoutMatched = runs === undefined ? null : (laidOut?.matched ?? false);
    this.#region = laidOut?.region ?? NativeRegion.anonymous(size + slack, "bounce buffer", options.hugePages ?? false);
    const base = this.#region.address(0) as number;
    this.#start = (alignment - (base % alignment)) % alignment;
  }

  /** Pages the buffer occupies: `ceil(size / 4096)`. */
  get pages(): number {
    return Math.ceil(this.size / PAGE_SIZE);
  }

  /** Bytes of the buffer the kernel currently backs with transparent huge pages. */
  hugePageBytes(): number {
    return this.#region.hugePageBytes();
  }

  get released(): boolean {
    return this.#region.released;
  }

  /** The buffer's bytes; the view aliases native memory and is emptied on release. */
  get bytes(): Uint8Array {
    return this.#region.view(this.#start, this.size);
  }

  /** Host address of the first byte (page-aligned); valid until release. */
  address(): Address {
    return this.#region.address(this.#start);
  }

  /**
   * The buffer as a one-entry iovec array `{ address, size }`, owned by the buffer: valid until
   * release, do not release it separately.
   */
  iovecs(): IovecArray {
    if (this.#iovecs === undefined) {
      const iovecs = new IovecArray(1);
      iovecs.push(this.address(), this.size);
      this.#iovecs = iovecs;
    }
    return this.#iovecs;
  }

  /** Frees the memory. Idempotent. */
  release(): void {
    this.#iovecs?.release();
    this.#region.release();
  }

  [Symbol.dispose](): void {
    this.release();
  }
}
