/**
 * A benchmark job's bounce memory: as many slots as the budget lets its thread hold at once,
 * each laid out physically like the guest pages it stands in for when asked, so that bounced and
 * direct IO are compared like for like. `npm run bench:pairs` makes its bounce buffer here too.
 */
import { PAGE_SIZE } from "../base/constants";
import { BounceBuffer, MAX_BOUNCE_BYTES } from "../bounce/bounce-buffer";
import { fitRuns } from "../bounce/physical-layout";

/**
 * A job's bounce slots: slices of as few long-lived buffers as fit (each at most
 * `MAX_BOUNCE_BYTES`), made once, on transparent huge pages or on base pages as the run asks
 * (the guest's page size by default, to compare like with like). Each slice starts on a
 * multiple of the request alignment, so the kernel accepts it for direct IO.
 */
export class BounceSlots implements Disposable {
  readonly #buffers: BounceBuffer[] = [];
  readonly #stride: number;
  readonly #slotsPerBuffer: number;

  /** Bytes of each slot: the bounce memory asked for and a page more. */
  readonly bytesPerSlot: number;

  /**
   * `slots` slots for bounce memory of up to `bounceBytes` each, and a page more, which lets each
   * prepared IO place its copies away from slow distances (`copy-placement.ts`).
   */
  constructor(
    bounceBytes: number,
    slots: number,
    alignment: number,
    hugePages: boolean,
    /** Per slot, the physical runs (in pages) its pages should repeat, from its first; null entries or none: any layout. */
    slotRuns: readonly (readonly number[] | null)[] | null,
  ) {
    this.bytesPerSlot = bounceBytes + PAGE_SIZE;
    const unit = Math.max(PAGE_SIZE, alignment);
    this.#stride = Math.ceil(this.bytesPerSlot / unit) * unit;
    this.#slotsPerBuffer = Math.max(1, Math.floor(MAX_BOUNCE_BYTES / this.#stride));
    const stridePages = this.#stride / PAGE_SIZE;
    try {
      for (let first = 0; first < slots; first += this.#slotsPerBuffer) {
        const count = Math.min(this.#slotsPerBuffer, slots - first);
        const wanted = slotRuns === null || unit > PAGE_SIZE ? [] : slotRuns.slice(first, first + count);
        const runs = wanted.length === count && wanted.every((runs) => runs !== null) ? wanted.flatMap((runs) => fitRuns(runs!, stridePages)) : undefined;
        this.#buffers.push(new BounceBuffer(count * this.#stride, alignment, { hugePages, runs }));
      }
    } catch (error) {
      this.release();
      throw error;
    }
  }

  /** Slot `index`'s bytes: their address and a view of them. */
  slot(index: number): { address: number; bytes: Uint8Array } {
    const buffer = this.#buffers[Math.floor(index / this.#slotsPerBuffer)]!;
    const start = (index % this.#slotsPerBuffer) * this.#stride;
    return { address: (buffer.address() as number) + start, bytes: buffer.bytes.subarray(start, start + this.bytesPerSlot) };
  }

  /** The buffers the slots are slices of, for registering with io_uring (`--fixedbufs`). */
  regions(): { address: number; length: number }[] {
    return this.#buffers.map((buffer) => ({ address: buffer.address() as number, length: buffer.size }));
  }

  hugePageBytes(): number {
    return this.#buffers.reduce((sum, buffer) => sum + buffer.hugePageBytes(), 0);
  }

  /** Whether every buffer got the physical layout asked for; null when none was asked. */
  get layoutMatched(): boolean | null {
    const asked = this.#buffers.filter((buffer) => buffer.layoutMatched !== null);
    return asked.length === 0 ? null : asked.length === this.#buffers.length && asked.every((buffer) => buffer.layoutMatched === true);
  }

  /** Bytes of bounce memory made. */
  bytes(): number {
    return this.#buffers.reduce((sum, buffer) => sum + buffer.size, 0);
  }

  release(): void {
    for (const buffer of this.#buffers) buffer.release();
  }

  [Symbol.dispose](): void {
    this.release();
  }
}
