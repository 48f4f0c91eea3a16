/**
 * BounceBufferTracker: a budget of bounce-buffer pages per IO thread, shared by Bun Workers.
 *
 * Each IO thread (an index `0 .. threads-1`) may hold at most `maxPagesPerThread` pages of
 * bounce buffers at once. `acquire(size, thread)` resolves to a `TrackedBounceBuffer` as soon as
 * the thread's slot has `ceil(size/4096)` free pages; releasing the buffer returns its pages.
 *
 * Waiters are served strictly in arrival order (FIFO), with a ticket per request:
 *
 *   slot:  free pages | next ticket | now serving | signal | counters...
 *   acquire: take ticket t; wait until serving == t and free >= pages; take the pages;
 *            serving = t + 1; signal.        release: free += pages; signal.
 *
 * so a large request is never starved by a stream of small ones (the reference woke all
 * waiters at once, in no order). Only the ticket holder decrements `free`, which is what makes
 * the check-then-take safe without a lock. Waiting uses `Atomics.waitAsync` on the signal word,
 * so a waiting Worker's event loop keeps running.
 *
 * Unlike the reference, a request larger than the whole per-thread budget fails at once with
 * a `BounceBudgetError` (it could never be served and would wait forever), and so does a thread
 * index outside the tracker (the reference panicked).
 *
 * All state lives in one SharedArrayBuffer (`shared`); a Worker gets the same tracker with
 * `BounceBufferTracker.attach(shared)`. A Worker that ends while holding buffers or a ticket
 * leaks them: release buffers before a Worker exits.
 */
import { BounceBuffer } from "./bounce-buffer";
import { DEFAULT_BOUNCE_PAGES_PER_THREAD, PAGE_SIZE } from "../base/constants";
import { BounceBudgetError, InvalidInputError } from "../base/errors";

/** Counters of one thread's slot (or, from `totals`, of all slots). */
export interface BounceStats {
  /** Bounce buffers handed out. */
  acquired: number;
  /** Acquisitions that had to wait for pages. */
  waits: number;
  /** Total time spent waiting, in nanoseconds. */
  waitNs: number;
  /** Most pages held at once (in `totals`, the largest of any slot). */
  peakPages: number;
  /** Pages held right now. */
  inUsePages: number;
  /** The budget: pages that may be held at once. */
  budgetPages: number;
}

// Int32 layout of the shared state.
const MAX_PAGES = 0;
const THREADS = 1;
const HEADER_INTS = 2;
// Per-slot fields, at HEADER_INTS + thread * SLOT_INTS.
const FREE = 0;
const NEXT_TICKET = 1;
const SERVING = 2;
const SIGNAL = 3;
// 64-bit counters: the low word here, the high word right after it (see `addCounter`).
const ACQUIRED_LO = 4;
const WAITS_LO = 6;
const PEAK = 8;
/** Waiters asleep (or about to sleep) on SIGNAL: `signal` notifies only when there are any. */
const SLEEPERS = 9;
/**
 * Ints from one slot to the next: 128 bytes, so that two threads' slots (their 10 fields, 40
 * bytes) never share a cache line, wherever the buffer starts. Packed, every atomic update of a
 * slot took the line from the other Worker's core: a take and give back cost 56-160 ns with two
 * Workers against 34-87 ns padded (31-45 ns with one).
 */
const SLOT_INTS = 32;

const MAX_THREADS = 4096;
const MAX_BUDGET_PAGES = 2 ** 31 - 1;

/** A bounce buffer whose pages count against a tracker's budget until it is released. */
export class TrackedBounceBuffer extends BounceBuffer {
  readonly #returnPages: () => void;

  /** @internal created by `BounceBufferTracker` only. */
  constructor(
    size: number,
    readonly thread: number,
    returnPages: () => void,
    alignment?: number,
  ) {
    super(size, alignment);
    this.#returnPages = returnPages;
  }

  /** Frees the memory and returns the pages to the budget, once. */
  override release(): void {
    if (this.released) return;
    super.release();
    this.#returnPages();
  }
}

export class BounceBufferTracker {
  readonly shared: SharedArrayBuffer;
  readonly maxPagesPerThread: number;
  readonly threads: number;
  readonly #state: Int32Array;
  readonly #waitNs: BigInt64Array;

  /**
   * @param shared internal: the state of an existing tracker (see `attach`); a new tracker
   *   starts with every slot's budget free.
   */
  constructor(maxPagesPerThread = DEFAULT_BOUNCE_PAGES_PER_THREAD, threads = 1, shared?: SharedArrayBuffer) {
    if (!(Number.isSafeInteger(maxPagesPerThread) && maxPagesPerThread > 0 && maxPagesPerThread <= MAX_BUDGET_PAGES)) {
      throw new InvalidInputError(`bounce budget ${maxPagesPerThread} is not a page count in 1 .. ${MAX_BUDGET_PAGES}`);
    }
    if (!(Number.isSafeInteger(threads) && threads > 0 && threads <= MAX_THREADS)) {
      throw new InvalidInputError(`bounce tracker thread count ${threads} is not in 1 .. ${MAX_THREADS}`);
    }
    const fresh = shared === undefined;
    this.shared = shared ?? new SharedArrayBuffer(layoutBytes(threads));
    if (this.shared.byteLength !== layoutBytes(threads)) {
      throw new InvalidInputError("bounce tracker: shared state does not match the budget and thread count");
    }
    this.maxPagesPerThread = maxPagesPerThread;
    this.threads = threads;
    this.#state = new Int32Array(this.shared, 0, HEADER_INTS + threads * SLOT_INTS);
    this.#waitNs = new BigInt64Array(this.shared, layoutBytes(threads) - threads * 8, threads);
    if (fresh) {
      this.#state[MAX_PAGES] = maxPagesPerThread;
      this.#state[THREADS] = threads;
      for (let thread = 0; thread < threads; thread++) this.#state[slotOf(thread) + FREE] = maxPagesPerThread;
    }
  }

  /** The tracker whose state is `shared`: another thread's `tracker.shared`, e.g. in a Worker. */
  static attach(shared: SharedArrayBuffer): BounceBufferTracker {
    if (!(shared instanceof SharedArrayBuffer) || shared.byteLength < HEADER_INTS * 4) {
      throw new InvalidInputError("bounce tracker: attach takes another tracker's `shared` SharedArrayBuffer");
    }
    const header = new Int32Array(shared, 0, HEADER_INTS);
    return new BounceBufferTracker(header[MAX_PAGES]!, header[THREADS]!, shared);
  }

  /**
   * A bounce buffer of `size` bytes counted against `thread`'s budget, as soon as the thread
   * has `ceil(size/4096)` free pages and every earlier waiter of the thread has been served.
   * Rejects at once with `BounceBudgetError` when the request exceeds the whole budget or the
   * thread index is not the tracker's.
   */
  async acquire(size: number, thread: number, alignment?: number): Promise<TrackedBounceBuffer> {
    const pages = this.#pagesFor(size, thread);
    await this.acquirePages(pages, thread);
    return this.#buffer(size, thread, pages, alignment);
  }

  /**
   * The buffer at once, or null when it would have to wait (not enough free pages, or earlier
   * waiters queued). Never takes a place in the queue. Throws like `acquire`.
   */
  tryAcquire(size: number, thread: number): TrackedBounceBuffer | null {
    const pages = this.#pagesFor(size, thread);
    return this.tryAcquirePages(pages, thread) ? this.#buffer(size, thread, pages) : null;
  }

  /**
   * The page accounting of `acquire` without the memory, for callers that keep their own
   * buffers (the benchmark preallocates one per in-flight slot): resolves once `pages` pages
   * of `thread`'s budget are theirs, in FIFO order. Give them back with `releasePages`.
   */
  async acquirePages(pages: number, thread: number): Promise<void> {
    this.#checkPages(pages, thread);
    const state = this.#state;
    const slot = slotOf(thread);
    const ticket = Atomics.add(state, slot + NEXT_TICKET, 1);
    if (!canTake(state, slot, ticket, pages)) {
      const started = performance.now();
      addCounter(state, slot + WAITS_LO);
      // Counted as a sleeper before looking at SIGNAL: a `signal` after that look sees the count
      // and notifies; one before it changed what this loop looks at next.
      Atomics.add(state, slot + SLEEPERS, 1);
      try {
        for (;;) {
          const signal = Atomics.load(state, slot + SIGNAL);
          if (canTake(state, slot, ticket, pages)) break;
          const wait = Atomics.waitAsync(state, slot + SIGNAL, signal);
          if (wait.async) await wait.value;
        }
      } finally {
        Atomics.sub(state, slot + SLEEPERS, 1);
      }
      Atomics.add(this.#waitNs, thread, BigInt(Math.round((performance.now() - started) * 1e6)));
    }
    this.#take(slot, pages);
  }

  /** Takes `pages` at once when nobody is queued and they are free; never queues. */
  tryAcquirePages(pages: number, thread: number): boolean {
    this.#checkPages(pages, thread);
    const state = this.#state;
    const slot = slotOf(thread);
    const serving = Atomics.load(state, slot + SERVING);
    if (Atomics.load(state, slot + NEXT_TICKET) !== serving) return false;
    if (Atomics.load(state, slot + FREE) < pages) return false;
    // Taking ticket `serving` makes us the holder; `free` can only have grown since.
    if (Atomics.compareExchange(state, slot + NEXT_TICKET, serving, (serving + 1) | 0) !== serving) return false;
    this.#take(slot, pages);
    return true;
  }

  /** Returns pages taken with `acquirePages`/`tryAcquirePages` and wakes the waiters. */
  releasePages(pages: number, thread: number): void {
    this.#checkThread(thread);
    const slot = slotOf(thread);
    const inUse = this.maxPagesPerThread - Atomics.load(this.#state, slot + FREE);
    if (!(Number.isSafeInteger(pages) && pages > 0 && pages <= inUse)) {
      // Giving back pages nobody took would let the budget grant more than its size.
      throw new BounceBudgetError("BUDGET_EXCEEDED", `release of ${pages} bounce pages on thread ${thread}, which holds ${inUse}`);
    }
    Atomics.add(this.#state, slot + FREE, pages);
    signal(this.#state, slot);
  }

  /** Pages `thread` may still take. */
  freePages(thread: number): number {
    this.#checkThread(thread);
    return Atomics.load(this.#state, slotOf(thread) + FREE);
  }

  /** The counters of one thread's slot. */
  stats(thread: number): BounceStats {
    this.#checkThread(thread);
    const state = this.#state;
    const slot = slotOf(thread);
    return {
      acquired: readCounter(state, slot + ACQUIRED_LO),
      waits: readCounter(state, slot + WAITS_LO),
      waitNs: Number(Atomics.load(this.#waitNs, thread)),
      peakPages: Atomics.load(state, slot + PEAK),
      inUsePages: this.maxPagesPerThread - Atomics.load(state, slot + FREE),
      budgetPages: this.maxPagesPerThread,
    };
  }

  /** The counters summed over all threads (`peakPages`: the largest slot peak). */
  totals(): BounceStats {
    const total: BounceStats = { acquired: 0, waits: 0, waitNs: 0, peakPages: 0, inUsePages: 0, budgetPages: 0 };
    for (let thread = 0; thread < this.threads; thread++) {
      const stats = this.stats(thread);
      total.acquired += stats.acquired;
      total.waits += stats.waits;
      total.waitNs += stats.waitNs;
      total.peakPages = Math.max(total.peakPages, stats.peakPages);
      total.inUsePages += stats.inUsePages;
      total.budgetPages += stats.budgetPages;
    }
    return total;
  }

  #pagesFor(size: number, thread: number): number {
    this.#checkThread(thread);
    if (!(Number.isSafeInteger(size) && size > 0)) {
      throw new InvalidInputError(`bounce buffer size ${size} is not a positive whole number of bytes`);
    }
    const pages = Math.ceil(size / PAGE_SIZE);
    if (pages > this.maxPagesPerThread) {
      throw new BounceBudgetError(
        "BUDGET_EXCEEDED",
        `bounce buffer of ${size} bytes (${pages} pages) exceeds the per-thread budget of ${this.maxPagesPerThread} pages (${this.maxPagesPerThread * PAGE_SIZE} bytes); it could never be served`,
      );
    }
    return pages;
  }

  /**
   * Whether `thread` is one of the tracker's and `pages` within its budget: a request that
   * `acquirePages` and `tryAcquirePages` take rather than reject at once.
   */
  fits(pages: number, thread: number): boolean {
    return this.#isThread(thread) && Number.isSafeInteger(pages) && pages > 0 && pages <= this.maxPagesPerThread;
  }

  #checkPages(pages: number, thread: number): void {
    this.#checkThread(thread);
    if (!this.fits(pages, thread)) {
      throw new BounceBudgetError(
        "BUDGET_EXCEEDED",
        `${pages} bounce pages is not within the per-thread budget of ${this.maxPagesPerThread} pages; it could never be served`,
      );
    }
  }

  #isThread(thread: number): boolean {
    return Number.isInteger(thread) && thread >= 0 && thread < this.threads;
  }

  #checkThread(thread: number): void {
    if (!this.#isThread(thread)) {
      throw new BounceBudgetError(
        "BAD_THREAD",
        `bounce tracker: thread ${thread} does not exist (threads 0 .. ${this.threads - 1})`,
      );
    }
  }

  /** Called by the ticket holder only: takes the pages, then serves the next ticket. */
  #take(slot: number, pages: number): void {
    const state = this.#state;
    const inUse = this.maxPagesPerThread - (Atomics.sub(state, slot + FREE, pages) - pages);
    for (let peak = Atomics.load(state, slot + PEAK); inUse > peak; ) {
      const seen = Atomics.compareExchange(state, slot + PEAK, peak, inUse);
      if (seen === peak) break;
      peak = seen;
    }
    addCounter(state, slot + ACQUIRED_LO);
    Atomics.add(state, slot + SERVING, 1);
    signal(state, slot);
  }

  #buffer(size: number, thread: number, pages: number, alignment?: number): TrackedBounceBuffer {
    const returnPages = () => this.releasePages(pages, thread);
    try {
      return new TrackedBounceBuffer(size, thread, returnPages, alignment);
    } catch (error) {
      returnPages(); // the memory could not be had: the pages go back
      throw error;
    }
  }
}

function slotOf(thread: number): number {
  return HEADER_INTS + thread * SLOT_INTS;
}

function layoutBytes(threads: number): number {
  const intBytes = (HEADER_INTS + threads * SLOT_INTS) * 4;
  return Math.ceil(intBytes / 8) * 8 + threads * 8;
}

function canTake(state: Int32Array, slot: number, ticket: number, pages: number): boolean {
  return Atomics.load(state, slot + SERVING) === ticket && Atomics.load(state, slot + FREE) >= pages;
}

/**
 * Tells the slot's waiters that it changed, if there are any: a waiter counts itself in
 * SLEEPERS before it reads SIGNAL and the state, and the change was made before this reads
 * SLEEPERS, so (the atomics being sequentially consistent) either this sees the waiter, or the
 * waiter sees the change. Uncontended, a signal is one load.
 */
function signal(state: Int32Array, slot: number): void {
  if (Atomics.load(state, slot + SLEEPERS) === 0) return;
  Atomics.add(state, slot + SIGNAL, 1);
  Atomics.notify(state, slot + SIGNAL);
}

/** Increments the 64-bit counter stored as two int32 words, low first. */
function addCounter(state: Int32Array, low: number): void {
  if (Atomics.add(state, low, 1) === -1) Atomics.add(state, low + 1, 1);
}

function readCounter(state: Int32Array, low: number): number {
  return (Atomics.load(state, low) >>> 0) + Atomics.load(state, low + 1) * 2 ** 32;
}
