/**
 * Carrying out a plan: real vectored IO between guest memory and a disk, through a bounce
 * buffer where the plan says so.
 *
 * Order of a write:  check everything -> (rmw) read head/tail blocks -> copy guest bytes into
 *                    the bounce buffer -> pwritev each call.
 * Order of a read:   check everything -> preadv each call -> copy the bounce buffer out to the
 *                    guest.
 *
 * Everything that bad input can get wrong is checked before the first system call: the disk
 * range against the disk's size, every guest iovec against guest memory (so an out-of-range GPN
 * never reaches the kernel), and, under an alignment override, the simulated disk's rules (a
 * violation is a simulated `EINVAL`, as the stricter disk would answer). Short transfers
 * continue where they stopped; `EINTR` is retried by the native layer.
 *
 * How the calls reach the kernel is the `transport`'s business: `syncTransport` (the default)
 * calls preadv/pwritev on this thread; `UringTransport` (transport.ts) shares one io_uring
 * between many executions in flight at once. With `locks`, a write holds its disk range (widened
 * to whole blocks) from its first read-modify-write read to its last write, so two writes in
 * flight never interleave inside a block: the result equals running them one after the other in
 * completion order.
 *
 * Lifetimes: the iovec array and the bounce buffer are owned by one execution and released when
 * it settles; guest memory and the disk are the caller's and must outlive it.
 */
import { blockSize, type DiskAlignment } from "../base/alignment-rules";
import { BounceBuffer } from "../bounce/bounce-buffer";
import type { BounceBufferTracker } from "../bounce/bounce-tracker";
import { PAGE_SIZE } from "../base/constants";
import { BounceBenchError, InvalidInputError } from "../base/errors";
import type { Disk } from "../disk/disk";
import type { GuestMemory } from "../memory/guest-memory";
import { EINVAL, IovecArray, OsError, preadv, pwritev, RWF_DSYNC } from "../native";
import type { PagedRange } from "../memory/paged-range";
import type { BouncePart, Plan } from "./planner";
import { RequestBuffers } from "../memory/request-buffers";

export interface ExecuteOptions {
  /** Writes are durable on completion (`pwritev2` with `RWF_DSYNC`). */
  fua?: boolean;
  /** How calls reach the kernel; `syncTransport` by default. */
  transport?: Transport;
  /** Disk ranges held by writes in flight (for concurrent executions). */
  locks?: RangeLockTable;
  /**
   * Called when the IO's data has reached the disk, while a write still holds its range: the
   * order of these calls is the order in which overlapping writes took effect.
   */
  onDone?: () => void;
  /** Take the bounce buffer from this budget (before the range lock, so waiting never deadlocks). */
  budget?: { tracker: BounceBufferTracker; thread: number };
}

/** Disk ranges that writes in flight hold (`RangeLocks` in one thread, `SharedRangeLocks` across Workers). */
export interface RangeLockTable {
  /** Resolves, with the function that releases it, once no held range overlaps `[start, end)`. */
  acquire(start: number, end: number): Promise<() => void>;
}

/**
 * One vectored transfer of iovecs `[first, first+count)` of `iovecs` at disk `offset`, continued
 * after short transfers until every byte has moved. Resolves to the system calls made.
 */
export interface Transport {
  transfer(op: "read" | "write", disk: Disk, iovecs: IovecArray, first: number, count: number, offset: number, flags: number): Promise<number>;
}

/** Transfers on the calling thread with preadv/pwritev. */
export const syncTransport: Transport = {
  transfer: (op, disk, iovecs, first, count, offset, flags) =>
    Promise.resolve(transferFully(op, disk, iovecs, first, count, offset, flags)),
};

export interface IoResult {
  bytes: number;
  elapsedNs: number;
  /** Vectored calls made (short transfers count again), head/tail reads of a rmw included. */
  calls: number;
}

/** Executes `plan` (made for `segments`) between `memory` and `disk`. */
export async function executePlan(
  plan: Plan,
  segments: readonly PagedRange[],
  memory: GuestMemory,
  disk: Disk,
  options: ExecuteOptions = {},
): Promise<IoResult> {
  checkDiskRange(plan, disk);
  for (const segment of segments) memory.checkPages(segment, plan.op);
  const started = Bun.nanoseconds();
  const buffers = segments.map((range) => new RequestBuffers(memory, range, plan.op === "read"));
  using iovecs = new IovecArray(plan.iovecs.length);
  const bounceAlign = Math.max(PAGE_SIZE, disk.alignment.memAlign);
  using bounce =
    plan.bounceBytes === 0
      ? null
      : options.budget === undefined
        ? new BounceBuffer(plan.bounceBytes, bounceAlign)
        : await options.budget.tracker.acquire(plan.bounceBytes, options.budget.thread, bounceAlign);
  for (const iovec of plan.iovecs) {
    if (iovec.kind === "guest") iovecs.push(memory.hostAddressOfRange(iovec.gpa, iovec.len, "IO"), iovec.len);
    else iovecs.push((bounce!.address() as number) + iovec.bufferOffset, iovec.len);
  }
  if (disk.direct && disk.alignment.source === "override") checkSimulatedDisk(plan, iovecs, disk.alignment);

  const transport = options.transport ?? syncTransport;
  const bounceParts = plan.parts.filter((part): part is BouncePart => part.kind === "bounce");
  const release = plan.op === "write" && options.locks !== undefined ? await options.locks.acquire(plan.diskStart, plan.diskEnd) : null;
  let calls = 0;
  try {
    if (plan.op === "write") {
      for (const part of bounceParts) {
        calls += await readPadding(part, plan, bounce!, disk, transport);
        copyStream(buffers, part.stream, part.copyLen, bounce!.bytes, copyOffset(part, plan), "toBounce");
      }
    }
    const flags = plan.op === "write" && options.fua ? RWF_DSYNC : 0;
    for (const call of plan.calls) {
      calls += await transport.transfer(plan.op, disk, iovecs, call.firstIovec, call.iovecs, call.diskOffset, flags);
    }
    options.onDone?.();
  } finally {
    release?.();
  }
  if (plan.op === "read") {
    for (const part of bounceParts) copyStream(buffers, part.stream, part.copyLen, bounce!.bytes, copyOffset(part, plan), "toGuest");
  }
  return { bytes: plan.len, elapsedNs: Bun.nanoseconds() - started, calls };
}

/**
 * Disk ranges held by writes in flight. `acquire(start, end)` resolves, with the function that
 * releases it, once no held range overlaps `[start, end)`. Ranges are exclusive: this is for
 * writes, whose read-modify-write must not interleave with another write to the same blocks.
 */
export class RangeLocks implements RangeLockTable {
  readonly #held: { start: number; end: number; released: Promise<void> }[] = [];

  async acquire(start: number, end: number): Promise<() => void> {
    for (;;) {
      const overlapping = this.#held.filter((held) => held.start < end && start < held.end);
      if (overlapping.length === 0) break;
      await Promise.all(overlapping.map((held) => held.released));
    }
    let release!: () => void;
    const entry = { start, end, released: new Promise<void>((resolve) => (release = resolve)) };
    this.#held.push(entry);
    return () => {
      const at = this.#held.indexOf(entry);
      if (at >= 0) this.#held.splice(at, 1);
      release();
    };
  }

  /** Ranges held right now. */
  get size(): number {
    return this.#held.length;
  }
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
 * disk is stricter. Applies its rules to every call: each iovec's address a multiple of the
 * memory alignment and its length of the block size, and the call's offset and length of the
 * block size.
 */
function checkSimulatedDisk(plan: Plan, iovecs: IovecArray, alignment: DiskAlignment): void {
  const block = blockSize(alignment, plan.op);
  for (const call of plan.calls) {
    let problem: string | null = null;
    if (call.diskOffset % block !== 0 || call.bytes % block !== 0) problem = `disk range ${call.diskOffset}+${call.bytes}`;
    for (let i = call.firstIovec; problem === null && i < call.firstIovec + call.iovecs; i++) {
      if (iovecs.base(i) % alignment.memAlign !== 0 || iovecs.length(i) % block !== 0) {
        problem = `iovec ${i - call.firstIovec} (${iovecs.length(i)} bytes at memory offset ${iovecs.base(i) % 4096} in its page)`;
      }
    }
    if (problem !== null) {
      throw new OsError(
        EINVAL,
        plan.op === "read" ? "preadv" : "pwritev",
        `simulated ${alignment.offsetAlign}-byte-aligned disk (--align)`,
        `${problem} is not aligned for it`,
      );
    }
  }
}

/** Where a bounce part's stream bytes sit in the bounce buffer. */
function copyOffset(part: BouncePart, plan: Plan): number {
  return part.bufferOffset + (plan.at + part.stream - part.diskStart);
}

/**
 * Read-modify-write: reads the partial head and tail blocks of a widened write part from the
 * disk into the bounce buffer. Returns the calls made.
 */
async function readPadding(part: BouncePart, plan: Plan, bounce: BounceBuffer, disk: Disk, transport: Transport): Promise<number> {
  const block = plan.blockSize;
  const copyStart = plan.at + part.stream;
  const copyEnd = copyStart + part.copyLen;
  const partEnd = part.diskStart + part.len;
  const blocks: number[] = [];
  if (copyStart % block !== 0) blocks.push(part.diskStart);
  if (copyEnd % block !== 0 && partEnd - block !== blocks[0]) blocks.push(partEnd - block);
  if (blocks.length === 0) return 0;
  using iovec = new IovecArray(1);
  let calls = 0;
  for (const diskOffset of blocks) {
    iovec.clear();
    iovec.push((bounce.address() as number) + part.bufferOffset + (diskOffset - part.diskStart), block);
    calls += await transport.transfer("read", disk, iovec, 0, 1, diskOffset, 0);
  }
  return calls;
}

/** Copies stream bytes `[stream, stream+len)` of the segments to or from `bytes[at..]`. */
function copyStream(
  buffers: readonly RequestBuffers[],
  stream: number,
  len: number,
  bytes: Uint8Array,
  at: number,
  direction: "toBounce" | "toGuest",
): void {
  let segmentStart = 0;
  for (const buffer of buffers) {
    const from = Math.max(stream, segmentStart);
    const to = Math.min(stream + len, segmentStart + buffer.len);
    if (from < to) {
      const piece = buffer.subrange(from - segmentStart, to - from);
      const target = bytes.subarray(at + (from - stream), at + (to - stream));
      if (direction === "toBounce") piece.reader().read(target);
      else piece.writer().write(target);
    }
    segmentStart += buffer.len;
  }
}

/** `Transport.transfer` on this thread: preadv/pwritev, continued after short transfers. */
function transferFully(
  op: "read" | "write",
  disk: Disk,
  iovecs: IovecArray,
  first: number,
  count: number,
  offset: number,
  flags: number,
): number {
  const end = first + count;
  let index = first;
  let position = offset;
  let calls = 0;
  while (index < end) {
    const address = iovecs.addressOf(index);
    const n = op === "read" ? preadv(disk.fd, address, end - index, position) : pwritev(disk.fd, address, end - index, position, flags);
    calls++;
    if (n === 0) throw shortTransfer(op, disk, position);
    position += n;
    index = advance(iovecs, index, end, n);
  }
  return calls;
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
export function shortTransfer(op: "read" | "write", disk: Disk, position: number): BounceBenchError {
  return new BounceBenchError(
    op === "read" ? "SHORT_READ" : "SHORT_WRITE",
    "io",
    `${op} at ${position} of disk ${disk.path}: the disk ended (0 bytes transferred); was it truncated?`,
  );
}
