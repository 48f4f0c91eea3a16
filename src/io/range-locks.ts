/**
 * SharedRangeLocks: the disk ranges held by writes in flight, shared by Bun Workers through one
 * SharedArrayBuffer, so that writes from different threads never interleave inside a block
 * either (see `RangeLocks` for one thread).
 *
 *   Int32:   [0] mutex (0 free, 1 held)   [1] generation (bumped on every release)
 *   Float64: entry i = [start, end), start < 0 when the entry is free
 *
 * The mutex guards the table only for the few instructions of a check-and-insert or a removal;
 * a writer whose range overlaps a held one waits (Atomics.waitAsync) for the generation to move
 * and tries again, so no thread's event loop ever blocks.
 */
import { InvalidInputError } from "../base/errors";
import type { RangeLockTable } from "./executor";

const MUTEX = 0;
const GENERATION = 1;
const HEADER_BYTES = 16;

export class SharedRangeLocks implements RangeLockTable {
  readonly shared: SharedArrayBuffer;
  readonly #state: Int32Array;
  readonly #ranges: Float64Array;
  readonly #capacity: number;

  /** A new table with room for `capacity` ranges held at once, or the table whose state is `shared`. */
  constructor(capacity = 1024, shared?: SharedArrayBuffer) {
    if (!(Number.isInteger(capacity) && capacity >= 1)) throw new InvalidInputError(`range lock capacity ${capacity} is not a positive count`);
    this.shared = shared ?? new SharedArrayBuffer(HEADER_BYTES + capacity * 16);
    this.#capacity = (this.shared.byteLength - HEADER_BYTES) / 16;
    this.#state = new Int32Array(this.shared, 0, 2);
    this.#ranges = new Float64Array(this.shared, HEADER_BYTES, this.#capacity * 2);
    if (shared === undefined) for (let i = 0; i < this.#capacity; i++) this.#ranges[2 * i] = -1;
  }

  static attach(shared: SharedArrayBuffer): SharedRangeLocks {
    return new SharedRangeLocks(1, shared);
  }

  async acquire(start: number, end: number): Promise<() => void> {
    for (;;) {
      this.#lock();
      const generation = Atomics.load(this.#state, GENERATION);
      let free = -1;
      let overlaps = false;
      for (let i = 0; i < this.#capacity; i++) {
        const heldStart = this.#ranges[2 * i]!;
        if (heldStart < 0) {
          if (free < 0) free = i;
        } else if (heldStart < end && start < this.#ranges[2 * i + 1]!) {
          overlaps = true;
          break;
        }
      }
      if (!overlaps && free >= 0) {
        this.#ranges[2 * free] = start;
        this.#ranges[2 * free + 1] = end;
        this.#unlock();
        return () => this.#release(free);
      }
      this.#unlock();
      const wait = Atomics.waitAsync(this.#state, GENERATION, generation);
      if (wait.async) await wait.value;
    }
  }

  /** Ranges held right now (for tests: 0 when every write has released its range). */
  get size(): number {
    let held = 0;
    for (let i = 0; i < this.#capacity; i++) if (this.#ranges[2 * i]! >= 0) held++;
    return held;
  }

  #release(entry: number): void {
    this.#lock();
    this.#ranges[2 * entry] = -1;
    this.#unlock();
    Atomics.add(this.#state, GENERATION, 1);
    Atomics.notify(this.#state, GENERATION);
  }

  #lock(): void {
    while (Atomics.compareExchange(this.#state, MUTEX, 0, 1) !== 0) {
      // Held for a table scan by another thread: spin briefly.
    }
  }

  #unlock(): void {
    Atomics.store(this.#state, MUTEX, 0);
  }
}
