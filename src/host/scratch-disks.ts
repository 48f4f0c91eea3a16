/**
 * Scratch disks of a kind: real disks bounce-bench makes for an experiment, and removes after.
 *
 *   file    a file in a scratch directory on the temporary directory's filesystem
 *   loop    a loop device (`losetup --direct-io=on`) over a scratch backing file: a real block
 *           device with 512-byte or 4096-byte logical sectors (a 4Kn disk)
 *   ext4, xfs, btrfs
 *           that filesystem made on such a loop device and mounted in the scratch directory;
 *           the disk is a file on it
 *   tmpfs   a tmpfs mounted in the scratch directory; the disk is a file on it
 *
 * Everything lives in one scratch directory of ours, `<tmp>/bounce-bench-disk-XXXXXX`
 * (`ScratchDir`: marked, and locked for the run's life). `remove()` unmounts, detaches and
 * deletes, in that order, whatever happens; the command line also calls it on SIGINT/SIGTERM.
 * A run that crashed leaves its directory behind: the next one reclaims it (`ScratchDir.make`
 * first runs `reclaimScratchDirs`), with the mounts under it and the loop devices over files in
 * it, and nothing else: no other loop device, mount or file is ever touched.
 *
 * Every kind but `file` needs root (loop devices, mkfs, mount) and the programs it runs;
 * `scratchDiskUnavailable` says why a kind cannot be made here, before anything is made.
 *
 * A loop device made here is the only block device bounce-bench writes (`isScratchLoopDevice`):
 * its backing file is in a live scratch directory of this tool.
 */
import { spawnSync } from "node:child_process";
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, writeSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BounceBenchError, InvalidInputError } from "../base/errors";
import { closeFd } from "../native";
import { createSparseFile } from "./files";
import { findProgram, isLiveScratchDir, ScratchDir } from "./scratch-dir";

import { DISK_KINDS, SECTOR_SIZES, type DiskKind, type SectorSize } from "../base/disk-kinds";

export { DISK_KINDS, SECTOR_SIZES, type DiskKind, type SectorSize };


/** Smallest backing file each filesystem's mkfs accepts (xfsprogs 5.19+: 300 MiB), with room. */
const FILESYSTEM_MINIMUM: Record<string, number> = { ext4: 64 * 2 ** 20, xfs: 320 * 2 ** 20, btrfs: 512 * 2 ** 20 };

const MKFS: Record<string, string[]> = {
  ext4: ["mkfs.ext4", "-q", "-F", "-b", "4096"],
  xfs: ["mkfs.xfs", "-q", "-f"],
  btrfs: ["mkfs.btrfs", "-q", "-f"],
};

export interface ScratchDiskOptions {
  kind: DiskKind;
  /** Logical sector size of the loop device (loop and filesystem kinds); 512 by default. */
  sector?: SectorSize;
  /** Size of the disk in bytes (the device, or the file on the filesystem). */
  size: number;
  /** Where the scratch directory goes; the system temporary directory by default. */
  parent?: string;
  /**
   * Write the disk file with zeros, then clone it (`cp --reflink=always`), so that its blocks
   * are shared and writes to it copy on write (xfs, btrfs).
   */
  reflink?: boolean;
}

export class ScratchDisk implements Disposable {
  readonly #scratch: ScratchDir;

  private constructor(
    scratch: ScratchDir,
    readonly kind: DiskKind,
    readonly sector: SectorSize | null,
    /** The scratch directory holding everything. */
    readonly dir: string,
    /** The path to do IO on: the loop device, or the disk file. */
    readonly path: string,
    /** Size of the disk in bytes. */
    readonly size: number,
    /** The loop device made, if any. */
    readonly device: string | null,
    /** Where a filesystem is mounted, if any. */
    readonly mountPoint: string | null,
  ) {
    this.#scratch = scratch;
  }

  /**
   * Makes a scratch disk of `options.kind` (first reclaiming crashed runs' leftovers). The disk
   * file of the file-backed kinds is sparse: the caller fills it.
   */
  static make(options: ScratchDiskOptions): ScratchDisk {
    const { kind, size } = options;
    const sector = options.sector ?? 512;
    if (!DISK_KINDS.includes(kind)) throw new InvalidInputError(`disk kind ${JSON.stringify(kind)} is not one of ${DISK_KINDS.join(", ")}`);
    if (!SECTOR_SIZES.includes(sector)) throw new InvalidInputError(`sector size ${sector} is not one of ${SECTOR_SIZES.join(", ")}`);
    const unit = kind === "file" ? 512 : 4096;
    if (!(Number.isSafeInteger(size) && size > 0 && size % unit === 0)) throw new InvalidInputError(`scratch disk size ${size} is not a positive multiple of ${unit}`);
    const unavailable = scratchDiskUnavailable(kind);
    if (unavailable !== null) throw new BounceBenchError("DISK_KIND_UNAVAILABLE", `disk kind ${kind}: ${unavailable}`);
    const scratch = ScratchDir.make("disk", options.parent ?? tmpdir());
    const dir = scratch.path;
    let device: string | null = null;
    let mountPoint: string | null = null;
    try {
      if (kind === "file") {
        const path = join(dir, "disk.bin");
        closeFd(createSparseFile(path, size, {}, "scratch disk"));
        return new ScratchDisk(scratch, kind, null, dir, path, size, null, null);
      }
      if (kind !== "tmpfs") {
        const backing = join(dir, "backing.img");
        // Room for the filesystem's own metadata (btrfs keeps two copies of it): the backing file is sparse, so room costs nothing.
        const backingSize = kind === "loop" ? size : Math.max(FILESYSTEM_MINIMUM[kind]!, Math.ceil((size * 1.5 + 256 * 2 ** 20) / 4096) * 4096);
        closeFd(createSparseFile(backing, backingSize, {}, "scratch disk backing file"));
        device = run("losetup", ["--sector-size", String(sector), "--direct-io=on", "--find", "--show", backing]).trim();
        if (kind === "loop") return new ScratchDisk(scratch, kind, sector, dir, device, size, device, null);
        run(MKFS[kind]![0]!, [...MKFS[kind]!.slice(1), device]);
      }
      mountPoint = join(dir, "mnt");
      mkdirSync(mountPoint);
      if (kind === "tmpfs") run("mount", ["-t", "tmpfs", "-o", `size=${size + 16 * 2 ** 20},mode=0700`, "tmpfs", mountPoint]);
      else run("mount", [device!, mountPoint]);
      const path = join(mountPoint, "disk.bin");
      closeFd(createSparseFile(path, size, {}, "scratch disk"));
      if (options.reflink) {
        if (kind !== "xfs" && kind !== "btrfs") throw new InvalidInputError(`reflink needs a filesystem that clones files (xfs, btrfs), not ${kind}`);
        writeZeros(path, size);
        run("cp", ["--reflink=always", path, join(mountPoint, "clone.bin")]);
      }
      return new ScratchDisk(scratch, kind, kind === "tmpfs" ? null : sector, dir, path, size, device, mountPoint);
    } catch (error) {
      scratch.remove();
      throw error;
    }
  }

  /** Unmounts, detaches and deletes everything this disk made. Idempotent; never throws. */
  remove(): void {
    this.#scratch.remove();
  }

  [Symbol.dispose](): void {
    this.remove();
  }
}

/** Why `kind` cannot be made on this machine (not root, a program missing), or null when it can. */
export function scratchDiskUnavailable(kind: DiskKind): string | null {
  if (kind === "file") return null;
  if (process.getuid?.() !== 0) return "needs root (loop devices and mounts)";
  const programs = kind === "tmpfs" ? ["mount", "umount"] : kind === "loop" ? ["losetup"] : ["losetup", "mount", "umount", MKFS[kind]![0]!];
  const missing = programs.filter((program) => findProgram(program) === null);
  if (missing.length > 0) return `needs ${missing.join(", ")} (not found on PATH or in /sbin, /usr/sbin)`;
  if (kind !== "tmpfs" && !existsSync("/dev/loop-control")) return "needs loop devices (/dev/loop-control is missing)";
  return null;
}

/**
 * Whether the block device `MAJOR:MINOR` is a loop device made by a live bounce-bench: its
 * backing file lies in a scratch directory whose owner still runs. The only block devices
 * bounce-bench writes.
 */
export function isScratchLoopDevice(device: string): boolean {
  let backing: string;
  try {
    backing = readFileSync(`/sys/dev/block/${device}/loop/backing_file`, "utf8").trim();
  } catch {
    return false;
  }
  const match = /^(.*\/bounce-bench-disk-[^/]+)\/backing\.img$/.exec(backing);
  return match !== null && isLiveScratchDir(match[1]!);
}

/** Writes `size` zero bytes over the file at `path` and syncs it: its blocks become real extents. */
function writeZeros(path: string, size: number): void {
  const fd = openSync(path, "r+");
  try {
    const zeros = new Uint8Array(1 << 20);
    for (let at = 0; at < size; ) at += writeSync(fd, zeros, 0, Math.min(zeros.length, size - at), at);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Runs `program` and returns its stdout; a failure is a DISK_KIND_UNAVAILABLE error with its stderr. */
function run(program: string, args: string[]): string {
  const result = spawnSync(findProgram(program) ?? program, args, { encoding: "utf8" });
  if (result.status !== 0) {
    const why = (result.stderr || result.error?.message || `exit ${result.status}`).trim().split("\n")[0];
    throw new BounceBenchError("DISK_KIND_UNAVAILABLE", `${program} ${args.join(" ")}: ${why}`);
  }
  return result.stdout;
}
