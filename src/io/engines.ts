/**
 * IO engines: the one kernel interface. An engine takes a prepared vectored call (a descriptor,
 * an iovec array, an offset) and reports its completion; it knows nothing of plans, short
 * transfers or retries, which the executor handles once for every engine. In the spirit of
 * fio's ioengines, a small ops table:
 *
 *   engine  in flight   capabilities          what it does
 *   sync    1           touches the disk      preadv/pwritev on the calling thread
 *   uring   up to qd    touches the disk,     io_uring through its raw system calls
 *                       completes later
 *   null    up to qd    none                  no IO at all: completes at once with the bytes
 *                                             asked for, to measure the tool's own cost
 *
 * Protocol: `submit(tag, ...)` starts one call tagged `tag` (an in-flight slot, 0 .. qd-1);
 * `reap()` waits until at least one call has completed (when any is in flight) and calls the
 * completion callback once per completed call with `(tag, result)`, where `result` is the bytes
 * transferred or `-errno`. Every completion is taken off the engine's queue before its callback
 * runs, so a callback that throws never sees a completion twice; the ones after it stay queued
 * for the next `reap`. The callback is given once, at creation, so the hot path allocates
 * nothing. The iovec array and buffers of a call must stay alive until its completion has been
 * delivered; `close` reaps whatever is still in flight first.
 *
 * Registered (fixed) buffers (`fixedBuffers`, fio's `fixedbufs`): memory handed to
 * `registerMemory` once is pinned by the kernel for the ring's life, and a call whose iovecs all
 * lie in one registered buffer is sent as READ_FIXED/WRITE_FIXED (one iovec) or
 * READV_FIXED/WRITEV_FIXED (several, where the kernel has them): the kernel then looks up no
 * user page per IO. A call that cannot (an iovec outside every registered buffer, or across two;
 * several iovecs on a kernel without the vectored opcodes) goes as READV/WRITEV and is counted
 * (`unfixedCalls`), never silently.
 *
 * Non-vectored calls (`nonvectored`, fio's name, and fio's default where the kernel has the
 * opcodes): a call of one iovec in user memory goes as READ/WRITE of that buffer, not as
 * READV/WRITEV of a one-entry iovec array, so the kernel copies no iovec in. Counted too
 * (`nonvectoredCalls`); a call of several iovecs still goes as READV/WRITEV. The kernel's
 * alignment checks for it are preadv's (user memory either way): the kernel-oracle test holds
 * that to the kernel on every disk kind.
 */
import { BounceBenchError, InvalidInputError } from "../base/errors";
import {
  IORING_OP_READ,
  IORING_OP_READ_FIXED,
  IORING_OP_READV,
  IORING_OP_READV_FIXED,
  IORING_OP_WRITE,
  IORING_OP_WRITE_FIXED,
  IORING_OP_WRITEV,
  IORING_OP_WRITEV_FIXED,
  IOSQE_FIXED_FILE,
  IoUring,
  OsError,
  preadvOnce,
  pwritevOnce,
  type Address,
  type IovecArray,
} from "../native";

/**
 * How the uring engine sets up and uses its ring, as fio names the options: `registerFiles`
 * (`registerfiles`: the disk's descriptor registered once, named by index in every SQE),
 * `sqpoll` (`sqthread_poll`: a kernel thread takes submissions), `deferTaskrun`
 * (IORING_SETUP_SINGLE_ISSUER | DEFER_TASKRUN), `fixedBuffers` (`fixedbufs`: memory registered
 * with `registerMemory` sent by index, see the module doc), `nonvectored` (`nonvectored`: a call
 * of one iovec sent as READ/WRITE, see the module doc). Each is refused (`RING_FEATURE`) where
 * the kernel refuses it.
 */
export interface UringOptions {
  registerFiles?: boolean;
  sqpoll?: boolean;
  deferTaskrun?: boolean;
  fixedBuffers?: boolean;
  /**
   * With `fixedBuffers`, what the caller registers: guest memory and bounce memory (`all`, the
   * default), or the bounce memory alone (`bounce`: a VMM that bounces into a registered pool
   * and sends guest pages as they are). The engine registers whatever it is handed.
   */
  registeredMemory?: RegisteredMemory;
  nonvectored?: boolean;
}

export type RegisteredMemory = "all" | "bounce";
export const REGISTERED_MEMORY: readonly RegisteredMemory[] = ["all", "bounce"];

/** The options in force, as a list of fio's names (empty: none), for headers and JSON. */
export function uringOptionNames(options: UringOptions | undefined): string[] {
  return [
    options?.registerFiles ? "registerfiles" : null,
    options?.fixedBuffers ? (options.registeredMemory === "bounce" ? "fixedbufs=bounce" : "fixedbufs") : null,
    options?.sqpoll ? "sqthread_poll" : null,
    options?.deferTaskrun ? "defer_taskrun" : null,
    options?.nonvectored ? "nonvectored" : null,
  ].filter((name): name is string => name !== null);
}

let vectoredFixed: boolean | undefined;

/**
 * Whether this kernel's io_uring has READV_FIXED and WRITEV_FIXED (6.15+), asked of a ring once
 * per thread; false where no ring can be set up (io_uring disabled).
 */
export function vectoredFixedBuffers(): boolean {
  if (vectoredFixed === undefined) {
    try {
      using ring = new IoUring(1);
      vectoredFixed = ring.supports(IORING_OP_READV_FIXED) && ring.supports(IORING_OP_WRITEV_FIXED);
    } catch (error) {
      if (!(error instanceof OsError)) throw error;
      vectoredFixed = false; // no ring (io_uring disabled)
    }
  }
  return vectoredFixed;
}

/** Memory to register: `length` bytes at `address`, mapped for as long as the engine lives. */
export interface MemoryRegion {
  address: number;
  length: number;
}

/** The kernel's limit on one registered buffer (io_uring: 1 GiB); longer regions are registered in pieces. */
export const MAX_REGISTERED_BUFFER = 2 ** 30;

export type EngineName = "sync" | "uring" | "null";
export const ENGINE_NAMES: readonly EngineName[] = ["sync", "uring", "null"];

/** Called once per completed call. */
export type CompletionCallback = (tag: number, result: number) => void;

export interface EngineCapabilities {
  /** Calls that may be in flight at once. */
  readonly maxQueueDepth: number;
  /** The engine hands calls to the kernel (false: the null engine). */
  readonly touchesDisk: boolean;
  /** Calls complete after `submit` returns, so several can overlap. */
  readonly asynchronous: boolean;
}

export interface Engine {
  readonly name: EngineName;
  readonly capabilities: EngineCapabilities;
  /** Calls that may be in flight at once on this instance. */
  readonly queueDepth: number;
  /**
   * Starts one vectored call of iovecs `first .. first+count-1` of `iovecs`, whose address is
   * `address` (`iovecs.addressOf(first)`, computed once by the caller); `bytes` is its total
   * length (what the null engine reports).
   */
  submit(tag: number, write: boolean, fd: number, iovecs: IovecArray, first: number, address: Address, count: number, offset: number, rwFlags: number, bytes: number): void;
  /**
   * Registers memory for fixed-buffer calls (uring with `fixedBuffers` only; once). Each region
   * must stay mapped while the engine lives.
   */
  registerMemory(regions: readonly MemoryRegion[]): void;
  /** Calls sent with registered buffers, and calls that could not be (see the module doc). */
  readonly fixedCalls: number;
  readonly unfixedCalls: number;
  /**
   * Under `nonvectored`: calls of one iovec sent as READ/WRITE, and calls of several iovecs
   * that went as READV/WRITEV (calls sent with registered buffers are in neither).
   */
  readonly nonvectoredCalls: number;
  readonly vectoredCalls: number;
  /** Sets the four call counts above to zero (a job's measured run counts its own). */
  resetCounts(): void;
  /**
   * Whether the ring is entered by its index in the thread's registered rings
   * (`IORING_REGISTER_RING_FDS`) rather than by its descriptor; null for an engine without one.
   */
  readonly registeredRing: boolean | null;
  /** Whether several iovecs in one registered buffer go as one call (READV_FIXED: the kernel has it); null without `fixedBuffers`. */
  readonly vectoredFixed: boolean | null;
  /** Delivers at least one completion if any call is in flight; returns how many it delivered. */
  reap(): number;
  /** Calls submitted and not yet delivered. */
  readonly inFlight: number;
  close(): void;
}

/** Deepest queue an engine may be asked for. */
export const MAX_QUEUE_DEPTH = 4096;

const CAPABILITIES: Record<EngineName, EngineCapabilities> = {
  sync: { maxQueueDepth: 1, touchesDisk: true, asynchronous: false },
  uring: { maxQueueDepth: MAX_QUEUE_DEPTH, touchesDisk: true, asynchronous: true },
  null: { maxQueueDepth: MAX_QUEUE_DEPTH, touchesDisk: false, asynchronous: false },
};

export function engineCapabilities(name: EngineName): EngineCapabilities {
  return CAPABILITIES[name];
}

export function createEngine(name: EngineName, queueDepth: number, onComplete: CompletionCallback, uring: UringOptions = {}): Engine {
  const capabilities = CAPABILITIES[name];
  if (capabilities === undefined) throw new InvalidInputError(`engine ${JSON.stringify(name)} is not one of ${ENGINE_NAMES.join(", ")}`);
  if (!(Number.isInteger(queueDepth) && queueDepth >= 1 && queueDepth <= MAX_QUEUE_DEPTH)) {
    throw new InvalidInputError(`--qd: queue depth ${queueDepth} is not in 1 .. ${MAX_QUEUE_DEPTH}`);
  }
  if (queueDepth > capabilities.maxQueueDepth) {
    throw new InvalidInputError(`--qd ${queueDepth}: the ${name} engine does one IO at a time; use --engine uring for a queue`);
  }
  const asked = uringOptionNames(uring);
  if (name !== "uring" && asked.length > 0) throw new InvalidInputError(`--${asked[0]} is an io_uring option: use --engine uring`);
  switch (name) {
    case "sync":
      return new SyncEngine(onComplete);
    case "uring":
      return new UringEngine(queueDepth, onComplete, uring);
    case "null":
      return new NullEngine(queueDepth, onComplete);
  }
}

/**
 * The shared half of every engine: completions wait in a fixed ring (no allocation per call)
 * until `reap` hands them out one by one, each removed before its callback runs.
 */
abstract class QueuedEngine implements Engine {
  abstract readonly name: EngineName;
  readonly #tags: Int32Array;
  readonly #results: Int32Array;
  #head = 0;
  #queued = 0;
  /** Submitted and not yet queued for delivery (held by the kernel). */
  protected pending = 0;

  constructor(
    readonly queueDepth: number,
    readonly onComplete: CompletionCallback,
  ) {
    this.#tags = new Int32Array(queueDepth);
    this.#results = new Int32Array(queueDepth);
  }

  get capabilities(): EngineCapabilities {
    return CAPABILITIES[this.name];
  }

  get inFlight(): number {
    return this.pending + this.#queued;
  }

  fixedCalls = 0;
  unfixedCalls = 0;
  nonvectoredCalls = 0;
  vectoredCalls = 0;
  resetCounts(): void {
    this.fixedCalls = 0;
    this.unfixedCalls = 0;
    this.nonvectoredCalls = 0;
    this.vectoredCalls = 0;
  }

  get vectoredFixed(): boolean | null {
    return null;
  }

  get registeredRing(): boolean | null {
    return null;
  }

  abstract submit(tag: number, write: boolean, fd: number, iovecs: IovecArray, first: number, address: Address, count: number, offset: number, rwFlags: number, bytes: number): void;

  registerMemory(_regions: readonly MemoryRegion[]): void {
    throw new InvalidInputError(`the ${this.name} engine registers no memory: fixed buffers are an io_uring option (--engine uring --fixedbufs)`);
  }

  /** Moves completions the kernel holds into the queue, waiting for one when none is queued. */
  protected collect(): void {}

  protected complete(tag: number, result: number): void {
    const at = (this.#head + this.#queued) % this.#tags.length;
    this.#tags[at] = tag;
    this.#results[at] = result;
    this.#queued++;
  }

  reap(): number {
    if (this.#queued === 0 && this.pending > 0) this.collect();
    const n = this.#queued;
    for (let i = 0; i < n; i++) {
      const at = this.#head;
      this.#head = (at + 1) % this.#tags.length;
      this.#queued--;
      this.onComplete(this.#tags[at]!, this.#results[at]!);
    }
    return n;
  }

  close(): void {
    // Every call must be delivered before the buffers it points to may go.
    while (this.inFlight > 0) this.reap();
  }
}

class SyncEngine extends QueuedEngine {
  readonly name = "sync";

  constructor(onComplete: CompletionCallback) {
    super(1, onComplete);
  }

  submit(tag: number, write: boolean, fd: number, _iovecs: IovecArray, _first: number, address: Address, count: number, offset: number, rwFlags: number): void {
    this.complete(tag, write ? pwritevOnce(fd, address, count, offset, rwFlags) : preadvOnce(fd, address, count, offset));
  }
}

class NullEngine extends QueuedEngine {
  readonly name = "null";

  submit(tag: number, _write: boolean, _fd: number, _iovecs: IovecArray, _first: number, _address: Address, _count: number, _offset: number, _flags: number, bytes: number): void {
    this.complete(tag, bytes);
  }
}

class UringEngine extends QueuedEngine {
  readonly name = "uring";
  readonly #ring: IoUring;
  readonly #tags: Int32Array;
  readonly #results: Int32Array;
  readonly #registerFiles: boolean;
  /** The descriptor registered (index 0), once the first call named it; -1 before. */
  #fixedFd = -1;
  readonly #fixedBuffers: boolean;
  readonly #vectoredFixed: boolean | null;
  readonly #nonvectored: boolean;
  /** Registered buffers, by index: where each starts and ends (empty until `registerMemory`). */
  #bufferStart = new Float64Array(0);
  #registered = false;
  #bufferEnd = new Float64Array(0);

  constructor(queueDepth: number, onComplete: CompletionCallback, uring: UringOptions) {
    super(queueDepth, onComplete);
    this.#ring = new IoUring(queueDepth, { sqpoll: uring.sqpoll, deferTaskrun: uring.deferTaskrun });
    this.#registerFiles = uring.registerFiles === true;
    this.#fixedBuffers = uring.fixedBuffers === true;
    // The one answer, asked once per thread: what a simulated disk judges calls by (`PreparedIo`) too.
    this.#vectoredFixed = this.#fixedBuffers ? vectoredFixedBuffers() : null;
    this.#nonvectored = uring.nonvectored === true;
    if (this.#nonvectored && !(this.#ring.supports(IORING_OP_READ) && this.#ring.supports(IORING_OP_WRITE))) {
      this.#ring.close();
      throw new BounceBenchError("RING_FEATURE", "io_uring: this kernel has no IORING_OP_READ/WRITE (5.6+), which --nonvectored sends");
    }
    this.#tags = new Int32Array(queueDepth);
    this.#results = new Int32Array(queueDepth);
  }

  override get vectoredFixed(): boolean | null {
    return this.#vectoredFixed;
  }

  override get registeredRing(): boolean {
    return this.#ring.registeredRing;
  }

  override registerMemory(regions: readonly MemoryRegion[]): void {
    if (!this.#fixedBuffers) throw new InvalidInputError("registering memory needs the fixedBuffers option (--fixedbufs)");
    if (this.#registered) throw new BounceBenchError("RING_FEATURE", "io_uring: memory is registered once per ring");
    this.#registered = true;
    if (regions.length === 0) return; // nothing to register: every call goes as READV/WRITEV, counted
    const buffers: MemoryRegion[] = [];
    for (const region of regions) {
      for (let at = 0; at < region.length; at += MAX_REGISTERED_BUFFER) buffers.push({ address: region.address + at, length: Math.min(MAX_REGISTERED_BUFFER, region.length - at) });
    }
    try {
      this.#ring.registerBuffers(buffers);
    } catch (error) {
      if (error instanceof OsError && (error.code === "EFAULT" || error.code === "EOPNOTSUPP")) {
        throw new BounceBenchError(
          "RING_FEATURE",
          `io_uring_register(BUFFERS): ${error.code}: this kernel will not pin this memory for the ring's life (a shared mapping of a file on a disk filesystem is refused; memfd, anonymous and huge-page memory are taken)`,
          { cause: error },
        );
      }
      if (error instanceof OsError && error.code === "ENOMEM") {
        throw new BounceBenchError("RING_FEATURE", "io_uring_register(BUFFERS): ENOMEM: registered buffers count against RLIMIT_MEMLOCK (ulimit -l), which is too low for this memory", { cause: error });
      }
      throw error;
    }
    this.#bufferStart = Float64Array.from(buffers, (buffer) => buffer.address);
    this.#bufferEnd = Float64Array.from(buffers, (buffer) => buffer.address + buffer.length);
  }

  /**
   * Queues the call and hands it to the kernel at once, one io_uring_enter per call, as fio does
   * by default (iodepth_batch_submit=1). Holding calls back to submit them together with the
   * next wait saves that system call but, on the virtio disk measured, made 64 KiB random reads
   * at depth 16 about 30% slower (p50 latency 330 against 230 us): docs/performance.md.
   */
  submit(tag: number, write: boolean, fd: number, iovecs: IovecArray, first: number, address: Address, count: number, offset: number, rwFlags: number): void {
    const ring = this.#ring;
    // A job's calls all go to its one disk: registered at the first, named by index after.
    if (this.#registerFiles && this.#fixedFd < 0) {
      ring.registerFiles([fd]);
      this.#fixedFd = fd;
    }
    const fixedFile = fd === this.#fixedFd;
    const target = fixedFile ? 0 : fd;
    const sqeFlags = fixedFile ? IOSQE_FIXED_FILE : 0;
    const buffer = this.#fixedBuffers ? this.#registeredBuffer(iovecs, first, count) : -1;
    if (buffer >= 0 && count === 1) {
      ring.prepare(write ? IORING_OP_WRITE_FIXED : IORING_OP_READ_FIXED, target, iovecs.base(first) as Address, iovecs.length(first), offset, rwFlags, tag, sqeFlags, buffer);
      this.fixedCalls++;
    } else if (buffer >= 0 && this.#vectoredFixed === true) {
      ring.prepare(write ? IORING_OP_WRITEV_FIXED : IORING_OP_READV_FIXED, target, address, count, offset, rwFlags, tag, sqeFlags, buffer);
      this.fixedCalls++;
    } else {
      if (this.#fixedBuffers) this.unfixedCalls++;
      if (count === 1 && this.#nonvectored) {
        ring.prepare(write ? IORING_OP_WRITE : IORING_OP_READ, target, iovecs.base(first) as Address, iovecs.length(first), offset, rwFlags, tag, sqeFlags);
        this.nonvectoredCalls++;
      } else {
        ring.prepare(write ? IORING_OP_WRITEV : IORING_OP_READV, target, address, count, offset, rwFlags, tag, sqeFlags);
        if (this.#nonvectored) this.vectoredCalls++;
      }
    }
    this.pending++;
    ring.submitAndWait(0);
  }

  /** The registered buffer that holds every iovec of the call, or -1 when none does. */
  #registeredBuffer(iovecs: IovecArray, first: number, count: number): number {
    const starts = this.#bufferStart;
    const ends = this.#bufferEnd;
    const base = iovecs.base(first);
    let buffer = -1;
    for (let k = 0; k < starts.length; k++) {
      if (base >= starts[k]! && base + iovecs.length(first) <= ends[k]!) {
        buffer = k;
        break;
      }
    }
    if (buffer < 0) return -1;
    for (let i = first + 1; i < first + count; i++) {
      const at = iovecs.base(i);
      if (at < starts[buffer]! || at + iovecs.length(i) > ends[buffer]!) return -1;
    }
    return buffer;
  }

  protected override collect(): void {
    const ring = this.#ring;
    // Waits for a completion when none is ready (submitting anything still queued, too).
    if (ring.unsubmitted > 0 || ring.ready === 0) ring.submitAndWait(ring.ready === 0 ? 1 : 0);
    const n = ring.takeCompletions(this.#tags, this.#results, this.pending);
    this.pending -= n;
    for (let i = 0; i < n; i++) this.complete(this.#tags[i]!, this.#results[i]!);
  }

  override close(): void {
    super.close();
    this.#ring.close();
  }
}
