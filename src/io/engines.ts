/**
 * IO engines: how a prepared IO (a disk descriptor, an iovec array, an offset) reaches the
 * kernel. One small interface, three engines, in the spirit of fio's:
 *
 *   engine  in flight   what it does
 *   sync    1           preadv/pwritev on the calling thread
 *   uring   up to qd    io_uring through its raw system calls, vectored reads and writes
 *   null    up to qd    no IO at all: completes at once, to measure the tool's own cost
 *
 * Protocol: `submit(slot, ...)` starts an IO for in-flight slot `slot` (0 .. qd-1);
 * `reap()` waits until at least one IO has completed (when any is in flight) and calls the
 * engine's completion callback once per completed IO with `(slot, result)`, where `result` is
 * the bytes transferred or `-errno`. The callback is given once, at creation, so the hot path
 * allocates nothing. The iovec array and buffers of a slot must stay alive until its completion
 * has been delivered.
 */
import { InvalidInputError } from "../base/errors";
import { IORING_OP_READV, IORING_OP_WRITEV, IoUring, OsError, preadv, pwritev, type Address } from "../native";

export type EngineName = "sync" | "uring" | "null";
export const ENGINE_NAMES: readonly EngineName[] = ["sync", "uring", "null"];

/** Called once per completed IO. */
export type CompletionCallback = (slot: number, result: number) => void;

export interface Engine {
  readonly name: EngineName;
  /** IOs that may be in flight at once. */
  readonly queueDepth: number;
  submit(slot: number, write: boolean, fd: number, iovecs: Address, iovecCount: number, offset: number, rwFlags: number, bytes: number): void;
  /** Delivers at least one completion if any IO is in flight; returns how many it delivered. */
  reap(): number;
  close(): void;
}

/** Deepest queue an engine may be asked for. */
export const MAX_QUEUE_DEPTH = 4096;

export function createEngine(name: EngineName, queueDepth: number, onComplete: CompletionCallback): Engine {
  if (!(Number.isInteger(queueDepth) && queueDepth >= 1 && queueDepth <= MAX_QUEUE_DEPTH)) {
    throw new InvalidInputError(`--qd: queue depth ${queueDepth} is not in 1 .. ${MAX_QUEUE_DEPTH}`);
  }
  switch (name) {
    case "sync":
      if (queueDepth !== 1) {
        throw new InvalidInputError(`--qd ${queueDepth}: the sync engine does one IO at a time; use --engine uring for a queue`);
      }
      return new SyncEngine(onComplete);
    case "uring":
      return new UringEngine(queueDepth, onComplete);
    case "null":
      return new NullEngine(queueDepth, onComplete);
  }
}

/** Completions kept until `reap`, in a fixed ring (no allocation per IO). */
class CompletionQueue {
  readonly #slots: Int32Array;
  readonly #results: Float64Array;
  #head = 0;
  #count = 0;

  constructor(capacity: number) {
    this.#slots = new Int32Array(capacity);
    this.#results = new Float64Array(capacity);
  }

  push(slot: number, result: number): void {
    const at = (this.#head + this.#count) % this.#slots.length;
    this.#slots[at] = slot;
    this.#results[at] = result;
    this.#count++;
  }

  drain(onComplete: CompletionCallback): number {
    const n = this.#count;
    for (let i = 0; i < n; i++) {
      const at = this.#head;
      this.#head = (this.#head + 1) % this.#slots.length;
      this.#count--;
      onComplete(this.#slots[at]!, this.#results[at]!);
    }
    return n;
  }
}

/**
 * An engine whose IOs complete during `submit` (or never touch the kernel): completions wait in
 * a fixed queue until `reap`.
 */
abstract class ImmediateEngine implements Engine {
  abstract readonly name: EngineName;
  readonly #done: CompletionQueue;

  constructor(
    readonly queueDepth: number,
    readonly onComplete: CompletionCallback,
  ) {
    this.#done = new CompletionQueue(queueDepth);
  }

  abstract submit(slot: number, write: boolean, fd: number, iovecs: Address, iovecCount: number, offset: number, rwFlags: number, bytes: number): void;

  protected complete(slot: number, result: number): void {
    this.#done.push(slot, result);
  }

  reap(): number {
    return this.#done.drain(this.onComplete);
  }

  close(): void {}
}

class SyncEngine extends ImmediateEngine {
  readonly name = "sync";

  constructor(onComplete: CompletionCallback) {
    super(1, onComplete);
  }

  submit(slot: number, write: boolean, fd: number, iovecs: Address, iovecCount: number, offset: number, rwFlags: number): void {
    let result: number;
    try {
      result = write ? pwritev(fd, iovecs, iovecCount, offset, rwFlags) : preadv(fd, iovecs, iovecCount, offset);
    } catch (error) {
      if (!(error instanceof OsError)) throw error;
      result = -error.errno;
    }
    this.complete(slot, result);
  }
}

class NullEngine extends ImmediateEngine {
  readonly name = "null";

  submit(slot: number, _write: boolean, _fd: number, _iovecs: Address, _count: number, _offset: number, _flags: number, bytes: number): void {
    this.complete(slot, bytes);
  }
}

class UringEngine implements Engine {
  readonly name = "uring";
  readonly #ring: IoUring;
  #inFlight = 0;

  constructor(
    readonly queueDepth: number,
    readonly onComplete: CompletionCallback,
  ) {
    this.#ring = new IoUring(queueDepth);
  }

  submit(slot: number, write: boolean, fd: number, iovecs: Address, iovecCount: number, offset: number, rwFlags: number): void {
    this.#ring.prepare(write ? IORING_OP_WRITEV : IORING_OP_READV, fd, iovecs, iovecCount, offset, rwFlags, slot);
    this.#inFlight++;
  }

  reap(): number {
    if (this.#inFlight === 0) return 0;
    const ring = this.#ring;
    // Submits what was queued and, when nothing is ready yet, waits for a completion: one
    // system call either way.
    if (ring.unsubmitted > 0 || ring.ready === 0) ring.submitAndWait(ring.ready === 0 ? 1 : 0);
    const ready = ring.ready;
    for (let i = 0; i < ready; i++) {
      const slot = ring.completionTag(i);
      const result = ring.completionResult(i);
      this.#inFlight--;
      this.onComplete(slot, result);
    }
    ring.consume(ready);
    return ready;
  }

  close(): void {
    // Every IO must be reaped before the ring (and the buffers it points to) goes away.
    while (this.#inFlight > 0) this.reap();
    this.#ring.close();
  }
}
