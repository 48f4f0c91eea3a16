/**
 * RangeLocks: the disk ranges that writes in flight hold, so that two writes never interleave
 * inside a block (a read-modify-write reads its head and tail blocks, then writes them whole;
 * another write to those blocks in between would be lost). One implementation, for one thread
 * or for many Bun Workers sharing its `shared` state (`RangeLocks.attach`).
 *
 * A writer *claims* `[start, end)` and gets a handle. The claim is *held* once no held claim
 * overlaps it and no earlier claim that overlaps it is still waiting: claims are served in
 * arrival order where they overlap (a large range is never starved by a stream of small ones),
 * and claims that do not overlap never wait for each other.
 *
 *   Int32:   [0] mutex (0 free, 1 taken)   [1] version (moves on every release)   [2] pad
 *   Float64: [0] entries ever used (scans stop there)   [1] next ticket
 *            entry i at 2 + 5i = start, end, state, ticket, sequence
 *            state 0 free, 1 waiting, 2 held
 *
 * A handle is `sequence * capacity + entry`; the entry's sequence moves on every claim, so
 * releasing a handle twice, or one whose entry has since been reused, does nothing (a stale
 * release can never free someone else's range). The mutex guards the table only for a scan;
 * nobody blocks on it for longer, and waiting for a range is `changed(version)`, which uses
 * Atomics.waitAsync so that a waiting thread's event loop keeps running.
 *
 * The executor claims, polls `isHeld` between completions and releases without allocating;
 * `acquire` is the promise-shaped convenience for scripts.
 */
import { InvalidInputError } from "../base/errors";

const MUTEX = 0;
const VERSION = 1;
const HEADER_BYTES = 16;
const USED = 0;
const NEXT_TICKET = 1;
const ENTRY = 5;
const START = 0;
const END = 1;
const STATE = 2;
const TICKET = 3;
const SEQUENCE = 4;
const FREE = 0;
const WAITING = 1;
const HELD = 2;

/** The ranges held or asked for at once when nobody says otherwise. */
export const DEFAULT_RANGE_LOCK_CAPACITY = 1024;

export class RangeLocks {
  readonly shared: SharedArrayBuffer;
  readonly capacity: number;
  readonly #state: Int32Array;
  readonly #table: Float64Array;

  /** A new table with room for `capacity` claims at once, or (internal) the one whose state is `shared`. */
  constructor(capacity = DEFAULT_RANGE_LOCK_CAPACITY, shared?: SharedArrayBuffer) {
    if (!(Number.isInteger(capacity) && capacity >= 1 && capacity <= 2 ** 20)) {
      throw new InvalidInputError(`range lock capacity ${capacity} is not a count in 1 .. ${2 ** 20}`);
    }
    this.shared = shared ?? new SharedArrayBuffer(HEADER_BYTES + (2 + capacity * ENTRY) * 8);
    this.capacity = ((this.shared.byteLength - HEADER_BYTES) / 8 - 2) / ENTRY;
    if (!Number.isInteger(this.capacity) || this.capacity < 1) throw new InvalidInputError("range locks: shared state of the wrong size");
    this.#state = new Int32Array(this.shared, 0, 3);
    this.#table = new Float64Array(this.shared, HEADER_BYTES, 2 + this.capacity * ENTRY);
  }

  /** The table whose state is `shared` (another thread's `locks.shared`). */
  static attach(shared: SharedArrayBuffer): RangeLocks {
    return new RangeLocks(1, shared);
  }

  /**
   * Claims `[start, end)`: a handle, held at once or waiting behind earlier overlapping claims
   * (see `isHeld`), or -1 when the table is full (try again after `changed`).
   */
  claim(start: number, end: number): number {
    if (!(Number.isSafeInteger(start) && Number.isSafeInteger(end) && 0 <= start && start < end)) {
      throw new InvalidInputError(`range lock [${start}, ${end}) is not a non-empty range of disk bytes`);
    }
    const table = this.#table;
    this.#lock();
    try {
      const used = table[USED]!;
      let free = used < this.capacity ? used : -1;
      for (let i = 0; i < used; i++) {
        if (table[2 + i * ENTRY + STATE] === FREE) {
          free = i;
          break;
        }
      }
      if (free < 0) return -1;
      if (free === used) table[USED] = used + 1;
      const at = 2 + free * ENTRY;
      const ticket = table[NEXT_TICKET]!;
      table[NEXT_TICKET] = ticket + 1;
      table[at + START] = start;
      table[at + END] = end;
      table[at + TICKET] = ticket;
      table[at + SEQUENCE] = table[at + SEQUENCE]! + 1;
      table[at + STATE] = WAITING;
      this.#promote(free);
      return table[at + SEQUENCE]! * this.capacity + free;
    } finally {
      this.#unlock();
    }
  }

  /** Whether claim `handle` holds its range now; a waiting claim is promoted when it can be. */
  isHeld(handle: number): boolean {
    const entry = this.#entryOf(handle);
    if (entry < 0) return false;
    const at = 2 + entry * ENTRY;
    if (this.#table[at + STATE] === HELD) return true;
    this.#lock();
    try {
      return this.#entryOf(handle) === entry && this.#promote(entry);
    } finally {
      this.#unlock();
    }
  }

  /** Gives the range of `handle` back, or withdraws its waiting claim. Idempotent; a stale handle does nothing. */
  release(handle: number): void {
    this.#lock();
    try {
      const entry = this.#entryOf(handle);
      if (entry < 0) return;
      this.#table[2 + entry * ENTRY + STATE] = FREE;
    } finally {
      this.#unlock();
    }
    Atomics.add(this.#state, VERSION, 1);
    Atomics.notify(this.#state, VERSION);
  }

  /** Moves on every release: pass it to `changed` to wait for the next one. */
  get version(): number {
    return Atomics.load(this.#state, VERSION);
  }

  /** Resolves once a release has happened since `version` was read (at once if one has). */
  async changed(version: number): Promise<void> {
    const wait = Atomics.waitAsync(this.#state, VERSION, version);
    if (wait.async) await wait.value;
  }

  /** Claims `[start, end)` and resolves, with its (idempotent) release, once the range is held. */
  async acquire(start: number, end: number): Promise<() => void> {
    for (;;) {
      const version = this.version;
      const handle = this.claim(start, end);
      if (handle >= 0) {
        while (!this.isHeld(handle)) await this.changed(this.version);
        return () => this.release(handle);
      }
      await this.changed(version);
    }
  }

  /** Claims held or waiting right now (0 once every write has released its range). */
  get size(): number {
    let claims = 0;
    for (let i = 0; i < this.capacity; i++) if (this.#table[2 + i * ENTRY + STATE] !== FREE) claims++;
    return claims;
  }

  /** The entry `handle` names while its claim is live, else -1. */
  #entryOf(handle: number): number {
    if (!(Number.isSafeInteger(handle) && handle >= 0)) return -1;
    const entry = handle % this.capacity;
    const at = 2 + entry * ENTRY;
    if (this.#table[at + STATE] === FREE || this.#table[at + SEQUENCE]! * this.capacity + entry !== handle) return -1;
    return entry;
  }

  /** Under the mutex: makes waiting `entry` held unless a held or an earlier waiting claim overlaps it. */
  #promote(entry: number): boolean {
    const table = this.#table;
    const at = 2 + entry * ENTRY;
    const start = table[at + START]!;
    const end = table[at + END]!;
    const ticket = table[at + TICKET]!;
    const used = table[USED]!;
    for (let i = 0; i < used; i++) {
      if (i === entry) continue;
      const other = 2 + i * ENTRY;
      const state = table[other + STATE];
      if (state === FREE || !(table[other + START]! < end && start < table[other + END]!)) continue;
      if (state === HELD || table[other + TICKET]! < ticket) return false;
    }
    table[at + STATE] = HELD;
    return true;
  }

  #lock(): void {
    while (Atomics.compareExchange(this.#state, MUTEX, 0, 1) !== 0) {
      // Another thread is scanning the table: a few instructions, spin.
    }
  }

  #unlock(): void {
    Atomics.store(this.#state, MUTEX, 0);
  }
}
