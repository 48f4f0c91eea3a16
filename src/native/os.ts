/**
 * Typed wrappers over the libc calls of `libc.ts`: files, mappings, vectored IO, statx.
 *
 * Every wrapper either returns a plain value or throws an `OsError` naming the errno, the call
 * and what it was doing. `EINTR` is retried here, once and for all. No wrapper keeps a
 * pointer: an `Address` passed in must stay valid for the duration of the call only, and the
 * caller says what keeps it alive (see `NativeRegion` and `IovecArray`, the two owners of
 * native memory).
 */
import { ptr, type Pointer } from "bun:ffi";
import { closeSync, openSync, readFileSync, readSync } from "node:fs";
import { PAGE_SIZE } from "../base/constants";
import { InvalidInputError } from "../base/errors";
import { EINTR, ENOSYS, OsError } from "./errno";
import { lastErrno, libc } from "./libc";

/**
 * A host virtual address inside native memory owned by a `NativeRegion` or `IovecArray`.
 * Only valid while its owner is alive; only this directory dereferences it.
 */
export type Address = number & { readonly __address: unique symbol };

const isArm64 = process.arch === "arm64";

export const O_RDONLY = 0;
export const O_WRONLY = 0o1;
export const O_RDWR = 0o2;
export const O_CREAT = 0o100;
export const O_EXCL = 0o200;
export const O_TRUNC = 0o1000;
export const O_DSYNC = 0o10000;
export const O_DIRECT = isArm64 ? 0o200000 : 0o40000;
export const O_CLOEXEC = 0o2000000;
/** Fail with ELOOP rather than follow a symlink in the last component. */
export const O_NOFOLLOW = isArm64 ? 0o100000 : 0o400000;
/** `__O_TMPFILE | O_DIRECTORY`: open(2) makes an unnamed file in the directory named. */
const O_TMPFILE = isArm64 ? 0o20040000 : 0o20200000;
/** Opening a FIFO or a device does not wait for it (bounce-bench checks the type first, then clears it). */
export const O_NONBLOCK = 0o4000;
/** Reads do not update the file's access time (the owner's or CAP_FOWNER's to set: EPERM otherwise). */
export const O_NOATIME = 0o1000000;
const F_GETFL = 3;
const F_SETFL = 4;

/** `pwritev2` flag: this write is durable when it completes (FUA where the device has it). */
export const RWF_DSYNC = 0x2;

const PROT_READ = 0x1;
const PROT_WRITE = 0x2;
const MAP_SHARED = 0x1;
const MAP_PRIVATE = 0x2;
const MAP_ANONYMOUS = 0x20;
const MAP_NORESERVE = 0x4000;
const MAP_POPULATE = 0x8000;
const PROT_NONE = 0x0;
const MREMAP_MAYMOVE = 1;
const MREMAP_FIXED = 2;
const MADV_COLD = 20;
const MADV_POPULATE_READ = 22;
const MS_SYNC = 0x4;

const AT_FDCWD = -100;
const AT_EMPTY_PATH = 0x1000;
const STATX_BASIC_STATS = 0x7ff;
export const STATX_DIOALIGN = 0x2000;
export const STATX_DIO_READ_ALIGN = 0x20000;
const STATX_SIZE = 256;

const BLKSSZGET = 0x1268;
const BLKGETSIZE64 = 0x80081272;

const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
const S_IFBLK = 0o060000;
const S_IFCHR = 0o020000;
const S_IFIFO = 0o010000;
const S_IFSOCK = 0o140000;

function cString(path: string, call: string): Buffer {
  if (path.length === 0 || path.includes("\0")) {
    throw new InvalidInputError(`${call}: invalid path ${JSON.stringify(path)}`);
  }
  return Buffer.from(`${path}\0`);
}

function fail(call: string, detail: string, hint?: string): never {
  throw new OsError(lastErrno(), call, detail, hint);
}

/** open(2). Returns the file descriptor; the caller owns it and must `closeFd` it. */
export function openFile(path: string, flags: number, mode = 0o644): number {
  const name = cString(path, "open");
  for (;;) {
    const fd = libc.open(name, flags | O_CLOEXEC, mode);
    if (fd >= 0) return fd;
    if (lastErrno() !== EINTR) fail("open", path);
  }
}

/**
 * open(2) with `O_TMPFILE`: an unnamed regular file on `directory`'s filesystem, which no path
 * names and which is gone when its descriptor is closed. `flags` must include `O_RDWR` or
 * `O_WRONLY`. Returns the descriptor; the caller owns it and must `closeFd` it.
 */
export function openTemporaryFile(directory: string, flags: number): number {
  return openFile(directory, flags | O_TMPFILE, 0o600);
}

const POSIX_FADV_DONTNEED = 4;

/** posix_fadvise(2) `DONTNEED`: drops the clean page-cache pages of `fd` in the range (dirty ones stay). */
export function dropCachedPages(fd: number, offset: number, length: number): void {
  const error = libc.posix_fadvise(fd, offset, length, POSIX_FADV_DONTNEED);
  if (error !== 0) throw new OsError(error, "posix_fadvise", `fd ${fd}, DONTNEED ${offset}+${length}`);
}

const SYS_CACHESTAT = 451; // the same number on x86-64 and arm64 (the generic table)
// struct cachestat_range { u64 off, len } and the first two u64 of struct cachestat (nr_cache,
// nr_dirty; three more follow), as u32 halves, so no BigInt. Module-owned (one per thread) and
// alive for the process; the kernel reads and writes them during the call only.
const cachestatRange = new Uint32Array(4);
const cachestatResult = new Uint32Array(10);

/**
 * cachestat(2) (Linux 6.5+): how many pages of `fd` in the byte range are in the page cache,
 * and how many of those are dirty. Null when the kernel has no cachestat (ENOSYS).
 */
export function cachedPages(fd: number, offset: number, length: number): { cached: number; dirty: number } | null {
  cachestatRange.set([offset % 2 ** 32, Math.floor(offset / 2 ** 32), length % 2 ** 32, Math.floor(length / 2 ** 32)]);
  for (;;) {
    const result = libc.syscall(SYS_CACHESTAT, fd, ptr(cachestatRange), ptr(cachestatResult), 0, 0, 0) as number;
    if (result >= 0) break;
    const errno = lastErrno();
    if (errno === ENOSYS) return null;
    if (errno !== EINTR) fail("cachestat", `fd ${fd}, ${offset}+${length}`);
  }
  const u64 = (at: number) => cachestatResult[at]! + cachestatResult[at + 1]! * 2 ** 32;
  return { cached: u64(0), dirty: u64(2) };
}

const MFD_CLOEXEC = 0x1;
const MFD_HUGETLB = 0x4;

/**
 * memfd_create(2): an anonymous file in memory (shmem, or hugetlbfs with `hugetlb`: 2 MiB pages
 * from the pool reserved in /proc/sys/vm/nr_hugepages), the way VMMs back guest RAM. Returns
 * its descriptor, which the caller owns; other threads of the process reach it as
 * `/proc/self/fd/<fd>`.
 */
export function createMemfd(name: string, hugetlb = false): number {
  const fd = libc.memfd_create(cString(name, "memfd_create"), MFD_CLOEXEC | (hugetlb ? MFD_HUGETLB : 0));
  if (fd < 0) fail("memfd_create", name);
  return fd;
}

export function closeFd(fd: number): void {
  // close(2) must not be retried on EINTR on Linux: the descriptor is already gone.
  if (libc.close(fd) !== 0 && lastErrno() !== EINTR) fail("close", `fd ${fd}`);
}

export function fsyncFd(fd: number): void {
  for (;;) {
    if (libc.fsync(fd) === 0) return;
    if (lastErrno() !== EINTR) fail("fsync", `fd ${fd}`);
  }
}

/** ftruncate(2): sets the file's size; growing it leaves a hole (a sparse file). */
export function truncateFd(fd: number, size: number): void {
  for (;;) {
    if (libc.ftruncate(fd, size) === 0) return;
    if (lastErrno() !== EINTR) fail("ftruncate", `fd ${fd}, ${size} bytes`);
  }
}

/** fallocate(2) mode 0: allocates blocks for `[offset, offset+len)` so writes do not. */
export function allocateFd(fd: number, offset: number, len: number): void {
  const errno = allocateFdOnce(fd, offset, len);
  if (errno !== 0) throw new OsError(errno, "fallocate", `fd ${fd}, ${len} bytes at ${offset}`);
}

/** fallocate(2) mode 0 of `[offset, offset+len)` (EINTR retried): 0, or the errno (ENOSPC, EOPNOTSUPP, ...). */
export function allocateFdOnce(fd: number, offset: number, len: number): number {
  for (;;) {
    if (libc.fallocate(fd, 0, offset, len) === 0) return 0;
    const errno = lastErrno();
    if (errno !== EINTR) return errno;
  }
}

const SEEK_DATA = 3;
const ENXIO = 6;

/** The offset of the first byte of data at or after `offset` (`lseek SEEK_DATA`), or null when only holes follow. */
export function nextData(fd: number, offset: number): number | null {
  const position = libc.lseek(fd, offset, SEEK_DATA) as number;
  if (position >= 0) return position;
  if (lastErrno() === ENXIO) return null;
  fail("lseek", `fd ${fd}, SEEK_DATA from ${offset}`);
}

/** The status flags of an open descriptor (`fcntl(F_GETFL)`): `O_DIRECT`, `O_NONBLOCK`, ... */
export function fileFlags(fd: number): number {
  const flags = libc.fcntl(fd, F_GETFL, null);
  if (flags < 0) fail("fcntl", `fd ${fd}, F_GETFL`);
  return flags;
}

/**
 * Sets the status flags of an open descriptor (`fcntl(F_SETFL)`); the kernel changes only
 * `O_APPEND`, `O_DIRECT`, `O_NONBLOCK` and a few others. Setting `O_DIRECT` on a file whose
 * filesystem does no direct IO fails with `EINVAL`.
 */
export function setFileFlags(fd: number, flags: number): void {
  if (libc.fcntl(fd, F_SETFL, flags as unknown as Pointer) !== 0) fail("fcntl", `fd ${fd}, F_SETFL`);
}

/** The logical block size of a block device (`BLKSSZGET`). */
export function blockDeviceLogicalSize(fd: number): number {
  const out = new Int32Array(1);
  if (libc.ioctl(fd, BLKSSZGET, out) !== 0) fail("ioctl", `fd ${fd}, BLKSSZGET`);
  return out[0]!;
}

/** The size in bytes of a block device (`BLKGETSIZE64`); statx reports 0 for devices. */
export function blockDeviceSize(fd: number): number {
  const out = new Uint32Array(2);
  if (libc.ioctl(fd, BLKGETSIZE64, out) !== 0) fail("ioctl", `fd ${fd}, BLKGETSIZE64`);
  return out[0]! + out[1]! * 2 ** 32;
}

export type FileType = "file" | "directory" | "block-device" | "char-device" | "fifo" | "socket" | "other";

/** The fields of `struct statx` that bounce-bench uses. */
export interface FileStatus {
  type: FileType;
  size: number;
  /** Preferred IO size (`stx_blksize`). */
  blockSize: number;
  /** The file's inode number on its device: with the device, which file this is. */
  inode: number;
  /** The device the file lives on. */
  devMajor: number;
  devMinor: number;
  /** The device a device file stands for (0:0 for other files). */
  rdevMajor: number;
  rdevMinor: number;
  /**
   * Direct-IO alignment from `STATX_DIOALIGN`, or null when the kernel did not report it.
   * All zeros means the file does not support direct IO. `readOffsetAlign` is
   * `stx_dio_read_offset_align` (0 when absent: reads use `offsetAlign`).
   */
  dio: { memAlign: number; offsetAlign: number; readOffsetAlign: number } | null;
}

/** statx(2) of a path (following symlinks), or of an open descriptor when `path` is a number. */
export function statx(target: string | number): FileStatus {
  const buffer = new Uint8Array(STATX_SIZE);
  const mask = STATX_BASIC_STATS | STATX_DIOALIGN | STATX_DIO_READ_ALIGN;
  const byFd = typeof target === "number";
  const dirfd = byFd ? target : AT_FDCWD;
  const path = byFd ? Buffer.from("\0") : cString(target, "statx");
  for (;;) {
    if (libc.statx(dirfd, path, byFd ? AT_EMPTY_PATH : 0, mask, buffer) === 0) break;
    if (lastErrno() !== EINTR) fail("statx", byFd ? `fd ${target}` : String(target));
  }
  const view = new DataView(buffer.buffer);
  const u32 = (at: number) => view.getUint32(at, true);
  const u64 = (at: number) => u32(at) + u32(at + 4) * 2 ** 32;
  const returned = u32(0);
  const mode = view.getUint16(28, true);
  return {
    type: fileType(mode),
    size: u64(40),
    blockSize: u32(4),
    inode: u64(32),
    devMajor: u32(136),
    devMinor: u32(140),
    rdevMajor: u32(128),
    rdevMinor: u32(132),
    dio:
      (returned & STATX_DIOALIGN) === 0
        ? null
        : {
            memAlign: u32(152),
            offsetAlign: u32(156),
            readOffsetAlign: (returned & STATX_DIO_READ_ALIGN) === 0 ? 0 : u32(180),
          },
  };
}

function fileType(mode: number): FileType {
  switch (mode & S_IFMT) {
    case S_IFREG:
      return "file";
    case S_IFDIR:
      return "directory";
    case S_IFBLK:
      return "block-device";
    case S_IFCHR:
      return "char-device";
    case S_IFIFO:
      return "fifo";
    case S_IFSOCK:
      return "socket";
    default:
      return "other";
  }
}

/**
 * mmap(2) of `length` bytes of `fd` from `offset`, `MAP_SHARED`: stores reach the file (or,
 * for an io_uring descriptor, the kernel's rings; `populate` faults them in at once).
 * The caller owns the mapping and must `unmap` it with the same length.
 */
export function mapFile(fd: number, length: number, writable: boolean, offset = 0, populate = false): Address {
  const prot = writable ? PROT_READ | PROT_WRITE : PROT_READ;
  const flags = MAP_SHARED | (populate ? MAP_POPULATE : 0);
  const address = libc.mmap(null, length, prot, flags, fd, offset) as number;
  if (address === -1) fail("mmap", `fd ${fd}, ${length} bytes at ${offset}, MAP_SHARED`);
  return address as Address;
}

/**
 * Anonymous private memory: page-aligned and zero-filled by the kernel, which is exactly what
 * a bounce buffer needs. The caller owns it and must `unmap` it with the same length.
 */
export function mapAnonymous(length: number): Address {
  const flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE;
  const address = libc.mmap(null, length, PROT_READ | PROT_WRITE, flags, -1, 0) as number;
  if (address === -1) fail("mmap", `${length} bytes, anonymous`);
  return address as Address;
}

/** Size of a transparent huge page with 4 KiB base pages (x86-64, arm64). */
export const HUGE_PAGE_SIZE = 2 * 1024 * 1024;
const MADV_HUGEPAGE = 14;
const MADV_NOHUGEPAGE = 15;

/**
 * Anonymous memory as `mapAnonymous`, kept on base (4 KiB) pages even where the kernel's THP
 * mode is `always`: for comparing like with like against memory on base pages.
 */
export function mapAnonymousBase(length: number): Address {
  const address = mapAnonymous(length);
  keepBasePages(address, length);
  return address;
}

/** madvise(MADV_NOHUGEPAGE): the kernel never backs (or collapses) the range with huge pages. */
export function keepBasePages(address: Address, length: number): void {
  libc.madvise(address as number as Pointer, length, MADV_NOHUGEPAGE); // advice only: EINVAL means no THP at all
}

/** Bits 0-54 of a pagemap entry: the page frame number. */
const PFN_MASK = (1n << 55n) - 1n;

/**
 * Like `mapAnonymous`, but starting on a huge-page boundary and advised `MADV_HUGEPAGE`, so
 * that the kernel may back it with transparent huge pages when it is first touched (with THP
 * `enabled` set to `always` or `madvise`; otherwise it falls back to base pages silently).
 * Direct IO into a huge page pins one folio and makes one DMA segment where base pages make one
 * per 4 KiB. `length` must be a multiple of `HUGE_PAGE_SIZE`. The caller owns the mapping and
 * must `unmap` it with the same length.
 */
export function mapAnonymousHuge(length: number): Address {
  // Over-map by one huge page, then trim the unaligned head and the tail.
  const spread = mapAnonymous(length + HUGE_PAGE_SIZE) as number;
  const start = Math.ceil(spread / HUGE_PAGE_SIZE) * HUGE_PAGE_SIZE;
  if (start > spread) unmap(spread as Address, start - spread);
  unmap((start + length) as Address, spread + HUGE_PAGE_SIZE - start); // never empty: start < spread + HUGE_PAGE_SIZE
  // Advice only: EINVAL means a kernel without THP, and base pages still work.
  libc.madvise(start as Pointer, length, MADV_HUGEPAGE);
  return start as Address;
}

/**
 * Bytes of the anonymous mapping that contains `address` that the kernel backs with
 * transparent huge pages right now (`AnonHugePages` in /proc/self/smaps); 0 when none, or when
 * smaps cannot be read.
 */
export function anonHugePageBytes(address: Address): number {
  let smaps: string;
  try {
    smaps = readFileSync("/proc/self/smaps", "utf8");
  } catch {
    return 0;
  }
  let inside = false;
  for (const line of smaps.split("\n")) {
    const range = /^([0-9a-f]+)-([0-9a-f]+) /.exec(line);
    if (range !== null) {
      inside = parseInt(range[1]!, 16) <= address && address < parseInt(range[2]!, 16);
    } else if (inside && line.startsWith("AnonHugePages:")) {
      return Number(/(\d+) kB/.exec(line)?.[1] ?? 0) * 1024;
    }
  }
  return 0;
}

/**
 * Reserves `length` bytes of address space and maps nothing usable there (`PROT_NONE`): a place
 * to move pages to (`movePages`). The caller owns the range and must `unmap` it whole, which
 * also unmaps every page moved into it.
 */
export function reserveAddresses(length: number): Address {
  const flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE;
  const address = libc.mmap(null, length, PROT_NONE, flags, -1, 0) as number;
  if (address === -1) fail("mmap", `${length} bytes, reserved`);
  return address as Address;
}

/**
 * mremap(2) `MREMAP_MAYMOVE | MREMAP_FIXED`: moves the pages mapped at `[from, from+length)` to
 * `to` (inside a range `reserveAddresses` gave this caller: whatever is there is replaced). The
 * pages keep their physical frames; `from` is left unmapped.
 */
export function movePages(from: Address, length: number, to: Address): void {
  const moved = libc.mremap(from as number as Pointer, length, length, MREMAP_MAYMOVE | MREMAP_FIXED, to as number as Pointer) as number;
  if (moved === -1) fail("mremap", `${length} bytes`);
}

/**
 * Splits each transparent huge page in `[address, address+length)` (huge-page aligned) into
 * base pages in place, by advising `MADV_COLD` on its first base page: the kernel splits a huge
 * page advised in part. Its 512 pages stay on their physically contiguous frames, now each its
 * own folio. Zero-filled pages may be dropped in the split (6.12+ maps them to the zero page), so
 * callers fill the memory first. Advice only: false where the kernel refuses it.
 */
export function splitHugePages(address: Address, length: number): boolean {
  let split = true;
  for (let at = address as number; at < address + length; at += HUGE_PAGE_SIZE) {
    split = libc.madvise(at as Pointer, PAGE_SIZE, MADV_COLD) === 0 && split;
  }
  return split;
}

/**
 * madvise(MADV_POPULATE_READ): faults `[address, address+length)` in as a read would, without
 * changing a byte (a memory file's holes get pages). False where the kernel cannot (before 5.14).
 */
export function populateForRead(address: Address, length: number): boolean {
  const start = Math.floor(address / PAGE_SIZE) * PAGE_SIZE; // madvise wants a page-aligned start
  return libc.madvise(start as Pointer, address + length - start, MADV_POPULATE_READ) === 0;
}

/**
 * The physical frame of each page of `[address, address+length)`, from /proc/self/pagemap:
 * -1 for a page not present. Null when frame numbers are hidden (they read as 0 without
 * CAP_SYS_ADMIN), when pagemap is missing, or when no page is present.
 */
export function physicalFrames(address: Address, length: number): number[] | null {
  const first = Math.floor(address / PAGE_SIZE);
  const pages = Math.ceil((address + length) / PAGE_SIZE) - first;
  const entries = Buffer.alloc(pages * 8);
  try {
    const fd = openSync("/proc/self/pagemap", "r");
    try {
      readSync(fd, entries, 0, entries.length, first * 8);
    } finally {
      closeSync(fd);
    }
  } catch {
    return null;
  }
  const frames: number[] = [];
  let anyFrame = false;
  for (let page = 0; page < pages; page++) {
    const entry = entries.readBigUInt64LE(page * 8);
    const present = (entry >> 63n) === 1n;
    const frame = present ? Number(entry & PFN_MASK) : -1;
    anyFrame ||= frame > 0;
    frames.push(frame);
  }
  return anyFrame ? frames : null;
}

/**
 * Lengths, in pages, of the physically contiguous runs `frames` make (see `physicalFrames`):
 * a page not present (-1) is a run of its own.
 */
export function runLengths(frames: readonly number[]): number[] {
  const runs: number[] = [];
  for (let page = 0; page < frames.length; page++) {
    const frame = frames[page]!;
    if (page > 0 && frame >= 0 && frame === frames[page - 1]! + 1) runs[runs.length - 1]!++;
    else runs.push(1);
  }
  return runs;
}

/**
 * How many physically contiguous runs the `length` bytes at `address` occupy, from
 * /proc/self/pagemap: the number of DMA segments the kernel would build for them, at best
 * (it merges adjacent pages). Pages not present yet count as runs of their own. Null when the
 * page frame numbers are hidden (they read as 0 without CAP_SYS_ADMIN), when pagemap is
 * missing, or when no page is present.
 */
export function physicalRuns(address: Address, length: number): number | null {
  const frames = physicalFrames(address, length);
  return frames === null ? null : runLengths(frames).length;
}

export function unmap(address: Address, length: number): void {
  if (libc.munmap(address as number as Pointer, length) !== 0) fail("munmap", `${length} bytes`);
}

/** msync(MS_SYNC): the mapping's dirty pages reach the file before this returns. */
export function syncMapping(address: Address, length: number): void {
  if (libc.msync(address as number as Pointer, length, MS_SYNC) !== 0) fail("msync", `${length} bytes`);
}

/**
 * What this thread asked of the kernel, counted where the calls are made (tests and `bench`
 * read differences of them): [IO_PREADV] preadv calls, [IO_PWRITEV] pwritev/pwritev2 calls,
 * [IO_SQES] io_uring submissions, [IO_BYTES_READ] and [IO_BYTES_WRITTEN] bytes the kernel
 * reported transferred by either. Each Worker has its own (one module instance per thread).
 */
export const ioCounters = new Float64Array(5);
export const IO_PREADV = 0;
export const IO_PWRITEV = 1;
export const IO_SQES = 2;
export const IO_BYTES_READ = 3;
export const IO_BYTES_WRITTEN = 4;

/**
 * One preadv(2) of the `count` iovecs at `iovecs` from file offset `offset`: the bytes
 * transferred (possibly short), or `-errno`, `-EINTR` included; continuing and retrying are
 * the caller's business (the executor's). The iovec array and every buffer it points to must
 * stay alive until this returns.
 */
export function preadvOnce(fd: number, iovecs: Address, count: number, offset: number): number {
  ioCounters[IO_PREADV]!++;
  const n = libc.preadv(fd, iovecs as number as Pointer, count, offset) as number;
  if (n < 0) return -lastErrno();
  ioCounters[IO_BYTES_READ]! += n;
  return n;
}

/** One pwritev(2), or pwritev2(2) when `flags` (`RWF_DSYNC`) are given. Same contract as `preadvOnce`. */
export function pwritevOnce(fd: number, iovecs: Address, count: number, offset: number, flags = 0): number {
  ioCounters[IO_PWRITEV]!++;
  const n = (
    flags === 0
      ? libc.pwritev(fd, iovecs as number as Pointer, count, offset)
      : libc.pwritev2(fd, iovecs as number as Pointer, count, offset, flags)
  ) as number;
  if (n < 0) return -lastErrno();
  ioCounters[IO_BYTES_WRITTEN]! += n;
  return n;
}

/**
 * preadv(2) for callers outside the executor (the alignment probe): `EINTR` retried, a failure
 * thrown as `OsError`. Returns the bytes transferred, which may be short.
 */
export function preadv(fd: number, iovecs: Address, count: number, offset: number): number {
  for (;;) {
    const n = preadvOnce(fd, iovecs, count, offset);
    if (n >= 0) return n;
    if (n !== -EINTR) throw new OsError(-n, "preadv", `fd ${fd}, ${count} iovecs at offset ${offset}`);
  }
}

/**
 * A raw system call with up to six integer arguments (pointers as numbers). Returns the
 * result, or throws an `OsError` naming `call`; `EINTR` is retried.
 */
export function rawSyscall(number: number, call: string, a = 0, b = 0, c = 0, d = 0, e = 0, f = 0): number {
  for (;;) {
    const result = libc.syscall(number, a, b, c, d, e, f) as number;
    if (result >= 0) return result;
    if (lastErrno() !== EINTR) fail(call, "");
  }
}

const PR_SET_PDEATHSIG = 1;

/**
 * Asks the kernel to send `signal` to this process when its parent exits (prctl
 * PR_SET_PDEATHSIG): a launcher killed with SIGKILL then still stops its child, which cleans up
 * on the signal. The caller checks afterwards that the parent is still the one it expects (it
 * may have gone before the request).
 */
export function setParentDeathSignal(signal: number): void {
  if (libc.prctl(PR_SET_PDEATHSIG, signal, 0, 0, 0) !== 0) fail("prctl", "PR_SET_PDEATHSIG");
}

const CLOCK_THREAD_CPUTIME_ID = 3;
const timespec = new Uint32Array(4); // one per thread (module instance): tv_sec (i64), tv_nsec (i64)

/** CPU time consumed by the calling thread, in nanoseconds (user and system). */
export function threadCpuNs(): number {
  if (libc.clock_gettime(CLOCK_THREAD_CPUTIME_ID, timespec) !== 0) fail("clock_gettime", "CLOCK_THREAD_CPUTIME_ID");
  return (timespec[0]! + timespec[1]! * 2 ** 32) * 1e9 + timespec[2]!;
}

const CLOCK_PROCESS_CPUTIME_ID = 2;

/**
 * CPU time consumed by the whole process so far, in nanoseconds (user and system): every
 * thread, io_uring's kernel workers included (they belong to the thread group).
 */
export function processCpuNs(): number {
  if (libc.clock_gettime(CLOCK_PROCESS_CPUTIME_ID, timespec) !== 0) fail("clock_gettime", "CLOCK_PROCESS_CPUTIME_ID");
  return (timespec[0]! + timespec[1]! * 2 ** 32) * 1e9 + timespec[2]!;
}

/** `major:minor:inode`: equal for two paths or descriptors exactly when they are the same file. */
export function fileIdentity(status: FileStatus): string {
  return `${status.devMajor}:${status.devMinor}:${status.inode}`;
}
