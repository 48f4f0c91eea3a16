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
 */
import { InvalidInputError } from "../base/errors";
import { IORING_OP_READV, IORING_OP_WRITEV, IOSQE_FIXED_FILE, IoUring, preadvOnce, pwritevOnce, type Address } from "../native";

/**
 * How the uring engine sets up and uses its ring, as fio names the options: `registerFiles`
 * (`registerfiles`: the disk's descriptor registered once, named by index in every SQE),
 * `sqpoll` (`sqthread_poll`: a kernel thread takes submissions), `deferTaskrun`
 * (IORING_SETUP_SINGLE_ISSUER | DEFER_TASKRUN). Each is refused (`RING_FEATURE`) where the
 * kernel refuses it.
 */
export interface UringOptions {
  registerFiles?: boolean;
  sqpoll?: boolean;
  deferTaskrun?: boolean;
}

/** The options in force, as a list of fio's names (empty: none), for headers and JSON. */
export function uringOptionNames(options: UringOptions | undefined): string[] {
  return [options?.registerFiles ? "registerfiles" : null, options?.sqpoll ? "sqthread_poll" : null, options?.deferTaskrun ? "defer_taskrun" : null].filter((name): name is string => name !== null);
}

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
  /** Starts one vectored call; `bytes` is its total length (what the null engine reports). */
  submit(tag: number, write: boolean, fd: number, iovecs: Address, iovecCount: number, offset: number, rwFlags: number, bytes: number): void;
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

  abstract submit(tag: number, write: boolean, fd: number, iovecs: Address, iovecCount: number, offset: number, rwFlags: number, bytes: number): void;

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

  submit(tag: number, write: boolean, fd: number, iovecs: Address, iovecCount: number, offset: number, rwFlags: number): void {
    this.complete(tag, write ? pwritevOnce(fd, iovecs, iovecCount, offset, rwFlags) : preadvOnce(fd, iovecs, iovecCount, offset));
  }
}

class NullEngine extends QueuedEngine {
  readonly name = "null";

  submit(tag: number, _write: boolean, _fd: number, _iovecs: Address, _count: number, _offset: number, _flags: number, bytes: number): void {
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

  constructor(queueDepth: number, onComplete: CompletionCallback, uring: UringOptions) {
    super(queueDepth, onComplete);
    this.#ring = new IoUring(queueDepth, { sqpoll: uring.sqpoll, deferTaskrun: uring.deferTaskrun });
    this.#registerFiles = uring.registerFiles === true;
    this.#tags = new Int32Array(queueDepth);
    this.#results = new Int32Array(queueDepth);
  }

  /**
   * Queues the call and hands it to the kernel at once, one io_uring_enter per call, as fio does
   * by default (iodepth_batch_submit=1). Holding calls back to submit them together with the
   * next wait saves that system call but, on the virtio disk measured, made 64 KiB random reads
   * at depth 16 about 30% slower (p50 latency 330 against 230 us): docs/performance.md.
   */
  submit(tag: number, write: boolean, fd: number, iovecs: Address, iovecCount: number, offset: number, rwFlags: number): void {
    const ring = this.#ring;
    // A job's calls all go to its one disk: registered at the first, named by index after.
    if (this.#registerFiles && this.#fixedFd < 0) {
      ring.registerFiles([fd]);
      this.#fixedFd = fd;
    }
    const fixed = fd === this.#fixedFd;
    ring.prepare(write ? IORING_OP_WRITEV : IORING_OP_READV, fixed ? 0 : fd, iovecs, iovecCount, offset, rwFlags, tag, fixed ? IOSQE_FIXED_FILE : 0);
    this.pending++;
    ring.submitAndWait(0);
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
