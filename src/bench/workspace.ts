/**
 * The files a benchmark works on, and the promise that it touches nothing else.
 *
 * Without `--disk`, the disk is a scratch disk of `--disk-kind` (`host/scratch-disks`: a file by
 * default; a loop device, a filesystem on one, or a tmpfs) in a fresh scratch directory under
 * the system temporary directory, torn down by `cleanup()` (which the command line also calls on
 * Ctrl-C): unmounted, detached, removed. Without
 * `--guest`, guest memory is of `--guest-backing` (`guest-backing.ts`): by default a memfd, as
 * VMMs back guest RAM: shmem pages that direct reads can dirty without sending the guest image
 * back to disk through writeback (a guest image on the disk under test would compete with the IO
 * being measured). Workers reach a memfd, a hugetlbfs memfd or an unnamed temporary file as
 * `/proc/self/fd/<fd>`, and anonymous THP memory at its address (`GuestSource`). A path the user names is used as it is when it exists, or created when
 * it does not, and is never removed. An existing file that the benchmark would change (the disk under a write workload,
 * the guest image under a read workload, which stores into guest memory) needs `force`.
 *
 * A disk the benchmark creates is filled with data, not left sparse: reading a hole involves no
 * device IO and would measure nothing.
 */
import { closeSync, fsyncSync, openSync, rmSync, writeSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { PAGE_SIZE } from "../base/constants";
import { BounceBenchError, InvalidInputError } from "../base/errors";
import { createSparseFile, statusOrNull } from "../host/files";
import { checkResources, type Need } from "../host/resources";
import { ScratchDisk } from "../host/scratch-disks";
import type { DiskKind, SectorSize } from "../base/disk-kinds";
import { Disk } from "../disk/disk";
import { tmpdir } from "node:os";
import { closeFd, createMemfd, fileIdentity, NativeRegion, O_RDWR, openTemporaryFile, truncateFd } from "../native";
import { guestBackingUnavailable, HUGETLB_PAGE_SIZE, type GuestBacking } from "./guest-backing";

/**
 * Where a Worker finds guest memory: a file it maps (`path`: an image, or `/proc/self/fd/<fd>`),
 * or anonymous memory the main thread mapped and keeps until the Workers are gone (`address`).
 */
export type GuestSource = { path: string } | { address: number; size: number };

export interface WorkspaceOptions {
  guestPath?: string;
  diskPath?: string;
  /** Size of a disk the benchmark creates. */
  diskSize: number;
  /** Guest bytes the jobs need. */
  guestBytes: number;
  /** The workload stores to the disk / to guest memory. */
  writesDisk: boolean;
  /** A block device named by --disk may be written (`OpenDiskOptions.overwriteDevice`). */
  overwriteDevice?: boolean;
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
  /** What backs guest memory when no `guestPath` is given (`memfd` by default). */
  guestBacking?: GuestBacking;
  /** Check the memory and space the run takes against what the host has (`host/resources.ts`); true by default. */
  resourceCheck?: boolean;
}

const FILL_CHUNK = 1 << 20;

/** What a run will take from the host before anything is made: the disk it fills, guest memory, a tmpfs. */
function resourceNeeds(options: WorkspaceOptions, newDisk: boolean, newGuest: boolean, guestBytes: number): Need[] {
  const needs: Need[] = [];
  const kind = options.diskKind ?? "file";
  if (newDisk) {
    if (options.diskPath === undefined && kind === "tmpfs") needs.push({ what: "a tmpfs disk", bytes: options.diskSize });
    else needs.push({ what: "the disk it fills", bytes: options.diskSize, where: options.diskPath === undefined ? tmpdir() : dirname(resolve(options.diskPath)) });
  }
  if (options.guestPath !== undefined) {
    if (newGuest) needs.push({ what: "the guest image", bytes: guestBytes, where: dirname(resolve(options.guestPath)) });
  } else if ((options.guestBacking ?? "memfd") === "file") needs.push({ what: "guest memory in a file", bytes: guestBytes, where: tmpdir() });
  else needs.push({ what: "guest memory", bytes: guestBytes });
  return needs;
}

export class BenchWorkspace {
  private constructor(
    readonly guest: GuestSource,
    /** What backs guest memory: the backing made, or `file` for the user's `--guest`. */
    readonly guestBacking: GuestBacking,
    readonly diskPath: string,
    readonly diskSize: number,
    /** The scratch disk, torn down by `cleanup`; null when the user named the disk. */
    readonly scratch: ScratchDisk | null,
    /** What the workspace made for guest memory: a descriptor (memfd, unnamed file) or a mapping, freed by `cleanup`. */
    readonly guestOwned: { fd: number } | { region: NativeRegion } | null,
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
    if (options.guestPath === undefined) {
      const unavailable = guestBackingUnavailable(options.guestBacking ?? "memfd", options.guestBytes);
      if (unavailable !== null) throw new BounceBenchError("GUEST_BACKING_UNAVAILABLE", `--guest-backing ${options.guestBacking}: ${unavailable}`);
    }
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
      // A block device is given up with --overwrite-device, never --force (Disk.open says so).
      if (options.writesDisk && !options.force && disk.type === "file") {
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
    if (options.resourceCheck !== false) checkResources(resourceNeeds(options, disk === null, guest === null, guestBytes));
    const scratch = needsScratch ? ScratchDisk.make({ kind: options.diskKind ?? "file", sector: options.sector, size: options.diskSize }) : null;
    if (scratch !== null) options.onScratch?.(() => scratch.remove());
    let guestOwned: { fd: number } | { region: NativeRegion } | null = null;
    let opened: Disk | null = null;
    try {
      const diskPath = options.diskPath ?? scratch!.path;
      if (disk === null && scratch === null) closeFd(createSparseFile(diskPath, options.diskSize, {}, "--disk"));
      // Opened once, here, before the fill: a disk the cases cannot use is refused before the
      // seconds of filling (an --align below its own, a filesystem without direct IO).
      opened = Disk.open(diskPath, { write: options.writesDisk, direct: false, alignOverride: options.alignOverride, memAlignOverride: options.memAlignOverride, overwriteDevice: options.overwriteDevice });
      if (options.needsDirectIo) opened.setDirect(true);
      if (disk === null && !(await fillDisk(diskPath, options.diskSize, options.stop))) {
        if (scratch === null) rmSync(diskPath, { force: true }); // the user's new file, half filled
        throw new BounceBenchError("INTERRUPTED", `interrupted while filling the disk ${diskPath}`);
      }
      // A disk the kernel says nothing about (no STATX_DIOALIGN: tmpfs, btrfs) was probed while it
      // was all holes, which cannot tell; now that it holds data, ask again.
      if (disk === null && opened.discovered.source === "probe" && opened.discovered.note !== undefined) {
        opened.close();
        opened = Disk.open(diskPath, { write: options.writesDisk, direct: false, alignOverride: options.alignOverride, memAlignOverride: options.memAlignOverride, overwriteDevice: options.overwriteDevice });
        if (options.needsDirectIo) opened.setDirect(true);
      }
      const backing = options.guestPath === undefined ? (options.guestBacking ?? "memfd") : "file";
      let source: GuestSource;
      if (options.guestPath !== undefined) {
        source = { path: options.guestPath };
        if (guest === null) closeFd(createSparseFile(options.guestPath, guestBytes, {}, "--guest"));
      } else if (backing === "thp") {
        const region = NativeRegion.anonymous(guestBytes, "guest memory (transparent huge pages)", true);
        guestOwned = { region };
        source = { address: region.address(0) as number, size: guestBytes };
      } else {
        // memfd and hugetlb: memory files; file: an unnamed file in the temporary directory,
        // which no crash can leave behind.
        const fd = backing === "file" ? openTemporaryFile(tmpdir(), O_RDWR) : createMemfd("bounce-bench-guest", backing === "hugetlb");
        guestOwned = { fd };
        truncateFd(fd, backing === "hugetlb" ? Math.ceil(guestBytes / HUGETLB_PAGE_SIZE) * HUGETLB_PAGE_SIZE : guestBytes);
        source = { path: `/proc/self/fd/${fd}` };
      }
      // The opened disk's size: a block device's from BLKGETSIZE64 (stat says 0 for one).
      const diskSize = disk === null ? options.diskSize : opened.size;
      return new BenchWorkspace(source, backing, diskPath, diskSize, scratch, guestOwned, opened);
    } catch (error) {
      opened?.close();
      freeGuest(guestOwned);
      scratch?.remove();
      throw error;
    }
  }

  /** Bytes of guest memory on huge pages now: the THP mapping's, all of a hugetlb memfd, none otherwise. */
  guestHugePageBytes(): number {
    if (this.guestOwned !== null && "region" in this.guestOwned) return this.guestOwned.region.hugePageBytes();
    return this.guestBacking === "hugetlb" && "path" in this.guest ? statusOrNull(this.guest.path)?.size ?? 0 : 0;
  }

  #cleaned = false;

  /** Tears down the scratch disk (only it) and frees the guest memfd. Idempotent. */
  cleanup(): void {
    if (this.#cleaned) return;
    this.#cleaned = true;
    this.disk.close();
    freeGuest(this.guestOwned);
    this.scratch?.remove();
  }
}

function freeGuest(owned: { fd: number } | { region: NativeRegion } | null): void {
  if (owned === null) return;
  if ("fd" in owned) closeFd(owned.fd);
  else owned.region.release();
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
export async function fillDisk(path: string, size: number, stop?: Int32Array): Promise<boolean> {
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
