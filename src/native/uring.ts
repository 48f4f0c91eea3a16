/**
 * IoUring: a Linux io_uring instance driven through its raw system calls (no liburing, no
 * native addon), for vectored reads and writes at a queue depth.
 *
 *   io_uring_setup(entries, params) -> ring fd; params says where everything is:
 *   SQ ring  (mmap at 0):           head, tail, mask, array[]   (we write tail and array)
 *   CQ ring  (same mmap if the      head, tail, mask, cqes[]    (we write head)
 *            kernel has SINGLE_MMAP, else at 0x8000000)
 *   SQEs     (mmap at 0x10000000):  64-byte submission entries
 *   io_uring_enter(fd, to_submit, min_complete, GETEVENTS) submits and waits.
 *   io_uring_register(fd, op, arg, n): files and buffers registered once (then named by index
 *   in an SQE: IOSQE_FIXED_FILE, buf_index), and the probe of the opcodes this kernel has.
 *
 * The ring's own descriptor is registered with the thread that made it (IORING_REGISTER_RING_FDS,
 * 5.18+, as fio's t/io_uring does): io_uring_enter then names the ring by that index with
 * IORING_ENTER_REGISTERED_RING, and the kernel takes and drops no reference to the ring's file
 * on every call. The registration belongs to the thread (a Worker's ring is its own), is undone
 * by `close`, and is skipped where the kernel cannot (older kernels; a thread with 16 rings
 * registered already): `registeredRing` says which.
 *
 * Setup options (`RingSetup`), each refused by the kernel that lacks it (`RING_FEATURE`):
 *   sqpoll        IORING_SETUP_SQPOLL: a kernel thread of this process takes submissions from
 *                 the ring; io_uring_enter is needed only to wake it (IORING_SQ_NEED_WAKEUP)
 *                 or to wait for completions
 *   deferTaskrun  IORING_SETUP_SINGLE_ISSUER | DEFER_TASKRUN: one thread submits, and
 *                 completions are run when it asks for them (io_uring_enter with GETEVENTS)
 *
 * Ordering: the kernel reads `sq.tail` with acquire semantics and publishes `cq.tail` with
 * release; we write SQE contents before `Atomics.store` of the tail and read CQEs after
 * `Atomics.load` of the CQ tail, which keeps the JIT from reordering across them (x86-64 and
 * arm64 give the hardware side).
 *
 * Ownership: the ring owns its descriptor and three mappings until `close()`. A submitted IO's
 * iovec array and buffers must stay alive until its completion has been reaped; the caller
 * (the uring engine) keeps them per in-flight slot. 64-bit SQE fields are written as two
 * 32-bit halves: no BigInt on the hot path.
 */
import { ptr } from "bun:ffi";
import { BounceBenchError, ReleasedError } from "../base/errors";
import { OsError } from "./errno";
import { closeFd, IO_BYTES_READ, IO_BYTES_WRITTEN, IO_SQES, ioCounters, rawSyscall, type Address } from "./os";
import { NativeRegion } from "./region";

const SYS_IO_URING_SETUP = 425;
const SYS_IO_URING_ENTER = 426;
const SYS_IO_URING_REGISTER = 427;
const IORING_SETUP_SQPOLL = 1 << 1;
const IORING_SETUP_SINGLE_ISSUER = 1 << 12;
const IORING_SETUP_DEFER_TASKRUN = 1 << 13;
const IORING_SQ_NEED_WAKEUP = 1;
const IORING_ENTER_SQ_WAKEUP = 2;
const IORING_REGISTER_BUFFERS = 0;
const IORING_REGISTER_FILES = 2;
const IORING_REGISTER_PROBE = 8;
const IORING_REGISTER_RING_FDS = 20;
const IORING_UNREGISTER_RING_FDS = 21;
const IORING_ENTER_REGISTERED_RING = 1 << 4;
const IO_URING_OP_SUPPORTED = 1;
/** `sqe.flags`: `fd` is an index into the registered files. */
export const IOSQE_FIXED_FILE = 1;
const IORING_OFF_SQ_RING = 0;
const IORING_OFF_CQ_RING = 0x8000000;
const IORING_OFF_SQES = 0x10000000;
const IORING_FEAT_SINGLE_MMAP = 1;
const IORING_ENTER_GETEVENTS = 1;
export const IORING_OP_READV = 1;
export const IORING_OP_WRITEV = 2;
/** One buffer of user memory (`addr`, `len` bytes): no iovec array to copy in (5.6 and later). */
export const IORING_OP_READ = 22;
export const IORING_OP_WRITE = 23;
/** One buffer inside a registered one (`addr`, `len` bytes, `buf_index`). */
export const IORING_OP_READ_FIXED = 4;
export const IORING_OP_WRITE_FIXED = 5;
/** Vectored, every iovec inside the registered buffer `buf_index` (6.15 and later). */
export const IORING_OP_READV_FIXED = 60;
export const IORING_OP_WRITEV_FIXED = 61;
const WRITES = new Set([IORING_OP_WRITEV, IORING_OP_WRITE, IORING_OP_WRITE_FIXED, IORING_OP_WRITEV_FIXED]);

/** How a ring is set up (see the module doc). */
export interface RingSetup {
  sqpoll?: boolean;
  deferTaskrun?: boolean;
}

const PARAMS_BYTES = 120;
/** How long an SQPOLL thread spins without work before it sleeps (and needs waking). */
const SQPOLL_IDLE_MS = 2000;
const SQE_WORDS = 16;
const CQE_WORDS = 4;
const TWO_32 = 2 ** 32;

export class IoUring implements Disposable {
  readonly entries: number;
  #fd: number;
  readonly #regions: NativeRegion[] = [];
  // SQ ring, as u32 word indexes into #sqRing.
  readonly #sqRing: Uint32Array;
  readonly #sqHead: number;
  readonly #sqTail: number;
  readonly #sqMask: number;
  readonly #sqArray: number;
  readonly #sqes: Uint32Array;
  // CQ ring.
  readonly #cqRing: Uint32Array;
  readonly #cqRingSigned: Int32Array;
  readonly #cqHead: number;
  readonly #cqTail: number;
  readonly #cqMask: number;
  readonly #cqes: number;
  /** SQEs written but not yet handed to the kernel by `enter`. */
  #unsubmitted = 0;
  /** IOs prepared and not yet reaped: never more than `entries`, so neither ring can overflow. */
  #inFlight = 0;
  #localTail: number;
  readonly #sqFlags: number;
  readonly sqpoll: boolean;
  readonly deferTaskrun: boolean;
  /** What io_uring_enter names the ring by: its registered index (with `#enterFlags`), else its descriptor. */
  #enterFd: number;
  #enterFlags = 0;
  /** The ring's index among this thread's registered rings, or -1. */
  #ringIndex = -1;

  /** A ring with room for at least `entries` IOs in flight (rounded up to a power of two). */
  constructor(entries: number, setup: RingSetup = {}) {
    if (setup.sqpoll && setup.deferTaskrun) {
      // Deferred task work runs in the one submitting task; under SQPOLL that is a kernel thread.
      throw new BounceBenchError("RING_FEATURE", "io_uring: SQPOLL and DEFER_TASKRUN cannot be combined (the kernel's submitter under SQPOLL is its own thread)");
    }
    const params = new Uint32Array(PARAMS_BYTES / 4);
    params[2] = (setup.sqpoll ? IORING_SETUP_SQPOLL : 0) | (setup.deferTaskrun ? IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN : 0);
    if (setup.sqpoll) params[4] = SQPOLL_IDLE_MS; // sq_thread_idle
    this.sqpoll = setup.sqpoll === true;
    this.deferTaskrun = setup.deferTaskrun === true;
    // `params` is alive for the whole call; the kernel only reads and fills it during it.
    try {
      this.#fd = rawSyscall(SYS_IO_URING_SETUP, "io_uring_setup", entries, ptr(params));
    } catch (error) {
      const asked = [setup.sqpoll ? "IORING_SETUP_SQPOLL" : null, setup.deferTaskrun ? "IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN" : null].filter(Boolean);
      if (asked.length > 0 && (error as { code?: string }).code === "EINVAL") {
        throw new BounceBenchError("RING_FEATURE", `io_uring_setup: this kernel refuses ${asked.join(" and ")} (EINVAL)`, { cause: error });
      }
      throw error;
    }
    try {
      const p = (field: number) => params[field]!;
      this.entries = p(0);
      const cqEntries = p(1);
      const features = p(5);
      // sq_off at byte 40, cq_off at byte 80 (u32 fields).
      const sq = { head: p(10), tail: p(11), mask: p(12), flags: p(14), array: p(16) };
      const cq = { head: p(20), tail: p(21), mask: p(22), cqes: p(25) };
      const sqBytes = sq.array + this.entries * 4;
      const cqBytes = cq.cqes + cqEntries * CQE_WORDS * 4;
      const single = (features & IORING_FEAT_SINGLE_MMAP) !== 0;
      const sqRegion = this.#map(single ? Math.max(sqBytes, cqBytes) : sqBytes, IORING_OFF_SQ_RING);
      const cqRegion = single ? sqRegion : this.#map(cqBytes, IORING_OFF_CQ_RING);
      const sqeRegion = this.#map(this.entries * SQE_WORDS * 4, IORING_OFF_SQES);
      this.#sqRing = words(sqRegion);
      this.#sqHead = sq.head / 4;
      this.#sqTail = sq.tail / 4;
      this.#sqMask = this.#sqRing[sq.mask / 4]!;
      this.#sqArray = sq.array / 4;
      this.#sqFlags = sq.flags / 4;
      this.#sqes = words(sqeRegion);
      this.#cqRing = words(cqRegion);
      const bytes = cqRegion.view(0, cqRegion.length);
      this.#cqRingSigned = new Int32Array(bytes.buffer, bytes.byteOffset, bytes.length >>> 2);
      this.#cqHead = cq.head / 4;
      this.#cqTail = cq.tail / 4;
      this.#cqMask = this.#cqRing[cq.mask / 4]!;
      this.#cqes = cq.cqes / 4;
      this.#localTail = Atomics.load(this.#sqRing, this.#sqTail);
      this.#enterFd = this.#fd;
      this.#registerRing();
    } catch (error) {
      this.close();
      throw error;
    }
  }

  /** IOs prepared and not yet reaped (`takeCompletions`). */
  get inFlight(): number {
    return this.#inFlight;
  }

  /**
   * Queues a read or write at file `offset`, tagged `tag` (a non-negative 32-bit integer) for
   * its completion: vectored (`addr` an iovec array of `len` iovecs) or of one buffer (`addr`,
   * `len` bytes: READ, WRITE, READ_FIXED, WRITE_FIXED). `sqeFlags` may name `fd` as a registered file
   * (`IOSQE_FIXED_FILE`); `bufIndex` names the registered buffer of a fixed opcode. Refused
   * (`RING_FULL`, nothing queued) when `entries` IOs are already in flight: the submission ring
   * would wrap onto entries the kernel has not read, or completions outrun the completion ring.
   */
  prepare(opcode: number, fd: number, addr: Address, len: number, offset: number, rwFlags: number, tag: number, sqeFlags = 0, bufIndex = 0): void {
    this.#checkOpen();
    if (this.#inFlight >= this.entries) {
      throw new BounceBenchError("RING_FULL", `io_uring: ${this.#inFlight} IOs in flight fill its ${this.entries} entries; reap a completion first`);
    }
    this.#inFlight++;
    ioCounters[IO_SQES]!++;
    const index = this.#localTail & this.#sqMask;
    const sqes = this.#sqes;
    const at = index * SQE_WORDS;
    sqes[at] = opcode | (sqeFlags << 8); // opcode, flags, ioprio 0
    sqes[at + 1] = fd;
    sqes[at + 2] = offset >>> 0;
    sqes[at + 3] = (offset / TWO_32) >>> 0;
    sqes[at + 4] = addr >>> 0;
    sqes[at + 5] = (addr / TWO_32) >>> 0;
    sqes[at + 6] = len;
    sqes[at + 7] = rwFlags;
    sqes[at + 8] = tag; // user_data: the tag, and whether it writes (for the byte counters)
    sqes[at + 9] = WRITES.has(opcode) ? 1 : 0;
    sqes[at + 10] = bufIndex; // buf_index (u16), personality 0
    sqes.fill(0, at + 11, at + SQE_WORDS);
    this.#sqRing[this.#sqArray + index] = index;
    this.#localTail = (this.#localTail + 1) >>> 0;
    Atomics.store(this.#sqRing, this.#sqTail, this.#localTail);
    this.#unsubmitted++;
  }

  /** Entries prepared but not yet handed to the kernel. */
  get unsubmitted(): number {
    return this.#unsubmitted;
  }

  /**
   * Hands queued entries to the kernel and waits until at least `minComplete` completions are
   * ready. Under SQPOLL the kernel thread takes the entries itself: the call is made only to
   * wake it when it sleeps, or to wait.
   */
  submitAndWait(minComplete: number): void {
    this.#checkOpen();
    // Under DEFER_TASKRUN completions are posted only when asked for: asking on every call lets
    // the ones ready by now be reaped without another call to wait for them.
    let flags = minComplete > 0 || this.deferTaskrun ? IORING_ENTER_GETEVENTS : 0;
    if (this.sqpoll) {
      // The tail store before this load is sequentially consistent (a full fence), as the
      // kernel's check of NEED_WAKEUP needs.
      if ((Atomics.load(this.#sqRing, this.#sqFlags) & IORING_SQ_NEED_WAKEUP) !== 0) flags |= IORING_ENTER_SQ_WAKEUP;
      this.#unsubmitted = 0;
      if (flags !== 0) rawSyscall(SYS_IO_URING_ENTER, "io_uring_enter", this.#enterFd, 0, minComplete, flags | this.#enterFlags, 0, 0);
      return;
    }
    const submitted = rawSyscall(SYS_IO_URING_ENTER, "io_uring_enter", this.#enterFd, this.#unsubmitted, minComplete, flags | this.#enterFlags, 0, 0);
    this.#unsubmitted -= Math.min(submitted, this.#unsubmitted);
  }

  /**
   * Registers `fds` (`IORING_REGISTER_FILES`): an SQE with `IOSQE_FIXED_FILE` then names one by
   * its index, and the kernel takes no reference per IO. Once per ring.
   */
  registerFiles(fds: readonly number[]): void {
    this.#checkOpen();
    const table = new Int32Array(fds); // alive for the call; the kernel copies it
    rawSyscall(SYS_IO_URING_REGISTER, "io_uring_register(FILES)", this.#fd, IORING_REGISTER_FILES, ptr(table), fds.length);
  }

  /**
   * Registers `buffers` (`IORING_REGISTER_BUFFERS`): their pages are pinned once, and fixed
   * opcodes name one by index. Each must stay mapped for the ring's life (the caller owns them);
   * one buffer is at most 1 GiB. Once per ring.
   */
  registerBuffers(buffers: readonly { address: number; length: number }[]): void {
    this.#checkOpen();
    const iovecs = new Float64Array(buffers.length * 2); // struct iovec {base, len}, written as u64s
    const words32 = new Uint32Array(iovecs.buffer);
    buffers.forEach((buffer, i) => {
      words32[i * 4] = buffer.address >>> 0;
      words32[i * 4 + 1] = (buffer.address / TWO_32) >>> 0;
      words32[i * 4 + 2] = buffer.length >>> 0;
      words32[i * 4 + 3] = (buffer.length / TWO_32) >>> 0;
    });
    rawSyscall(SYS_IO_URING_REGISTER, "io_uring_register(BUFFERS)", this.#fd, IORING_REGISTER_BUFFERS, ptr(iovecs), buffers.length);
  }

  /**
   * Whether this kernel's io_uring has `opcode` (`IORING_REGISTER_PROBE`). False where the kernel
   * has no opcode probe (before 5.6: EINVAL), which has none of the opcodes asked about here
   * either (READ, WRITE, the vectored fixed ones: 5.6 and later).
   */
  supports(opcode: number): boolean {
    this.#checkOpen();
    const probe = new Uint8Array(16 + 256 * 8); // struct io_uring_probe, then 256 io_uring_probe_op
    try {
      rawSyscall(SYS_IO_URING_REGISTER, "io_uring_register(PROBE)", this.#fd, IORING_REGISTER_PROBE, ptr(probe), 256);
    } catch (error) {
      if (error instanceof OsError && error.code === "EINVAL") return false;
      throw error;
    }
    const lastOp = probe[0]!;
    if (opcode > lastOp) return false;
    const op = 16 + opcode * 8;
    return probe[op] === opcode && ((probe[op + 2]! | (probe[op + 3]! << 8)) & IO_URING_OP_SUPPORTED) !== 0;
  }

  /** Completions ready to be reaped. */
  get ready(): number {
    return (Atomics.load(this.#cqRing, this.#cqTail) - this.#cqRing[this.#cqHead]!) >>> 0;
  }

  /**
   * Moves up to `max` ready completions into `tags` and `results` (bytes transferred, or
   * `-errno`) and marks them consumed before returning, so a completion is handed out exactly
   * once whatever its receiver does next. Returns how many were moved.
   */
  takeCompletions(tags: Int32Array, results: Int32Array, max: number): number {
    const ring = this.#cqRing;
    const head = ring[this.#cqHead]!;
    const n = Math.min(max, (Atomics.load(ring, this.#cqTail) - head) >>> 0);
    for (let i = 0; i < n; i++) {
      const at = this.#cqes + ((head + i) & this.#cqMask) * CQE_WORDS;
      const result = this.#cqRingSigned[at + 2]!;
      tags[i] = ring[at]!;
      results[i] = result;
      if (result > 0) ioCounters[ring[at + 1] === 1 ? IO_BYTES_WRITTEN : IO_BYTES_READ]! += result;
    }
    Atomics.store(ring, this.#cqHead, (head + n) >>> 0);
    this.#inFlight -= n;
    return n;
  }

  /** Whether io_uring_enter names this ring by its registered index (see the module doc). */
  get registeredRing(): boolean {
    return this.#ringIndex >= 0;
  }

  /**
   * Unregisters the ring from its thread, unmaps the rings and closes the descriptor.
   * Idempotent. In-flight IOs must have completed.
   */
  close(): void {
    try {
      if (this.#ringIndex >= 0) {
        // A registered ring holds a reference to its file until unregistered: without this, closing
        // the descriptor would leave the ring (and any pinned buffers) alive until the thread exits.
        const update = ringUpdate(this.#ringIndex, 0);
        this.#ringIndex = -1;
        this.#enterFd = this.#fd;
        this.#enterFlags = 0;
        rawSyscall(SYS_IO_URING_REGISTER, "io_uring_register(UNREGISTER_RING_FDS)", this.#fd, IORING_UNREGISTER_RING_FDS, ptr(update), 1);
      }
    } finally {
      for (const region of this.#regions) region.release();
      this.#regions.length = 0;
      if (this.#fd >= 0) {
        const fd = this.#fd;
        this.#fd = -1;
        closeFd(fd);
      }
    }
  }

  /** Registers the ring's descriptor with this thread where the kernel can (see the module doc). */
  #registerRing(): void {
    const update = ringUpdate(0xffffffff, this.#fd); // any free index: the kernel writes back the one it took
    try {
      rawSyscall(SYS_IO_URING_REGISTER, "io_uring_register(RING_FDS)", this.#fd, IORING_REGISTER_RING_FDS, ptr(update), 1);
    } catch (error) {
      if (error instanceof OsError) return; // EINVAL before 5.18; EBUSY with every index in use
      throw error;
    }
    this.#ringIndex = update[0]!;
    this.#enterFd = this.#ringIndex;
    this.#enterFlags = IORING_ENTER_REGISTERED_RING;
  }

  [Symbol.dispose](): void {
    this.close();
  }

  #map(length: number, offset: number): NativeRegion {
    const region = NativeRegion.mapFile(this.#fd, length, true, "io_uring ring", offset, true);
    this.#regions.push(region);
    return region;
  }

  #checkOpen(): void {
    if (this.#fd < 0) throw new ReleasedError("io_uring");
  }
}

/** A `struct io_uring_rsrc_update` {u32 offset, u32 resv, u64 data}: alive for the call it is passed to. */
function ringUpdate(offset: number, fd: number): Uint32Array {
  const update = new Uint32Array(4);
  update[0] = offset;
  update[2] = fd;
  return update;
}

function words(region: NativeRegion): Uint32Array {
  const bytes = region.view(0, region.length);
  return new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.length >>> 2);
}
