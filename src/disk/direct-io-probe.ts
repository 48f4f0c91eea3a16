/**
 * The empirical probe: what the kernel does with direct IO on a disk, found by doing it.
 *
 * For each direction it finds, on data that is really there (reading a hole involves no device
 * IO, so a hole accepts anything):
 *
 *   offsetAlign  the smallest IO length the kernel takes (1, 512, 1024, 2048, 4096: QEMU's list),
 *                at a 4096-aligned file offset; only EINVAL counts as a refusal
 *   memAlign     the smallest memory offset it takes, with two iovecs in two pages: the block
 *                layer may let a range inside one page through unchecked (`onePageAnyAddress`),
 *                which would report an alignment of 1
 *   pageCache    whether direct IO went through the page cache after all: `always` (the file
 *                lives in memory, tmpfs), `misaligned` (the filesystem takes IO the device
 *                cannot do and buffers it, as btrfs does), `never`, or `unknown`
 *
 * Reads go to the disk's own data. Writes never go to the user's file or device: they go to an
 * unnamed scratch file (`O_TMPFILE`) in the file's directory, on the same filesystem, written
 * with data first; a block device's writes are not probed (the block layer checks writes as it
 * checks reads). The file's own per-file attributes (shared extents, for one) may make its
 * write rule stricter than the scratch file's; the result names what it measured.
 *
 * Per submission method (`SubmissionMethod`): the kernel checks the same iovecs differently
 * depending on how they reach it. `vectored` is preadv/pwritev (and io_uring's READV/WRITEV: the
 * same user iovecs); `fixed` is io_uring's registered buffers (READ_FIXED, READV_FIXED, ...),
 * which reach the block layer as pages already pinned (bio vectors), not user iovecs. Alignment
 * and the kernel's checks are measured for each, with the probe buffer registered for `fixed`.
 */
import { dirname } from "node:path";
import { blockSize, DOCUMENTED_CHECKS, type DiskAlignment, type KernelChecks } from "../base/alignment-rules";
import { PAGE_SIZE } from "../base/constants";
import {
  blockDeviceSize,
  cachedPages,
  closeFd,
  dropCachedPages,
  EINTR,
  EINVAL,
  fileFlags,
  fsyncFd,
  IORING_OP_READ_FIXED,
  IORING_OP_READV_FIXED,
  IORING_OP_WRITE_FIXED,
  IORING_OP_WRITEV_FIXED,
  IoUring,
  IovecArray,
  NativeRegion,
  nextData,
  O_DIRECT,
  O_RDWR,
  openTemporaryFile,
  OsError,
  preadvOnce,
  pwritevOnce,
  setFileFlags,
  statx,
  type FileStatus,
} from "../native";
import { PageCacheTrace } from "../host/page-cache-trace";

/** Lengths and memory offsets tried, smallest first (QEMU's list). */
const PROBE_ALIGNMENTS = [1, 512, 1024, 2048, 4096];
/** The largest of them: what a probe that cannot tell assumes. */
export const PROBE_MAX = PROBE_ALIGNMENTS[PROBE_ALIGNMENTS.length - 1]!;
/** Bytes of data a probe needs from its offset: two pages, for the two-iovec memory probe. */
export const PROBE_SPAN = 2 * PROBE_MAX;
/** Every block device transfers whole 512-byte sectors; a shorter direct IO taken was not sent to one. */
const SECTOR = 512;

export type PageCacheUse = "never" | "misaligned" | "always" | "unknown";

/** How iovecs reach the kernel (see the module doc). */
export type SubmissionMethod = "vectored" | "fixed";
export const SUBMISSION_METHODS: readonly SubmissionMethod[] = ["vectored", "fixed"];
/** What each method is, for people. */
export const SUBMISSION_METHOD_TEXT: Record<SubmissionMethod, string> = {
  vectored: "preadv/pwritev and io_uring READV/WRITEV (user iovecs)",
  fixed: "io_uring registered buffers (READ_FIXED, READV_FIXED, WRITE_FIXED, WRITEV_FIXED)",
};

export interface DirectionRules {
  /** The smallest IO length (and file offset granularity) the kernel took. */
  offsetAlign: number;
  /** The smallest memory offset it took (two iovecs in two pages). */
  memAlign: number;
  pageCache: PageCacheUse;
  /** How `pageCache` was found: measured with cachestat(2), or inferred, and from what. */
  pageCacheEvidence: string;
  /** What the IO went to ("the file's data at 0", "an unnamed scratch file in /srv"). */
  subject: string;
}

/** A direction the probe did not measure, and why. */
export interface DirectionNotProbed {
  unavailable: string;
}

export interface DirectIoProbe {
  read: DirectionRules | DirectionNotProbed;
  write: DirectionRules | DirectionNotProbed;
}

/** Whether `side` was measured. */
export function wasProbed(side: DirectionRules | DirectionNotProbed): side is DirectionRules {
  return !("unavailable" in side);
}

/**
 * The disk alignment a probe measured: memory the stricter of the two directions, offsets per
 * direction (writes as reads where writes were not probed). Null when reads were not probed.
 */
export function alignmentFromProbe(probe: DirectIoProbe): DiskAlignment | null {
  const { read, write } = probe;
  if (!wasProbed(read)) return null;
  const measured = (side: DirectionRules) => `direct ${side === read ? "reads" : "writes"} of ${side.subject}`;
  const writes = wasProbed(write) ? write : null;
  return {
    directIo: true,
    memAlign: Math.max(read.memAlign, writes?.memAlign ?? 0),
    offsetAlign: writes?.offsetAlign ?? read.offsetAlign,
    readOffsetAlign: read.offsetAlign,
    source: "probe",
    sources: {
      memAlign: writes === null ? measured(read) : `the stricter measured: reads ${read.memAlign}, writes ${writes.memAlign}`,
      offsetAlign: writes === null ? `${measured(read)}; writes not probed, assumed alike` : measured(writes),
      readOffsetAlign: measured(read),
    },
  };
}

/** Whether `fd` takes `O_DIRECT` at all (EINVAL: it does not). Restores the flags. */
export function takesDirectIo(fd: number): boolean {
  try {
    withDirect(fd, () => undefined);
    return true;
  } catch (error) {
    if (error instanceof OsError && error.errno === EINVAL) return false;
    throw error;
  }
}

/** Runs `body` with `O_DIRECT` set on `fd` (a descriptor the caller owns) and gives the descriptor back as it was. */
export function withDirect<T>(fd: number, body: () => T): T {
  const flags = fileFlags(fd);
  setFileFlags(fd, flags | O_DIRECT);
  try {
    return body();
  } finally {
    setFileFlags(fd, flags);
  }
}

/**
 * Where the probe can read `PROBE_SPAN` bytes of a file's data: the first data, rounded down to
 * `PROBE_MAX`; null when the file has no data or too little from there.
 */
export function dataToProbe(fd: number, status: FileStatus): number | null {
  const data = status.type === "file" ? nextData(fd, 0) : 0;
  if (data === null) return null;
  const at = Math.floor(data / PROBE_MAX) * PROBE_MAX;
  const size = status.type === "block-device" ? blockDeviceSize(fd) : status.size; // statx reports 0 for a device
  return at + PROBE_SPAN <= size ? at : null;
}

/**
 * The smallest length and memory offset the kernel takes for direct IO of `op` on `fd` (opened
 * with `O_DIRECT`, readable, and writable for writes) at file offset `at`, where `PROBE_SPAN`
 * bytes of data are. Writes write whatever the probe buffer holds: only ever a scratch file.
 */
export function measureAlignment(fd: number, op: "read" | "write", at: number, method: SubmissionMethod = "vectored"): { offsetAlign: number; memAlign: number } {
  using probe = new ProbeIo(fd, op, at, method);
  const offsetAlign = PROBE_ALIGNMENTS.find((len) => probe.takes(0, len, 1)) ?? PROBE_MAX;
  // Two iovecs, so that a range inside one page proves nothing; one where several cannot go as one fixed call.
  const memAlign = PROBE_ALIGNMENTS.find((offset) => probe.takes(offset, offsetAlign, probe.vectoredFixed ? 2 : 1)) ?? PROBE_MAX;
  return { offsetAlign, memAlign };
}

/** The running kernel's checks on one disk (`KernelChecks`), with how each was found. */
export interface MeasuredKernelChecks extends KernelChecks {
  sources: { lengthsByMemory: string; onePageAnyAddress: string };
  /** Direct reads the measurement made (none when it could not measure). */
  reads: number;
}

/**
 * What the running kernel checks of direct IO's iovecs on `fd`'s disk beyond the documented
 * rule (`KernelChecks`), for iovecs that reach it by `method`, measured with direct reads of its
 * data, never writes (writes are assumed alike; they are on every disk kind here). Two reads
 * decide, after an aligned one that must be taken:
 *
 *   lengthsByMemory    two page-aligned iovecs of the memory alignment and the rest of a block
 *   onePageAnyAddress  one block at memory offset 1, inside one page
 *
 * What this disk cannot show (a block no larger than the memory alignment, a block that does
 * not fit in a page after offset 1), or when it has no data to read (a hole takes anything),
 * is held to the documented rule, and the source says so. `alignment` is the disk's own, as
 * discovered: never a simulated one. `O_DIRECT` is set on `fd` for the reads only.
 */
export function measureKernelChecks(fd: number, status: FileStatus, alignment: DiskAlignment, method: SubmissionMethod = "vectored"): MeasuredKernelChecks {
  const held = (why: string, reads = 0): MeasuredKernelChecks => ({ ...DOCUMENTED_CHECKS, sources: { lengthsByMemory: why, onePageAnyAddress: why }, reads });
  if (!alignment.directIo) return held("not measured: the disk does no direct IO");
  const block = blockSize(alignment, "read");
  const memAlign = Math.max(1, alignment.memAlign);
  if (block > PROBE_MAX) return held(`not measured: the ${block}-byte block is larger than the probe's ${PROBE_MAX}; held to the documented rule`);
  const at = dataToProbe(fd, status);
  if (at === null) return held("not measured: no data to read (a hole takes any alignment); held to the documented rule");
  const how = method === "fixed" ? "io_uring fixed-buffer reads" : "direct reads";
  const where = `${how} of ${status.type === "block-device" ? "the device's blocks" : "the file's data"} at ${at}`;
  return withDirect(fd, () => {
    let opened: ProbeIo;
    try {
      opened = new ProbeIo(fd, "read", at, method);
    } catch (error) {
      // No io_uring here (disabled, or too old to register buffers): nothing to measure by.
      if (method === "fixed" && error instanceof OsError) return held(`not measured: io_uring cannot register a buffer here (${error.message}); held to the documented rule`);
      throw error;
    }
    using probe = opened;
    if (!probe.takes(0, block, 1)) return held(`not measured: an aligned direct read of ${block} bytes was refused; held to the documented rule`, probe.calls);
    const measured = (taken: boolean, what: string) => `${taken ? "took" : "refused"} ${what} (${where})`;
    let lengthsByMemory = false;
    let lengthsSource = `not observable here: the ${block}-byte block is no larger than the memory alignment ${memAlign}; held to the documented rule`;
    if (memAlign < block && !probe.vectoredFixed) {
      lengthsSource = "not measurable: this kernel's io_uring has no READV_FIXED, so several iovecs never go as one fixed call; held to the documented rule";
    } else if (memAlign < block) {
      lengthsByMemory = probe.takesIovecs([[0, memAlign], [0, block - memAlign]]);
      lengthsSource = measured(lengthsByMemory, `a ${block}-byte block as iovecs of ${memAlign} and ${block - memAlign} bytes`);
    }
    let onePageAnyAddress = memAlign === 1;
    let onePageSource = "any address meets a memory alignment of 1";
    if (memAlign > 1) {
      onePageSource = `not observable here: a ${block}-byte block at memory offset 1 does not fit in one page; held to the documented rule`;
      if (1 + block <= PAGE_SIZE) {
        onePageAnyAddress = probe.takes(1, block, 1);
        onePageSource = measured(onePageAnyAddress, `one ${block}-byte iovec at memory offset 1, inside one page`);
      }
    }
    return { lengthsByMemory, onePageAnyAddress, sources: { lengthsByMemory: lengthsSource, onePageAnyAddress: onePageSource }, reads: probe.calls };
  });
}

/**
 * Probes both directions of the file or block device at `path` (`status` its statx). Reads go
 * to its data; writes (and reads, when the file holds too little data) to an unnamed scratch
 * file beside it. Never writes `path`.
 */
export function probeDirectIo(path: string, fd: number, status: FileStatus): DirectIoProbe {
  if (!takesDirectIo(fd)) {
    const unavailable = "O_DIRECT refused: EINVAL";
    return { read: { unavailable }, write: { unavailable } };
  }
  const at = dataToProbe(fd, status);
  const read = at !== null ? probeDirection(fd, "read", at, status.type === "block-device" ? `the device's blocks at ${at}` : `the file's data at ${at}`) : null;
  if (status.type === "block-device") {
    return {
      read: read ?? { unavailable: `the device is smaller than ${PROBE_SPAN} bytes` },
      write: { unavailable: "not probed: bounce-bench writes no block device it did not make (the block layer checks writes as it checks reads)" },
    };
  }
  const directory = dirname(path);
  let scratch: number;
  try {
    scratch = openTemporaryFile(directory, O_RDWR);
  } catch (error) {
    if (!(error instanceof OsError)) throw error;
    const unavailable = `not probed: no scratch file in ${directory} (${error.message})`;
    return { read: read ?? { unavailable: `the file has less than ${PROBE_SPAN} bytes of data, and ${unavailable}` }, write: { unavailable } };
  }
  try {
    fillScratch(scratch);
    const subject = `an unnamed scratch file in ${directory}`;
    if (!takesDirectIo(scratch)) {
      const unavailable = "the scratch file refuses O_DIRECT (EINVAL)";
      return { read: read ?? { unavailable }, write: { unavailable } };
    }
    return { read: read ?? probeDirection(scratch, "read", 0, subject), write: probeDirection(scratch, "write", 0, subject) };
  } finally {
    closeFd(scratch);
  }
}

/** Writes `PROBE_SPAN` bytes of data to a scratch file and makes them durable, so that probes meet data on the device, not a hole. */
function fillScratch(fd: number): void {
  using buffer = NativeRegion.anonymous(PROBE_SPAN, "scratch file data");
  buffer.fill(0, PROBE_SPAN, 0xa5);
  using iovecs = new IovecArray(1);
  iovecs.push(buffer.address(0) as number, PROBE_SPAN);
  const written = pwritevOnce(fd, iovecs.address(), 1, 0);
  if (written !== PROBE_SPAN) throw new OsError(written < 0 ? -written : 5, "pwritev", "the probe's scratch file");
  fsyncFd(fd);
}

/** Alignment and page-cache use of `op` on `fd` at `at` (data there), with `O_DIRECT` set for the probe only. */
function probeDirection(fd: number, op: "read" | "write", at: number, subject: string): DirectionRules {
  return withDirect(fd, () => {
    const { offsetAlign, memAlign } = measureAlignment(fd, op, at);
    return { offsetAlign, memAlign, ...pageCacheUse(fd, op, at, offsetAlign, memAlign), subject };
  });
}

/**
 * Whether direct IO of `op` goes through the page cache: drop the range's cached pages, do an
 * aligned IO, and look (cachestat); then the same with the misaligned IO the kernel took, if it
 * took one. A write the filesystem buffers is written back and dropped before the call returns,
 * so it leaves nothing to see: a write shorter than a sector that was taken is the evidence.
 */
function pageCacheUse(fd: number, op: "read" | "write", at: number, offsetAlign: number, memAlign: number): Pick<DirectionRules, "pageCache" | "pageCacheEvidence"> {
  using probe = new ProbeIo(fd, op, at);
  const cachedAfter = (memoryOffset: number, len: number, pieces: 1 | 2): number | null => {
    fsyncFd(fd); // dirty pages cannot be dropped; flushing changes no byte of the file
    dropCachedPages(fd, 0, 0); // the whole file: a large folio reaching past the range is only dropped whole
    const before = cachedPages(fd, at, PROBE_SPAN);
    if (before === null) return null;
    if (before.cached > 0) return Infinity; // pages that cannot be dropped
    probe.takes(memoryOffset, len, pieces);
    return cachedPages(fd, at, PROBE_SPAN)!.cached;
  };
  // The least of three tries: btrfs sometimes caches pages on the first aligned direct read of
  // freshly written data, and only that once (measured on 6.18).
  const tries = [cachedAfter(0, PROBE_MAX, 1), cachedAfter(0, PROBE_MAX, 1), cachedAfter(0, PROBE_MAX, 1)];
  const aligned = tries.includes(null) ? null : Math.min(...(tries as number[]));
  if (aligned === null) return { pageCache: "unknown", pageCacheEvidence: "this kernel has no cachestat(2) (Linux 6.5+)" };
  if (aligned === Infinity) {
    return { pageCache: "always", pageCacheEvidence: "its pages stay cached after fsync and posix_fadvise(DONTNEED) (cachestat): the file lives in memory (tmpfs), or another process holds them" };
  }
  if (aligned > 0) return { pageCache: "always", pageCacheEvidence: `an aligned direct ${op} left ${aligned} pages in the page cache (cachestat)` };
  if (op === "write") {
    const traced = tracedWrites(fd, probe, offsetAlign, memAlign);
    if (traced !== null) return traced;
  }
  if (offsetAlign < SECTOR && op === "write") {
    return {
      pageCache: "misaligned",
      pageCacheEvidence:
        `the kernel took a direct write of ${offsetAlign} byte(s), which no block device can transfer (whole ${SECTOR}-byte sectors only): it was buffered; ` +
        "whether aligned writes are too, only tracing (root) can see: a buffered write is written back and dropped before it returns",
    };
  }
  if (offsetAlign < SECTOR || memAlign < SECTOR) {
    const misaligned = offsetAlign < SECTOR ? cachedAfter(0, offsetAlign, 1) : cachedAfter(memAlign, offsetAlign, 2);
    if (misaligned !== null && misaligned > 0) {
      const what = offsetAlign < SECTOR ? `of ${offsetAlign} byte(s)` : `at memory offset ${memAlign}`;
      return { pageCache: "misaligned", pageCacheEvidence: `a direct ${op} ${what} left ${misaligned} pages in the page cache (cachestat); aligned ones left none` };
    }
  }
  return { pageCache: "never", pageCacheEvidence: `direct ${op}s the kernel took left no pages in the page cache (cachestat)` };
}

/**
 * Whether direct writes go through the page cache, by the kernel's writeback tracepoint (a
 * page a buffered write dirties): cachestat cannot see it, because a filesystem that buffers a
 * direct write (btrfs, for a file with data checksums) writes it back and drops the pages
 * before the call returns. An aligned write first, then the misaligned one the kernel took, if
 * any. Null when tracing cannot be used (not root, no tracefs) or `fd` is not a regular file.
 */
function tracedWrites(fd: number, probe: ProbeIo, offsetAlign: number, memAlign: number): Pick<DirectionRules, "pageCache" | "pageCacheEvidence"> | null {
  if (statx(fd).type !== "file") return null;
  using trace = PageCacheTrace.tryStart(fd);
  if (trace === null) return null;
  const dirtied = (memoryOffset: number, len: number): number => {
    fsyncFd(fd); // clean pages, so that a buffered write dirties them again
    trace.clear();
    probe.takes(memoryOffset, len, 1);
    return trace.pages().dirtied;
  };
  const aligned = dirtied(0, PROBE_MAX);
  if (aligned > 0) return { pageCache: "always", pageCacheEvidence: `an aligned direct write dirtied ${aligned} page(s) in the page cache (the kernel's writeback tracepoint): every write is buffered` };
  if (offsetAlign < SECTOR || memAlign < SECTOR) {
    const misaligned = offsetAlign < SECTOR ? dirtied(0, offsetAlign) : dirtied(memAlign, offsetAlign);
    if (misaligned > 0) return { pageCache: "misaligned", pageCacheEvidence: `a misaligned direct write the kernel took dirtied ${misaligned} page(s) in the page cache, an aligned one none (the kernel's writeback tracepoint)` };
  }
  return { pageCache: "never", pageCacheEvidence: "direct writes the kernel took dirtied no page in the page cache (the kernel's writeback tracepoint)" };
}

/**
 * One probe IO at a time on `fd` at `at`, from page-aligned memory (so a memory offset tried is
 * exactly that offset from a page): `takes` says whether the kernel took it. `vectored`: a
 * preadv/pwritev; `fixed`: the buffer registered with a ring of its own, one iovec as
 * READ_FIXED/WRITE_FIXED, two as READV_FIXED/WRITEV_FIXED (where the kernel has them: `vectoredFixed`).
 * Owns its buffer, iovecs and ring; the buffer and iovecs stay alive until each call has completed.
 */
class ProbeIo implements Disposable {
  readonly #buffer = NativeRegion.anonymous(2 * PROBE_SPAN, "alignment probe buffer");
  readonly #iovecs = new IovecArray(2);
  readonly #ring: IoUring | null = null;
  readonly #tags = new Int32Array(1);
  readonly #results = new Int32Array(1);
  /** Whether two iovecs can go as one fixed call (READV_FIXED); true for `vectored`. */
  readonly vectoredFixed: boolean = true;
  /** Calls made (a call interrupted and retried counts once). */
  calls = 0;

  constructor(
    readonly fd: number,
    readonly op: "read" | "write",
    readonly at: number,
    readonly method: SubmissionMethod = "vectored",
  ) {
    if (method === "fixed") {
      const ring = new IoUring(1);
      try {
        ring.registerBuffers([{ address: this.#buffer.address(0) as number, length: 2 * PROBE_SPAN }]);
        this.vectoredFixed = ring.supports(op === "read" ? IORING_OP_READV_FIXED : IORING_OP_WRITEV_FIXED);
      } catch (error) {
        ring.close();
        this.#buffer.release();
        this.#iovecs.release();
        throw error;
      }
      this.#ring = ring;
    }
  }

  /** Whether the kernel takes `pieces` iovecs of `len` bytes, each at `memoryOffset` in its own page pair. */
  takes(memoryOffset: number, len: number, pieces: 1 | 2): boolean {
    return this.takesIovecs(pieces === 1 ? [[memoryOffset, len]] : [[memoryOffset, len], [memoryOffset, len]]);
  }

  /** Whether the kernel takes one call of these iovecs (`[memory offset, length]`, at most two), each in its own page pair. */
  takesIovecs(pieces: readonly (readonly [number, number])[]): boolean {
    this.#iovecs.clear();
    pieces.forEach(([memoryOffset, len], piece) => this.#iovecs.push((this.#buffer.address(0) as number) + piece * PROBE_SPAN + memoryOffset, len));
    const call = this.op === "read" ? preadvOnce : pwritevOnce;
    this.calls++;
    for (;;) {
      const result = this.#ring === null ? call(this.fd, this.#iovecs.address(), pieces.length, this.at) : this.#fixedCall(pieces.length);
      if (result >= 0) return true;
      if (result === -EINVAL) return false;
      if (result !== -EINTR) throw new OsError(-result, this.#callName(pieces.length), `direct-IO probe, fd ${this.fd} at ${this.at}`);
    }
  }

  /** One fixed call of the iovecs in place, waited for: its result. */
  #fixedCall(count: number): number {
    const ring = this.#ring!;
    const write = this.op === "write";
    if (count === 1) {
      ring.prepare(write ? IORING_OP_WRITE_FIXED : IORING_OP_READ_FIXED, this.fd, this.#iovecs.base(0) as never, this.#iovecs.length(0), this.at, 0, 0, 0, 0);
    } else {
      if (!this.vectoredFixed) throw new Error("ProbeIo: several iovecs as one fixed call need READV_FIXED, which this kernel has not");
      ring.prepare(write ? IORING_OP_WRITEV_FIXED : IORING_OP_READV_FIXED, this.fd, this.#iovecs.address(), count, this.at, 0, 0, 0, 0);
    }
    ring.submitAndWait(1);
    while (ring.takeCompletions(this.#tags, this.#results, 1) === 0) ring.submitAndWait(1);
    return this.#results[0]!;
  }

  #callName(count: number): string {
    if (this.#ring === null) return this.op === "read" ? "preadv" : "pwritev";
    return `io_uring ${this.op === "read" ? "READ" : "WRITE"}${count > 1 ? "V" : ""}_FIXED`;
  }

  [Symbol.dispose](): void {
    // The ring first: nothing is in flight (every call is waited for), and its pages are unpinned with it.
    this.#ring?.close();
    this.#iovecs.release();
    this.#buffer.release();
  }
}
