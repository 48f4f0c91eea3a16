/**
 * The executor: the one place where plans are carried out, for `io`, `bench`, `repro`, the soak
 * and the library. It runs prepared IOs (`PreparedIo`) in up to `queueDepth` slots over one
 * engine, each slot a small state machine advanced by completions, so that a slot's run
 * allocates nothing:
 *
 *   budget    take the bounce pages from the budget (waits while the thread's budget is spent)
 *   lock      a write claims its disk range, widened to whole blocks (waits behind overlapping
 *             writes in flight, in arrival order); a read-modify-write also locks those blocks
 *             in the disk file against other processes (an open file description lock, tried
 *             without blocking and again every millisecond while another process holds it)
 *   transfer  each vectored call of the prepared IO in order, continued where a short transfer
 *             stopped, resubmitted on EINTR; a bounced write copies the guest bytes in after
 *             its head/tail reads and before its first write
 *   settle    a bounced read copies out; `onDone`; the range and the pages are given back;
 *             the slot's owner hears `(slot, error)`
 *
 * Every failure settles the slot with a typed error: the kernel's errno (`OsError` naming the
 * call), a transfer that stopped at the disk's end, a simulated disk's refusal (no call made).
 *
 * Driving: `start` a slot, then `poll()` (reaps completions, blocking in the kernel only while
 * something is in flight) until it returns false, which means every remaining slot waits on
 * something outside this executor (another thread's pages or ranges): `await wake()` then.
 * `run()` does both until every slot has settled. `executePlan` and `IoQueue` are the
 * promise-shaped front ends.
 *
 * Lifetimes: a slot's prepared IO (its iovecs, bounce memory, the guest memory and disk it
 * points into) must stay alive until the slot settles; `close` reaps every call still in flight
 * before it returns.
 */
import { BounceBenchError } from "../base/errors";
import type { Disk } from "../disk/disk";
import type { GuestMemory } from "../memory/guest-memory";
import { EINTR, monotonicNs, OsError, tryLockRange, unlockRange, type Address, type IovecArray } from "../native";
import { createEngine, type Engine, type EngineName, type MemoryRegion, type UringOptions } from "./engines";
import { PreparedIo, type RunOptions } from "./prepared-io";
import type { Plan } from "./planner";

/** Called once per started run, when it has settled (succeeded, or failed with `error`). */
export type SettledCallback = (slot: number, error: BounceBenchError | null) => void;

/** How often a read-modify-write tries again for blocks another process has locked. */
const FILE_LOCK_RETRY_MS = 1;

/**
 * One copy in this many is timed (the first, then every seventh): timing one costs two clock
 * readings, about 90 ns, which is 6% of a 64 KiB copy, and a run's copies repeat a few shapes,
 * so their rate is the timed ones'. Odd, so that IOs that cycle through a power-of-two number of
 * positions in a disk block (each with its own copy) are all timed in turn.
 */
const COPY_TIMING_INTERVAL = 7;

const IDLE = 0;
const BUDGET = 1;
const LOCK = 2;
const TRANSFER = 3;

export interface IoResult {
  bytes: number;
  elapsedNs: number;
  /** Vectored calls handed to the engine (short transfers count again), head/tail reads of a rmw included. */
  calls: number;
  /** Bytes moved to or from the disk, padding of a widened read or rmw included. */
  diskBytes: number;
  /** Guest bytes copied through the bounce buffer. */
  copiedBytes: number;
}

export class Executor implements Disposable {
  readonly engine: Engine;
  readonly queueDepth: number;
  readonly #onSettled: SettledCallback;
  readonly #io: (PreparedIo | null)[];
  readonly #stage: Int32Array;
  readonly #transfer: Int32Array;
  readonly #iovec: Int32Array;
  readonly #iovecEnd: Int32Array;
  readonly #position: Float64Array;
  /** Bytes the call in flight asked for. */
  readonly #expected: Float64Array;
  readonly #shift: Float64Array;
  readonly #lock: Float64Array;
  readonly #holdsPages: Uint8Array;
  readonly #holdsFileLock: Uint8Array;
  readonly #budgetWait: (Promise<void> | null)[];
  readonly #budgetGranted: Uint8Array;
  readonly #parked: Int32Array;
  readonly #retrying: Int32Array;
  #parkedCount = 0;
  /** Per slot: the range locks' version seen before its last try, so `wake` misses no release. */
  readonly #lockSeen: Float64Array;
  #active = 0;
  /** Per slot, for its current run: start time, calls made, disk bytes moved. */
  readonly startNs: Float64Array;
  readonly calls: Float64Array;
  readonly diskBytes: Float64Array;
  /**
   * The clock (`now`), read as rarely as correctness allows: a reading costs about as much as
   * the rest of a null-engine IO.
   */
  #clock = 0;
  #clockStale = true;
  /** Copies made (each IO's copy between guest memory and its bounce buffer counts once). */
  copies = 0;
  /** The copies timed (one in `COPY_TIMING_INTERVAL`), their time and bytes: see `copyNs`. */
  #timedCopyNs = 0;
  #timedCopyBytes = 0;
  /** Totals over every run: bytes copied, budget stalls and their time. */
  copiedBytes = 0;
  budgetStalls = 0;
  budgetStallNs = 0;
  readonly #parkedAt: Float64Array;

  /** Sets the totals above (and the engine's call counts) to zero: a phase of a job counts its own. */
  resetCounts(): void {
    this.copies = 0;
    this.#timedCopyNs = 0;
    this.#timedCopyBytes = 0;
    this.copiedBytes = 0;
    this.budgetStalls = 0;
    this.budgetStallNs = 0;
    this.engine.resetCounts();
  }

  constructor(engine: EngineName, queueDepth: number, onSettled: SettledCallback, uring: UringOptions = {}) {
    this.engine = createEngine(engine, queueDepth, (slot, result) => this.#completed(slot, result), uring);
    this.queueDepth = queueDepth;
    this.#onSettled = onSettled;
    this.#io = new Array(queueDepth).fill(null);
    this.#stage = new Int32Array(queueDepth);
    this.#transfer = new Int32Array(queueDepth);
    this.#iovec = new Int32Array(queueDepth);
    this.#iovecEnd = new Int32Array(queueDepth);
    this.#position = new Float64Array(queueDepth);
    this.#expected = new Float64Array(queueDepth);
    this.#shift = new Float64Array(queueDepth);
    this.#lock = new Float64Array(queueDepth).fill(-1);
    this.#holdsPages = new Uint8Array(queueDepth);
    this.#holdsFileLock = new Uint8Array(queueDepth);
    this.#budgetWait = new Array(queueDepth).fill(null);
    this.#budgetGranted = new Uint8Array(queueDepth);
    this.#parked = new Int32Array(queueDepth);
    this.#retrying = new Int32Array(queueDepth);
    this.#lockSeen = new Float64Array(queueDepth);
    this.#parkedAt = new Float64Array(queueDepth);
    this.startNs = new Float64Array(queueDepth);
    this.calls = new Float64Array(queueDepth);
    this.diskBytes = new Float64Array(queueDepth);
  }

  /** Runs started and not yet settled. */
  get active(): number {
    return this.#active;
  }

  /** Whether `slot` is free to `start`. */
  isIdle(slot: number): boolean {
    return this.#stage[slot] === IDLE;
  }

  /**
   * Starts `io` in `slot` (idle), `shift` bytes further on the disk than planned (a multiple of
   * its block size; checked by `io.checkShift` beforehand where it is not known to be valid).
   * `nowNs` is when the run started, for its latency, on the clock of `now` (`monotonicNs`); a
   * caller that has just read it passes it. May settle before returning (a simulated refusal);
   * an engine's completions, even immediate ones, are delivered by a later `poll`.
   */
  start(slot: number, io: PreparedIo, shift = 0, nowNs = monotonicNs()): void {
    if (this.#stage[slot] !== IDLE) throw new BounceBenchError("SLOT_BUSY", `executor slot ${slot} is still running`);
    io.beginRun();
    if (io.trimmed) io.restoreIovecs();
    this.#io[slot] = io;
    this.#shift[slot] = shift;
    this.#transfer[slot] = 0;
    this.calls[slot] = 0;
    this.diskBytes[slot] = 0;
    this.startNs[slot] = nowNs;
    this.#active++;
    if (io.ungated) {
      // No pages to take, no range to lock, nothing to refuse: straight to the first call.
      this.#stage[slot] = TRANSFER;
      return this.#next(slot, io);
    }
    if (io.gatedByBudgetOnly && this.#budgetGranted[slot] === 0 && io.budget!.tracker.tryAcquirePages(io.bouncePages, io.budget!.thread)) {
      // Only the budget gates it, and its pages are free with nobody queued: taken as `#step`
      // would take them, without its steps, which cost a bounced IO 25-40 ns with no device
      // and about 0.35 us after a real IO has been through the caches (docs/performance.md).
      this.#holdsPages[slot] = 1;
      this.#stage[slot] = TRANSFER;
      return this.#next(slot, io);
    }
    this.#stage[slot] = BUDGET;
    this.#advance(slot);
  }

  /**
   * Makes progress: retries waiting slots, and reaps completions when calls are in flight
   * (blocking in the kernel until one completes). False when nothing could be done here: every
   * unsettled slot waits on another thread (`wake`).
   */
  poll(): boolean {
    if (this.#parkedCount > 0) this.#retryParked();
    if (this.engine.inFlight > 0) {
      this.#clockStale = true;
      this.engine.reap();
      if (this.#parkedCount > 0) this.#retryParked();
      return true;
    }
    return this.#active === 0 || this.#parkedCount < this.#active;
  }

  /**
   * Now, to the precision a latency needs: the clock is read on first use after anything that
   * takes time (a reap, which may wait in the kernel; a wait for pages or ranges) and reused
   * until the next such thing, so completions delivered together, and the IOs started right
   * after them, share one reading; a copy's end counts as a reading too.
   */
  now(): number {
    if (this.#clockStale) {
      this.#clock = monotonicNs();
      this.#clockStale = false;
    }
    return this.#clock;
  }

  /** Resolves once a waiting slot may be able to go on: pages granted or a range released. */
  async wake(): Promise<void> {
    this.#clockStale = true;
    const waits: Promise<void>[] = [];
    for (let i = 0; i < this.#parkedCount; i++) {
      const slot = this.#parked[i]!;
      const io = this.#io[slot]!;
      if (this.#stage[slot] === BUDGET) waits.push(this.#waitForPages(slot, io));
      else if (io.lockEnd > 0 && !(this.#lock[slot]! >= 0 && io.locks!.isHeld(this.#lock[slot]!))) waits.push(io.locks!.changed(this.#lockSeen[slot]!));
      else waits.push(Bun.sleep(FILE_LOCK_RETRY_MS)); // another process holds the blocks: no notice comes when it lets go
    }
    if (waits.length > 0) await Promise.race(waits);
  }

  /** Drives every started run until it has settled. */
  async run(): Promise<void> {
    while (this.#active > 0) if (!this.poll()) await this.wake();
  }

  /** Reaps every call still in flight, then closes the engine. */
  close(): void {
    this.engine.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  #advance(slot: number): void {
    try {
      this.#step(slot);
    } catch (thrown) {
      // A budget or lock table that refuses the request (too large, wrong thread) fails this run only.
      if (this.#stage[slot] === IDLE) throw thrown;
      this.#unpark(slot);
      this.#settle(slot, thrown instanceof BounceBenchError ? thrown : new BounceBenchError("INTERNAL", String(thrown), { cause: thrown }));
    }
  }

  #step(slot: number): void {
    const io = this.#io[slot]!;
    if (this.#stage[slot] === BUDGET) {
      if (io.bouncePages > 0 && io.budget !== undefined && !this.#takePages(slot, io)) return this.#park(slot);
      this.#stage[slot] = LOCK;
    }
    if (this.#stage[slot] === LOCK) {
      if (io.lockEnd > 0 && !this.#takeRange(slot, io)) return this.#park(slot);
      if (io.fileLockLen > 0 && this.#holdsFileLock[slot] === 0) {
        if (!tryLockRange(io.fd, io.lockStart + this.#shift[slot]!, io.fileLockLen, io.fileLockShared)) return this.#park(slot);
        this.#holdsFileLock[slot] = 1;
      }
      this.#stage[slot] = TRANSFER;
      if (io.refusal !== null) return this.#settle(slot, io.refusal);
      return this.#next(slot, io);
    }
  }

  /** Submits transfer `#transfer[slot]` whole, or settles when none is left. */
  #next(slot: number, io: PreparedIo): void {
    const t = this.#transfer[slot]!;
    if (t === io.copyInAt) this.#copy(io, true);
    if (t === io.transferCount) return this.#settle(slot, null);
    const first = io.transferFirst[t]!;
    const count = io.transferIovecs[t]!;
    const bytes = io.transferBytes[t]!;
    const position = io.transferOffset[t]! + this.#shift[slot]!;
    const write = io.transferWrites[t] === 1;
    this.#iovec[slot] = first;
    this.#iovecEnd[slot] = first + count;
    this.#position[slot] = position;
    this.#expected[slot] = bytes;
    this.calls[slot]!++;
    this.engine.submit(slot, write, io.fd, io.iovecs, first, io.transferAddress[t]! as Address, count, position, write ? io.rwFlags : 0, bytes);
  }

  /** Submits what remains of the current transfer (after a short transfer or EINTR). */
  #submitRest(slot: number, io: PreparedIo): void {
    const t = this.#transfer[slot]!;
    const first = this.#iovec[slot]!;
    const bytes = this.#remaining(slot, io);
    const write = io.transferWrites[t] === 1;
    this.#expected[slot] = bytes;
    this.calls[slot]!++;
    this.engine.submit(slot, write, io.fd, io.iovecs, first, io.iovecs.addressOf(first), this.#iovecEnd[slot]! - first, this.#position[slot]!, write ? io.rwFlags : 0, bytes);
  }

  #completed(slot: number, result: number): void {
    const io = this.#io[slot]!;
    if (result === this.#expected[slot]) {
      // The whole call moved: the common case, no iovec to look at.
      this.diskBytes[slot]! += result;
      const t = ++this.#transfer[slot]!;
      return t === io.transferCount && io.plain ? this.#settle(slot, null) : this.#next(slot, io);
    }
    const t = this.#transfer[slot]!;
    const write = io.transferWrites[t] === 1;
    if (result < 0) {
      if (result === -EINTR) return this.#submitRest(slot, io);
      const call = write ? "pwritev" : "preadv";
      const detail = `${this.engine.name} engine, ${this.#remaining(slot, io)} bytes at offset ${this.#position[slot]} of ${io.diskPath}`;
      return this.#settle(slot, new OsError(-result, call, detail));
    }
    if (result === 0) return this.#settle(slot, shortTransfer(write, this.#position[slot]!, io.diskPath));
    this.diskBytes[slot]! += result;
    this.#position[slot]! += result;
    const index = advance(io.iovecs, this.#iovec[slot]!, this.#iovecEnd[slot]!, result);
    this.#iovec[slot] = index;
    if (index < this.#iovecEnd[slot]!) {
      // A short transfer: go on from where it stopped (the next run restores the trimmed iovec).
      io.trimmed = true;
      return this.#submitRest(slot, io);
    }
    this.#transfer[slot] = t + 1;
    this.#next(slot, io);
  }

  /** Bytes of the current transfer not yet moved. */
  #remaining(slot: number, io: PreparedIo): number {
    let bytes = 0;
    for (let i = this.#iovec[slot]!; i < this.#iovecEnd[slot]!; i++) bytes += io.iovecs.length(i);
    return bytes;
  }

  #settle(slot: number, error: BounceBenchError | null): void {
    const io = this.#io[slot]!;
    if (error === null && io.plain) {
      // Nothing to copy, call back, release or give back.
      this.#stage[slot] = IDLE;
      this.#io[slot] = null;
      this.#active--;
      io.endRun();
      return this.#onSettled(slot, null);
    }
    try {
      if (error === null) {
        if (!io.write && io.guestViews.length > 0) this.#copy(io, false);
        io.onDone?.();
      }
    } catch (thrown) {
      error = thrown instanceof BounceBenchError ? thrown : new BounceBenchError("INTERNAL", String(thrown), { cause: thrown });
    } finally {
      if (this.#holdsFileLock[slot] === 1) {
        this.#holdsFileLock[slot] = 0;
        unlockRange(io.fd, io.lockStart + this.#shift[slot]!, io.fileLockLen);
      }
      if (this.#lock[slot]! >= 0) {
        io.locks!.release(this.#lock[slot]!);
        this.#lock[slot] = -1;
      }
      if (this.#holdsPages[slot] === 1) {
        io.budget!.tracker.releasePages(io.bouncePages, io.budget!.thread);
        this.#holdsPages[slot] = 0;
      }
      this.#stage[slot] = IDLE;
      this.#io[slot] = null;
      this.#active--;
      io.endRun();
    }
    this.#onSettled(slot, error);
  }

  /**
   * Time spent copying between guest memory and bounce buffers, over every run: the timed
   * copies' time, scaled to every byte copied.
   */
  get copyNs(): number {
    return this.#timedCopyBytes === 0 ? 0 : (this.#timedCopyNs * this.copiedBytes) / this.#timedCopyBytes;
  }

  /** Copies every prepared pair: guest -> bounce (`toBounce`) or back; the clock has moved on. */
  #copy(io: PreparedIo, toBounce: boolean): void {
    const timed = this.copies++ % COPY_TIMING_INTERVAL === 0;
    const started = timed ? monotonicNs() : 0;
    const guest = io.guestViews;
    const bounce = io.bounceViews;
    if (toBounce) for (let i = 0; i < guest.length; i++) bounce[i]!.set(guest[i]!);
    else for (let i = 0; i < guest.length; i++) guest[i]!.set(bounce[i]!);
    this.copiedBytes += io.copiedBytes;
    if (timed) {
      // A reading of its own: the copy's end is also `now`.
      const ended = monotonicNs();
      this.#timedCopyNs += ended - started;
      this.#timedCopyBytes += io.copiedBytes;
      this.#clock = ended;
      this.#clockStale = false;
    } else {
      this.#clockStale = true;
    }
  }

  #takePages(slot: number, io: PreparedIo): boolean {
    if (this.#budgetGranted[slot] === 1) {
      this.#budgetGranted[slot] = 0;
    } else if (this.#budgetWait[slot] !== null || !io.budget!.tracker.tryAcquirePages(io.bouncePages, io.budget!.thread)) {
      return false;
    } else if (this.#parkedAt[slot]! > 0) {
      // Waited for pages this executor's own IOs held.
      this.budgetStalls++;
      this.budgetStallNs += monotonicNs() - this.#parkedAt[slot]!;
    }
    this.#holdsPages[slot] = 1;
    return true;
  }

  /** Queues for the pages (in the tracker's FIFO order) once nothing of ours is in flight to free them. */
  #waitForPages(slot: number, io: PreparedIo): Promise<void> {
    let wait = this.#budgetWait[slot];
    if (wait === null) {
      wait = io.budget!.tracker.acquirePages(io.bouncePages, io.budget!.thread).then(() => {
        this.#budgetWait[slot] = null;
        this.#budgetGranted[slot] = 1;
      });
      this.#budgetWait[slot] = wait;
    }
    return wait;
  }

  #takeRange(slot: number, io: PreparedIo): boolean {
    const locks = io.locks!;
    this.#lockSeen[slot] = locks.version;
    if (this.#lock[slot]! < 0) {
      const handle = locks.claim(io.lockStart + this.#shift[slot]!, io.lockEnd + this.#shift[slot]!);
      if (handle < 0) return false; // the table is full: try again after a release
      this.#lock[slot] = handle;
    }
    return locks.isHeld(this.#lock[slot]!);
  }

  #park(slot: number): void {
    if (this.#isParked(slot)) return;
    this.#parked[this.#parkedCount++] = slot;
    if (this.#parkedAt[slot] === 0) this.#parkedAt[slot] = monotonicNs();
  }

  /** Gives every waiting slot, oldest first, another try; those still waiting park again in the same order. */
  #retryParked(): void {
    const count = this.#parkedCount;
    this.#retrying.set(this.#parked.subarray(0, count));
    this.#parkedCount = 0;
    for (let i = 0; i < count; i++) {
      const slot = this.#retrying[i]!;
      this.#advance(slot);
      if (!this.#isParked(slot)) this.#parkedAt[slot] = 0;
    }
  }

  #unpark(slot: number): void {
    let kept = 0;
    for (let i = 0; i < this.#parkedCount; i++) if (this.#parked[i] !== slot) this.#parked[kept++] = this.#parked[i]!;
    this.#parkedCount = kept;
    this.#parkedAt[slot] = 0;
  }

  #isParked(slot: number): boolean {
    for (let i = 0; i < this.#parkedCount; i++) if (this.#parked[i] === slot) return true;
    return false;
  }
}

/**
 * After a transfer of `n` bytes from iovec `index` on: the index of the first iovec not fully
 * transferred, with that iovec trimmed in place to what remains of it.
 */
export function advance(iovecs: IovecArray, index: number, end: number, n: number): number {
  let remaining = n;
  while (index < end && remaining >= iovecs.length(index)) remaining -= iovecs.length(index++);
  if (remaining > 0) iovecs.set(index, iovecs.base(index) + remaining, iovecs.length(index) - remaining);
  return index;
}

/** A transfer that moved nothing before its end: the disk is shorter than it was. */
function shortTransfer(write: boolean, position: number, path: string): BounceBenchError {
  return new BounceBenchError(
    write ? "SHORT_WRITE" : "SHORT_READ", `${write ? "write" : "read"} at ${position} of disk ${path}: the disk ended (0 bytes transferred); was it truncated?`,
  );
}

/**
 * Executes `plan` (which carries its segments) between `memory` and `disk`: on this thread with
 * the sync engine, or, with `queue`, as one of many executions in flight on a shared queue.
 */
export async function executePlan(plan: Plan, memory: GuestMemory, disk: Disk, options: ExecuteOptions = {}): Promise<IoResult> {
  if (options.queue !== undefined) return options.queue.execute(plan, memory, disk, options);
  using io = PreparedIo.prepare(plan, memory, disk, options);
  const settled: { error: BounceBenchError | null } = { error: null };
  using executor = new Executor("sync", 1, (_slot, error) => (settled.error = error));
  executor.start(0, io);
  await executor.run();
  if (settled.error !== null) throw settled.error;
  return resultOf(executor, 0, plan, io);
}

export interface ExecuteOptions extends RunOptions {
  /** Run as one of many executions in flight on this queue (its engine and depth). */
  queue?: IoQueue;
}

function resultOf(executor: Executor, slot: number, plan: Plan, io: PreparedIo): IoResult {
  return {
    bytes: plan.len,
    elapsedNs: monotonicNs() - executor.startNs[slot]!,
    calls: executor.calls[slot]!,
    diskBytes: executor.diskBytes[slot]!,
    copiedBytes: io.copiedBytes,
  };
}

/**
 * Many plan executions in flight at once on one engine (io_uring by default), each in a slot
 * of the queue; executions beyond its depth wait for a slot in arrival order. The queue drives
 * itself while anything is in flight: `execute` returns a promise that settles with the IO.
 */
export class IoQueue implements Disposable {
  readonly #executor: Executor;
  readonly #settle: ((error: BounceBenchError | null) => void)[];
  /** Slots given to an execution (taken before it starts, free again once it has read its result). */
  readonly #taken: Uint8Array;
  readonly #slotWaiters: ((slot: number) => void)[] = [];
  #driving = false;

  constructor(
    readonly queueDepth: number,
    engine: EngineName = "uring",
    uring: UringOptions = {},
  ) {
    this.#executor = new Executor(engine, queueDepth, (slot, error) => this.#settle[slot]!(error), uring);
    this.#settle = new Array(queueDepth).fill(() => {});
    this.#taken = new Uint8Array(queueDepth);
  }

  async execute(plan: Plan, memory: GuestMemory, disk: Disk, options: RunOptions = {}): Promise<IoResult> {
    using io = PreparedIo.prepare(plan, memory, disk, options);
    const slot = await this.#takeSlot();
    const done = new Promise<BounceBenchError | null>((resolve) => (this.#settle[slot] = resolve));
    this.#executor.start(slot, io);
    this.#drive();
    const error = await done;
    const result = resultOf(this.#executor, slot, plan, io);
    this.#giveSlot(slot);
    if (error !== null) throw error;
    return result;
  }

  /** The engine the queue's IOs go through (its counters: `fixedCalls`, `unfixedCalls`). */
  get engine(): Engine {
    return this.#executor.engine;
  }

  /** Registers memory for fixed-buffer calls (`UringOptions.fixedBuffers`): see `Engine.registerMemory`. */
  registerMemory(regions: readonly MemoryRegion[]): void {
    this.#executor.engine.registerMemory(regions);
  }

  /** Settles like `Promise.allSettled(work)` (the queue drives itself; kept for scripts). */
  drive<T>(work: Promise<T>[]): Promise<PromiseSettledResult<T>[]> {
    return Promise.allSettled(work);
  }

  close(): void {
    this.#executor.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  /** Polls while runs are unsettled, yielding between rounds so other executions can start. */
  async #drive(): Promise<void> {
    if (this.#driving) return;
    this.#driving = true;
    try {
      while (this.#executor.active > 0) {
        await new Promise((resolve) => setImmediate(resolve));
        if (!this.#executor.poll()) await this.#executor.wake();
      }
    } finally {
      this.#driving = false;
    }
  }

  #takeSlot(): Promise<number> {
    const slot = this.#taken.indexOf(0);
    if (slot >= 0 && this.#slotWaiters.length === 0) {
      this.#taken[slot] = 1;
      return Promise.resolve(slot);
    }
    return new Promise((resolve) => this.#slotWaiters.push(resolve));
  }

  /** Hands `slot` to the oldest waiting execution, or frees it. */
  #giveSlot(slot: number): void {
    const waiter = this.#slotWaiters.shift();
    if (waiter !== undefined) waiter(slot);
    else this.#taken[slot] = 0;
  }
}
