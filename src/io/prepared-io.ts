/**
 * PreparedIo: a plan made ready to run, once, so that running it (again and again, in `bench`)
 * allocates nothing and looks nothing up. It holds everything the executor hands the kernel:
 *
 *   iovecs     the plan's iovecs with host addresses (guest pages, or the bounce memory), then
 *              one iovec per head/tail block a read-modify-write reads first
 *   transfers  the vectored calls in order: a write's head/tail reads, then the plan's calls
 *   copies     pairs of views (guest bytes, bounce bytes) that a bounced write copies in before
 *              its first write call, and a bounced read copies out after its last read call
 *   lock       the disk range a write holds from its first read to its last write (in this
 *              process with `locks`; a read-modify-write also in the disk file, against
 *              other processes)
 *   refusal    under a simulated disk (`--align`), the EINVAL that disk would answer, found
 *              here so that the IO fails before any call, as the stricter disk would
 *
 * Everything bad input can get wrong is checked while preparing, before any system call: that
 * the plan is the planner's own, that guest and disk are different files, the disk range
 * against the disk's size, every guest iovec against guest memory (a bad GPN never reaches the
 * kernel), the bounce memory against the plan. A read's guest pages are provided by the
 * filesystem here too (`GuestMemory.provide`), so a full one is ENOSPC, never a SIGBUS.
 *
 * A prepared IO runs at its plan's disk offset, or shifted by a multiple of the plan's block
 * size (`bench` moves one prepared IO across the disk: the shape of a plan depends only on
 * where the IO sits within its block).
 *
 * Lifetimes: the prepared IO owns its iovec array and, unless given `bounce` memory, its bounce
 * buffer, until `release`, which waits for a run in flight to settle. It pins the guest memory
 * (`GuestMemory.pin`), so releasing that memory while this IO exists only takes effect when the
 * IO is released: a read in flight can never land in another mapping at the same address. Bounce
 * memory handed in and the disk are the caller's and must outlive every run.
 */
import { simulatedDiskProblem, type DiskAlignment, type KernelChecks } from "../base/alignment-rules";
import { PAGE_SIZE } from "../base/constants";
import { BounceBenchError, InvalidInputError, ReleasedError } from "../base/errors";
import { BounceBuffer } from "../bounce/bounce-buffer";
import { COPY_PIECE, placeCopies, slowAt, type CopyMethod, type PlannedCopy } from "../bounce/copy-placement";
import type { BounceBufferTracker } from "../bounce/bounce-tracker";
import type { Disk } from "../disk/disk";
import type { GuestMemory } from "../memory/guest-memory";
import { PagedRange } from "../memory/paged-range";
import { EINVAL, IovecArray, OsError, RWF_DSYNC } from "../native";
import { vectoredFixedBuffers, type RegisteredMemory } from "./engines";
import { isPlannerPlan, type BouncePart, type Plan } from "./planner";
import type { RangeLocks } from "./range-locks";

/** Bounce memory handed to a prepared IO: `bytes` are the memory at `address`. */
export interface BounceArea {
  address: number;
  bytes: Uint8Array;
}

export interface RunOptions {
  /** Writes are durable on completion (`pwritev2` with `RWF_DSYNC`). */
  fua?: boolean;
  /** Disk ranges held by writes in flight (for concurrent executions). */
  locks?: RangeLocks;
  /**
   * Called when the IO's data has reached the disk, while a write still holds its range: the
   * order of these calls is the order in which overlapping writes took effect.
   */
  onDone?: () => void;
  /** Count the bounce pages against this budget while the IO runs (taken before the range lock, so waiting never deadlocks). */
  budget?: { tracker: BounceBufferTracker; thread: number };
  /** How guest bytes are copied through the bounce buffer (`copy-placement.ts`): `placed` by default. */
  copy?: CopyMethod;
  /**
   * Order writes against other processes' (open file description locks on the disk file): a
   * read-modify-write locks its blocks exclusively, any other write its range shared, so that
   * no write of another process lands between a read-modify-write's read and its write. On
   * (true) by default; off only for a disk no other process can reach (a bench's scratch disk),
   * or when a benchmark opts out and says so.
   */
  fileLocks?: boolean;
  /**
   * The IO runs on an io_uring engine with fixed buffers (`UringOptions.fixedBuffers`) that has
   * this memory registered: its guest memory and its bounce memory (`all`), or its bounce memory
   * alone. A call of registered memory of one kind goes fixed (one iovec, or several where the
   * kernel has READV_FIXED), and a simulated disk judges it by the kernel's checks of fixed
   * buffers on the real disk.
   */
  fixedBuffers?: RegisteredMemory;
}

export interface PrepareOptions extends RunOptions {
  /**
   * Bounce memory to use (at least `plan.bounceBytes`, aligned for the disk; a page more lets
   * the copies be placed, see `copy`); by default the IO allocates its own.
   */
  bounce?: BounceArea;
}

export class PreparedIo implements Disposable {
  readonly write: boolean;
  /** The plan's disk offset (where a run with shift 0 goes). */
  readonly at: number;
  readonly fd: number;
  /** The disk's path, for messages. */
  readonly diskPath: string;
  readonly rwFlags: number;
  readonly iovecs: IovecArray;
  /** The iovecs as prepared (a short transfer trims them in place; `restoreIovecs` puts them back). */
  readonly #bases: Float64Array;
  readonly #lengths: Float64Array;
  /** Set by the executor when a short transfer trimmed the iovecs. */
  trimmed = false;
  /** Transfers in order: direction, first iovec, iovec count, disk offset (unshifted), bytes. */
  readonly transferCount: number;
  readonly transferWrites: Uint8Array;
  readonly transferFirst: Int32Array;
  readonly transferIovecs: Int32Array;
  readonly transferOffset: Float64Array;
  readonly transferBytes: Float64Array;
  /** Host address of each transfer's first iovec (the array never moves: it is never grown). */
  readonly transferAddress: Float64Array;
  /** Transfers before the guest bytes are copied in (a write's head/tail reads). */
  readonly readsBeforeCopy: number;
  /** The transfer before which a bounced write copies the guest bytes in; -1 when nothing is. */
  readonly copyInAt: number;
  readonly guestViews: Uint8Array[];
  readonly bounceViews: Uint8Array[];
  /** Where the bounce layout starts in the bounce memory (`copy-placement.ts`: away from slow copy distances). */
  readonly bounceShift: number;
  /** Guest bytes per run copied whole at a distance where `memcpy` is slow (`--copy memcpy` shows them). */
  readonly slowCopyBytes: number;
  /** Guest bytes copied per run, and disk bytes moved per run (padding of rmw and widened reads included). */
  readonly copiedBytes: number;
  readonly diskBytes: number;
  readonly bouncePages: number;
  /** The range a write locks, or `lockEnd` 0 when it takes no lock. */
  readonly lockStart: number;
  readonly lockEnd: number;
  /**
   * Bytes a write locks in the disk file against other processes (an open file description lock
   * on `[lockStart, lockStart+fileLockLen)`): exclusive for a read-modify-write, shared
   * (`fileLockShared`) for any other write; 0 for a read, or with `fileLocks: false`.
   */
  readonly fileLockLen: number;
  readonly fileLockShared: boolean;
  readonly refusal: OsError | null;
  readonly locks: RangeLocks | undefined;
  readonly budget: { tracker: BounceBufferTracker; thread: number } | undefined;
  readonly onDone: (() => void) | undefined;
  /** Settling needs no work: no copy, no lock, no pages, no callback. */
  readonly plain: boolean;
  /** Starting needs no work: no pages to take, no range to lock, no refusal. */
  readonly ungated: boolean;
  /**
   * Starting only takes bounce pages from the budget, a request the budget can serve (so taking
   * them cannot throw): no range to lock, no refusal.
   */
  readonly gatedByBudgetOnly: boolean;
  /** Shifts must be multiples of this. */
  readonly shiftUnit: number;
  /** Largest shift that keeps the IO inside the disk. */
  readonly maxShift: number;
  readonly #ownBounce: BounceBuffer | null;
  /** The guest memory this IO points into, pinned from preparation to release. */
  readonly #memory: GuestMemory;
  /** Runs in flight; a release asked for meanwhile waits for the last one. */
  #runs = 0;
  #releaseAsked = false;
  #released = false;

  private constructor(readonly plan: Plan, memory: GuestMemory, disk: Disk, options: PrepareOptions) {
    if (!isPlannerPlan(plan)) throw new InvalidInputError("executePlan: not a plan made by plan() (plans are frozen; plan again rather than change one)");
    if (memory.fileId === disk.fileId) {
      throw new InvalidInputError(`guest image ${memory.path} and disk ${disk.path} are the same file: an IO between them would overwrite what it reads`);
    }
    checkDiskRange(plan, disk);
    for (const segment of plan.segments) memory.checkPages(new PagedRange(segment.offset, segment.len, segment.gpns), plan.op);
    // A read stores into guest pages (the device, or the copy out): the filesystem must hold them
    // first, or a full one answers the store with SIGBUS.
    if (plan.op === "read") for (const segment of plan.segments) provideSegment(memory, segment);
    // From here on the guest mapping stays, whatever its owner does, until this IO is released.
    memory.pin();
    this.#memory = memory;
    this.write = plan.op === "write";
    this.at = plan.at;
    this.fd = disk.fd;
    this.diskPath = disk.path;
    this.rwFlags = this.write && options.fua ? RWF_DSYNC : 0;
    this.locks = options.locks;
    this.budget = options.budget;
    this.onDone = options.onDone;
    this.shiftUnit = plan.blockSize;
    this.maxShift = disk.size - plan.diskEnd;
    const bounceParts = plan.parts.filter((part): part is BouncePart => part.kind === "bounce");
    this.bouncePages = plan.bouncePages;

    // The copies between guest memory and the bounce layout, then where the layout goes in the
    // bounce memory so that none of them is slow (or which must be split because none can be).
    const copies = bounceParts.flatMap((part) => plannedCopies(part, plan, memory));
    const method = options.copy ?? "placed";
    const memAlign = Math.max(1, disk.alignment.memAlign);
    let placement = placeCopies(copies, this.write, memAlign, method);
    let bounce: BounceArea | null = null;
    this.#ownBounce = null;
    if (plan.bounceBytes > 0) {
      if (options.bounce === undefined) {
        this.#ownBounce = new BounceBuffer(plan.bounceBytes + placement.shift, Math.max(PAGE_SIZE, memAlign));
        bounce = { address: this.#ownBounce.address(), bytes: this.#ownBounce.bytes };
      } else {
        bounce = options.bounce;
        const alignment = Math.max(PAGE_SIZE, memAlign);
        if (bounce.bytes.length < plan.bounceBytes || bounce.address % alignment !== 0) {
          throw new BounceBenchError(
            "BOUNCE_TOO_SMALL",
            `bounce memory of ${bounce.bytes.length} bytes at ${bounce.address % alignment} past a ${alignment}-byte boundary cannot hold this plan's ${plan.bounceBytes} bytes aligned for the disk`,
          );
        }
        // No room to move the layout: the copies stay where they are, split where slow.
        if (bounce.bytes.length < plan.bounceBytes + placement.shift) placement = { shift: 0, split: copies.map((copy) => method === "placed" && slowAt(0, copy, this.write)) };
      }
    }
    this.bounceShift = placement.shift;
    this.slowCopyBytes = copies.reduce((sum, copy, i) => sum + (!placement.split[i] && slowAt(placement.shift, copy, this.write) ? copy.len : 0), 0);
    const bounceAt = (bounce?.address ?? 0) + placement.shift;

    // Head and tail blocks a read-modify-write reads before writing its part whole.
    const padding: { diskOffset: number; bufferOffset: number }[] = [];
    if (this.write) for (const part of bounceParts) padding.push(...paddingBlocks(part, plan));

    try {
      this.iovecs = new IovecArray(plan.iovecs.length + padding.length);
      for (const iovec of plan.iovecs) {
        if (iovec.kind === "guest") this.iovecs.push(memory.hostAddressOfRange(iovec.gpa, iovec.len, "IO"), iovec.len);
        else this.iovecs.push(bounceAt + iovec.bufferOffset, iovec.len);
      }
      for (const block of padding) this.iovecs.push(bounceAt + block.bufferOffset, plan.blockSize);
      const count = this.iovecs.count;
      this.#bases = new Float64Array(count);
      this.#lengths = new Float64Array(count);
      for (let i = 0; i < count; i++) {
        this.#bases[i] = this.iovecs.base(i);
        this.#lengths[i] = this.iovecs.length(i);
      }

      this.readsBeforeCopy = padding.length;
      this.transferCount = padding.length + plan.calls.length;
      this.transferWrites = new Uint8Array(this.transferCount);
      this.transferFirst = new Int32Array(this.transferCount);
      this.transferIovecs = new Int32Array(this.transferCount);
      this.transferOffset = new Float64Array(this.transferCount);
      this.transferBytes = new Float64Array(this.transferCount);
      this.transferAddress = new Float64Array(this.transferCount);
      padding.forEach((block, i) => this.#setTransfer(i, false, plan.iovecs.length + i, 1, block.diskOffset, plan.blockSize));
      plan.calls.forEach((call, i) => this.#setTransfer(padding.length + i, this.write, call.firstIovec, call.iovecs, call.diskOffset, call.bytes));
      this.diskBytes = this.transferBytes.reduce((sum, bytes) => sum + bytes, 0);

      this.guestViews = [];
      this.bounceViews = [];
      copies.forEach((copy, i) => {
        // A copy that stays slow wherever it goes is made in pieces below `rep movsb`'s threshold.
        const piece = placement.split[i] ? COPY_PIECE : copy.len;
        for (let done = 0; done < copy.len; done += piece) {
          const n = Math.min(piece, copy.len - done);
          const at = placement.shift + copy.bounceOffset + done;
          this.guestViews.push(copy.guest.subarray(done, done + n));
          this.bounceViews.push(bounce!.bytes.subarray(at, at + n));
        }
      });
      this.copiedBytes = plan.copiedBytes;

      this.lockStart = plan.diskStart;
      this.lockEnd = this.write && options.locks !== undefined ? plan.diskEnd : 0;
      this.fileLockLen = this.write && options.fileLocks !== false ? plan.diskEnd - plan.diskStart : 0;
      this.fileLockShared = padding.length === 0;
      this.copyInAt = this.write && this.guestViews.length > 0 ? this.readsBeforeCopy : -1;
      this.plain = this.guestViews.length === 0 && this.lockEnd === 0 && this.fileLockLen === 0 && !(this.bouncePages > 0 && this.budget !== undefined) && this.onDone === undefined;
      this.refusal = disk.direct && disk.alignment.source === "override" ? simulatedRefusal(plan, this.iovecs, disk, options.fixedBuffers ?? null) : null;
      this.ungated = this.lockEnd === 0 && this.fileLockLen === 0 && !(this.bouncePages > 0 && this.budget !== undefined) && this.refusal === null;
      this.gatedByBudgetOnly =
        this.lockEnd === 0 && this.fileLockLen === 0 && this.refusal === null && this.bouncePages > 0 && this.budget !== undefined && this.budget.tracker.fits(this.bouncePages, this.budget.thread);
    } catch (error) {
      this.release();
      throw error;
    }
  }

  /** Prepares `plan` between `memory` and `disk`; release it (or `using`) when done. */
  static prepare(plan: Plan, memory: GuestMemory, disk: Disk, options: PrepareOptions = {}): PreparedIo {
    return new PreparedIo(plan, memory, disk, options);
  }

  /** Puts back iovecs a short transfer trimmed. */
  restoreIovecs(): void {
    for (let i = 0; i < this.#bases.length; i++) this.iovecs.set(i, this.#bases[i]!, this.#lengths[i]!);
    this.trimmed = false;
  }

  /** Checks that the IO may run shifted by `shift` bytes on the disk. */
  checkShift(shift: number): void {
    if (shift % this.shiftUnit !== 0 || shift < -this.plan.diskStart || shift > this.maxShift) {
      throw new InvalidInputError(
        `an IO planned at ${this.plan.at} cannot run ${shift} bytes further on: shifts are multiples of the ${this.shiftUnit}-byte block within the disk`,
      );
    }
  }

  /** @internal the executor, as a run starts: a released prepared IO does not run again. */
  beginRun(): void {
    if (this.#released || this.#releaseAsked) throw new ReleasedError("prepared IO");
    this.#runs++;
  }

  /** @internal the executor, as a run settles: performs a release asked for meanwhile. */
  endRun(): void {
    this.#runs--;
    if (this.#runs === 0 && this.#releaseAsked) this.release();
  }

  /**
   * Frees the iovecs and the bounce buffer and unpins the guest memory; while a run is in flight
   * (the kernel may be using all three), only once it settles. Idempotent.
   */
  release(): void {
    if (this.#released) return;
    if (this.#runs > 0) {
      this.#releaseAsked = true;
      return;
    }
    this.#released = true;
    this.iovecs?.release();
    this.#ownBounce?.release();
    this.#memory.unpin();
  }

  [Symbol.dispose](): void {
    this.release();
  }

  #setTransfer(i: number, write: boolean, first: number, count: number, diskOffset: number, bytes: number): void {
    this.transferWrites[i] = write ? 1 : 0;
    this.transferFirst[i] = first;
    this.transferIovecs[i] = count;
    this.transferOffset[i] = diskOffset;
    this.transferBytes[i] = bytes;
    this.transferAddress[i] = this.iovecs.addressOf(first);
  }
}

/** A copy of `plannedCopies`: the guest bytes as a view, where they are, and where they go in the bounce layout. */
interface GuestCopy extends PlannedCopy {
  guest: Uint8Array;
}

/** The copies that move stream bytes `[part.stream, +copyLen)` between guest memory and the bounce layout, one per guest run (and 1 GiB view). */
function plannedCopies(part: BouncePart, plan: Plan, memory: GuestMemory): GuestCopy[] {
  const copies: GuestCopy[] = [];
  const bounceStart = part.bufferOffset + (plan.at + part.stream - part.diskStart);
  let segmentStart = 0;
  for (const segment of plan.segments) {
    const from = Math.max(part.stream, segmentStart);
    const to = Math.min(part.stream + part.copyLen, segmentStart + segment.len);
    if (from < to) {
      const range = new PagedRange(segment.offset, segment.len, segment.gpns);
      range.forEachRun(from - segmentStart, to - from, (gpn, pageOffset, runLen, done) => {
        let at = bounceStart + (from - part.stream) + done;
        let gpa = gpn * PAGE_SIZE + pageOffset;
        for (const view of memory.views(gpa, runLen)) {
          copies.push({ guest: view, guestAddress: memory.hostAddressOfRange(gpa, view.length, "copy") as number, bounceOffset: at, len: view.length });
          at += view.length;
          gpa += view.length;
        }
      });
    }
    segmentStart += segment.len;
  }
  return copies;
}

/** The head and tail blocks of a widened write part that hold disk bytes the write keeps. */
function paddingBlocks(part: BouncePart, plan: Plan): { diskOffset: number; bufferOffset: number }[] {
  const block = plan.blockSize;
  const copyStart = plan.at + part.stream;
  const copyEnd = copyStart + part.copyLen;
  const partEnd = part.diskStart + part.len;
  const blocks: number[] = [];
  if (copyStart % block !== 0) blocks.push(part.diskStart);
  if (copyEnd % block !== 0 && partEnd - block !== blocks[0]) blocks.push(partEnd - block);
  return blocks.map((diskOffset) => ({ diskOffset, bufferOffset: part.bufferOffset + (diskOffset - part.diskStart) }));
}

/** Refuses, before any IO, a disk range past the disk's end. */
function checkDiskRange(plan: Plan, disk: Disk): void {
  const end = plan.at + plan.len;
  if (end > disk.size) {
    throw new InvalidInputError(
      `${plan.op} of ${plan.len} bytes at ${plan.at} ends at ${end}, past the end of disk ${disk.path} (${disk.size} bytes)`,
    );
  }
  if (plan.diskEnd > disk.size) {
    throw new InvalidInputError(
      `${plan.op} at ${plan.at} must be widened to ${plan.diskStart}..${plan.diskEnd}, past the end of disk ${disk.path} (${disk.size} bytes, not a multiple of the ${plan.blockSize}-byte block)`,
    );
  }
}

/**
 * Under `--align`, the kernel would accept what the real (laxer) disk accepts; the simulated
 * disk is stricter. Applies its rules to every call as the kernel checks them on the real disk
 * (`checks`, measured there): each iovec's address a multiple of the memory alignment and its
 * length of the block size (or of the memory alignment, where the kernel is that lax), and the
 * call's offset and length of the block size. Returns the EINVAL that disk would answer, or null.
 */
function simulatedRefusal(plan: Plan, iovecs: IovecArray, disk: Disk, registered: RegisteredMemory | null): OsError | null {
  const alignment = disk.alignment;
  for (const call of plan.calls) {
    const callIovecs = { count: call.iovecs, base: (i: number) => iovecs.base(i), length: (i: number) => iovecs.length(i) };
    const fixed = registered !== null && goesFixed(plan, call.firstIovec, call.iovecs, registered);
    const checks = disk.kernelChecksFor(fixed ? "fixed" : "vectored");
    const problem = simulatedDiskProblem(call.diskOffset, call.bytes, callIovecs, call.firstIovec, alignment, plan.op, checks);
    if (problem !== null) {
      return new OsError(
        EINVAL,
        fixed ? `io_uring ${plan.op === "read" ? "READ" : "WRITE"}${call.iovecs > 1 ? "V" : ""}_FIXED` : plan.op === "read" ? "preadv" : "pwritev",
        `simulated disk (--align): ${alignment.offsetAlign}-byte blocks, memory alignment ${alignment.memAlign}`,
        problem,
      );
    }
  }
  return null;
}

/**
 * Whether a call of iovecs `first .. first+count-1` goes with a registered buffer when
 * `registered` memory is (`RunOptions.fixedBuffers`): all guest pages (registered with `all`) or
 * all bounce memory, and one iovec or a kernel with READV_FIXED. The engine decides the same by
 * address (`Engine.submit`).
 */
function goesFixed(plan: Plan, first: number, count: number, registered: RegisteredMemory): boolean {
  const kind = plan.iovecs[first]!.kind;
  if (kind === "guest" && registered !== "all") return false;
  for (let i = first + 1; i < first + count; i++) if (plan.iovecs[i]!.kind !== kind) return false;
  return count === 1 || vectoredFixedBuffers();
}

/** Provides the guest pages a segment's bytes cover (`GuestMemory.provide`), run by run. */
function provideSegment(memory: GuestMemory, segment: { offset: number; len: number; gpns: number[] }): void {
  new PagedRange(segment.offset, segment.len, segment.gpns).forEachRun(0, segment.len, (gpn, pageOffset, runLen) => {
    memory.provide(gpn * PAGE_SIZE + pageOffset, runLen);
  });
}
