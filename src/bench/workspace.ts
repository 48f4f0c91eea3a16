/**
 * The files a benchmark works on, and the promise that it touches nothing else.
 *
 * Without `--disk`, the disk is a scratch disk of `--disk-kind` (`host/scratch-disks`: a file by
 * default; a loop device, a filesystem on one, or a tmpfs) in a fresh scratch directory under
 * the system temporary directory, torn down by `cleanup()` (which the command line also calls on
 * Ctrl-C): unmounted, detached, removed. Without
 * `--guest`, guest memory is a memfd, as VMMs back guest RAM: shmem pages that direct reads can
 * dirty without sending the guest image back to disk through writeback (a guest image on the
 * disk under test would compete with the IO being measured). Workers reach it as
 * `/proc/self/fd/<fd>`. A path the user names is used as it is when it exists, or created when
 * it does not, and is never removed. An existing file that the benchmark would change (the disk under a write workload,
 * the guest image under a read workload, which stores into guest memory) needs `force`.
 *
 * A disk the benchmark creates is filled with data, not left sparse: reading a hole involves no
 * device IO and would measure nothing.
 */
import { closeSync, fsyncSync, openSync, rmSync, writeSync } from "node:fs";
import { resolve } from "node:path";
import { PAGE_SIZE } from "../base/constants";
import { BounceBenchError, InvalidInputError } from "../base/errors";
import { createSparseFile, statusOrNull } from "../host/files";
import { ScratchDisk } from "../host/scratch-disks";
import type { DiskKind, SectorSize } from "../base/disk-kinds";
import { Disk } from "../disk/disk";
import { closeFd, createMemfd, fileIdentity, truncateFd } from "../native";

export interface WorkspaceOptions {
  guestPath?: string;
  diskPath?: string;
  /** Size of a disk the benchmark creates. */
  diskSize: number;
  /** Guest bytes the jobs need. */
  guestBytes: number;
  /** The workload stores to the disk / to guest memory. */
  writesDisk: boolean;
  writesGuest: boolean;
  force: boolean;
  /** [0] set non-zero to stop (a signal). */
  stop?: Int32Array;
  /** Told, before a scratch disk is filled, how to remove the scratch directory (a second signal exits at once). */
  onScratch?: (remove: () => void) => void;
  /** `--align`, checked against the disk's own alignment before anything is filled. */
  alignOverride?: number;
  /** `--mem-align`, likewise. */
  memAlignOverride?: number;
  /** The kind of scratch disk to make when no `diskPath` is given (`file` by default), and its sector size. */
  diskKind?: DiskKind;
  sector?: SectorSize;
  /** Some case needs O_DIRECT: a filesystem without direct IO is refused before anything is filled. */
  needsDirectIo: boolean;
}

const FILL_CHUNK = 1 << 20;

export class BenchWorkspace {
  private constructor(
    readonly guestPath: string,
    readonly diskPath: string,
    readonly diskSize: number,
    /** The scratch disk, torn down by `cleanup`; null when the user named the disk. */
    readonly scratch: ScratchDisk | null,
    /** The memfd behind guest memory when the user named no guest image (closed by `cleanup`). */
    readonly guestMemfd: number | null,
    /** The disk, opened once, before it was filled (closed by `cleanup`). */
    readonly disk: Disk,
  ) {}

  /**
   * Checks the user's files, then creates what is missing. Filling a scratch disk takes a while
   * (seconds per GiB), so it yields to the event loop as it goes: a signal handler can set
   * `stop[0]`, which ends the fill within a few milliseconds (`INTERRUPTED`, scratch removed),
   * and `onScratch` is told how to remove the scratch directory before the fill starts.
   */
  static async prepare(options: WorkspaceOptions): Promise<BenchWorkspace> {
    const needsScratch = options.diskPath === undefined;
    // Check the user's files before creating anything.
    const disk = options.diskPath === undefined ? null : statusOrNull(options.diskPath, "--disk");
    const guest = options.guestPath === undefined ? null : statusOrNull(options.guestPath, "--guest");
    // One file as both would be filled as a disk, then overwritten by what it reads as a guest.
    if (options.diskPath !== undefined && options.guestPath !== undefined) {
      const same = disk !== null && guest !== null ? fileIdentity(disk) === fileIdentity(guest) : resolve(options.diskPath) === resolve(options.guestPath);
      if (same) throw new InvalidInputError(`--guest ${options.guestPath} and --disk ${options.diskPath} are the same file`);
    }
    if (disk !== null) {
      if (disk.type !== "file" && disk.type !== "block-device") {
        throw new InvalidInputError(`--disk ${options.diskPath}: is a ${disk.type}, not a regular file or block device`);
      }
      if (options.writesDisk && !options.force) {
        throw new InvalidInputError(`--disk ${options.diskPath}: exists and a write workload would overwrite it (use --force)`);
      }
    }
    if (guest !== null) {
      if (options.writesGuest && !options.force) {
        throw new InvalidInputError(`--guest ${options.guestPath}: exists and a read workload stores into guest memory (use --force)`);
      }
      if (guest.size < options.guestBytes) {
        throw new InvalidInputError(`--guest ${options.guestPath}: ${guest.size} bytes, the jobs need ${options.guestBytes}`);
      }
    }
    const guestBytes = Math.ceil(options.guestBytes / PAGE_SIZE) * PAGE_SIZE;
    if (!needsScratch && options.diskKind !== undefined && options.diskKind !== "file") {
      throw new InvalidInputError(`--disk-kind ${options.diskKind} makes a scratch disk; it cannot be combined with --disk`);
    }
    const scratch = needsScratch ? ScratchDisk.make({ kind: options.diskKind ?? "file", sector: options.sector, size: options.diskSize }) : null;
    if (scratch !== null) options.onScratch?.(() => scratch.remove());
    let memfd: number | null = null;
    let opened: Disk | null = null;
    try {
      const diskPath = options.diskPath ?? scratch!.path;
      if (disk === null && scratch === null) closeFd(createSparseFile(diskPath, options.diskSize, {}, "--disk"));
      // Opened once, here, before the fill: a disk the cases cannot use is refused before the
      // seconds of filling (an --align below its own, a filesystem without direct IO).
      opened = Disk.open(diskPath, { write: options.writesDisk, direct: false, alignOverride: options.alignOverride, memAlignOverride: options.memAlignOverride });
      if (options.needsDirectIo) opened.setDirect(true);
      if (disk === null && !(await fillDisk(diskPath, options.diskSize, options.stop))) {
        if (scratch === null) rmSync(diskPath, { force: true }); // the user's new file, half filled
        throw new BounceBenchError("INTERRUPTED", `interrupted while filling the disk ${diskPath}`);
      }
      // A disk the kernel says nothing about (no STATX_DIOALIGN: tmpfs, btrfs) was probed while it
      // was all holes, which cannot tell; now that it holds data, ask again.
      if (disk === null && opened.discovered.source === "probe" && opened.discovered.note !== undefined) {
        opened.close();
        opened = Disk.open(diskPath, { write: options.writesDisk, direct: false, alignOverride: options.alignOverride, memAlignOverride: options.memAlignOverride });
        if (options.needsDirectIo) opened.setDirect(true);
      }
      let guestPath: string;
      if (options.guestPath === undefined) {
        memfd = createMemfd("bounce-bench-guest");
        truncateFd(memfd, guestBytes);
        guestPath = `/proc/self/fd/${memfd}`;
      } else {
        guestPath = options.guestPath;
        if (guest === null) closeFd(createSparseFile(guestPath, guestBytes, {}, "--guest"));
      }
      const diskSize = disk === null ? options.diskSize : disk.size;
      return new BenchWorkspace(guestPath, diskPath, diskSize, scratch, memfd, opened);
    } catch (error) {
      opened?.close();
      if (memfd !== null) closeFd(memfd);
      scratch?.remove();
      throw error;
    }
  }

  #cleaned = false;

  /** Tears down the scratch disk (only it) and frees the guest memfd. Idempotent. */
  cleanup(): void {
    if (this.#cleaned) return;
    this.#cleaned = true;
    this.disk.close();
    if (this.guestMemfd !== null) closeFd(this.guestMemfd);
    this.scratch?.remove();
  }
}

/** Chunks written between two looks at the event loop while filling: about 16 MiB. */
const FILL_CHUNKS_PER_YIELD = 16;

/**
 * A new disk file of `size` bytes, every block written with pseudo-random data and synced.
 * Resolves false, with the file removed, if `stop[0]` was set meanwhile (checked every 16 MiB,
 * after letting the event loop run, so a signal handler gets to set it).
 */
export async function createFilledDisk(path: string, size: number, stop?: Int32Array): Promise<boolean> {
  closeFd(createSparseFile(path, size, {}, "--disk"));
  const filled = await fillDisk(path, size, stop);
  if (!filled) rmSync(path, { force: true });
  return filled;
}

/** Fills the existing file or scratch device at `path` as `createFilledDisk` does; false (and left as it is) when stopped. */
async function fillDisk(path: string, size: number, stop?: Int32Array): Promise<boolean> {
  const chunk = new Uint8Array(FILL_CHUNK);
  const words = new Uint32Array(chunk.buffer);
  let x = 0x2545f491;
  const fd = openSync(path, "r+");
  try {
    for (let at = 0, chunks = 0; at < size; at += FILL_CHUNK, chunks++) {
      if (chunks % FILL_CHUNKS_PER_YIELD === 0 && stop !== undefined) {
        await new Promise((resolve) => setImmediate(resolve));
        if (Atomics.load(stop, 0) !== 0) {
          closeSync(fd);
          return false;
        }
      }
      for (let i = 0; i < words.length; i++) {
        x ^= x << 13;
        x ^= x >>> 17;
        x ^= x << 5;
        words[i] = x;
      }
      const len = Math.min(FILL_CHUNK, size - at);
      let done = 0;
      while (done < len) done += writeSync(fd, chunk, done, len - done, at + done);
    }
    fsyncSync(fd);
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (typeof code !== "string" || !code.startsWith("E")) throw error;
    throw new BounceBenchError(code as `E${string}`, `filling the disk ${path} (${size} bytes): ${code} (${(error as Error).message.split(",")[0]})`, { kind: "io", cause: error });
  } finally {
    try {
      closeSync(fd);
    } catch {
      // closed above, when stopped
    }
  }
  return true;
}
