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
 * Everything lives in one scratch directory, `<tmp>/bounce-bench-disk-XXXXXX`, which names its
 * owner (`owner`: pid and the process's start time). `remove()` unmounts, detaches and deletes,
 * in that order, whatever happens; the command line also calls it on SIGINT/SIGTERM. A run that
 * crashed leaves its directory behind: `reclaimScratchDisks` (run before making a new one) tears
 * down the directories whose owner is gone, with the mounts under them and the loop devices
 * over files in them, and nothing else: no other loop device, mount or file is ever touched.
 *
 * Every kind but `file` needs root (loop devices, mkfs, mount) and the programs it runs;
 * `scratchDiskUnavailable` says why a kind cannot be made here, before anything is made.
 *
 * A loop device made here is the only block device bounce-bench writes (`isScratchLoopDevice`):
 * its backing file is in a live scratch directory of this tool.
 */
import { spawnSync } from "node:child_process";
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, writeSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { BounceBenchError, InvalidInputError } from "../base/errors";
import { closeFd } from "../native";
import { createSparseFile } from "./files";

import { DISK_KINDS, SECTOR_SIZES, type DiskKind, type SectorSize } from "../base/disk-kinds";

export { DISK_KINDS, SECTOR_SIZES, type DiskKind, type SectorSize };

/** Scratch directories of scratch disks start with this, in the temporary directory. */
const PREFIX = "bounce-bench-disk-";

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
  #removed = false;

  private constructor(
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
  ) {}

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
    const parent = options.parent ?? tmpdir();
    reclaimScratchDisks(parent);
    const dir = mkdtempSync(join(parent, PREFIX));
    writeFileSync(join(dir, "owner"), `${process.pid} ${processStartTime(process.pid)}\n`);
    let device: string | null = null;
    let mountPoint: string | null = null;
    try {
      if (kind === "file") {
        const path = join(dir, "disk.bin");
        closeFd(createSparseFile(path, size, {}, "scratch disk"));
        return new ScratchDisk(kind, null, dir, path, size, null, null);
      }
      if (kind !== "tmpfs") {
        const backing = join(dir, "backing.img");
        // Room for the filesystem's own metadata (btrfs keeps two copies of it): the backing file is sparse, so room costs nothing.
        const backingSize = kind === "loop" ? size : Math.max(FILESYSTEM_MINIMUM[kind]!, Math.ceil((size * 1.5 + 256 * 2 ** 20) / 4096) * 4096);
        closeFd(createSparseFile(backing, backingSize, {}, "scratch disk backing file"));
        device = run("losetup", ["--sector-size", String(sector), "--direct-io=on", "--find", "--show", backing]).trim();
        if (kind === "loop") return new ScratchDisk(kind, sector, dir, device, size, device, null);
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
      return new ScratchDisk(kind, kind === "tmpfs" ? null : sector, dir, path, size, device, mountPoint);
    } catch (error) {
      tearDown(dir);
      throw error;
    }
  }

  /** Unmounts, detaches and deletes everything this disk made. Idempotent; never throws. */
  remove(): void {
    if (this.#removed) return;
    this.#removed = true;
    tearDown(this.dir);
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
 * Tears down scratch directories under `parent` whose owner process is gone, with the mounts
 * under them and the loop devices over files in them. Returns the directories reclaimed.
 */
export function reclaimScratchDisks(parent = tmpdir()): string[] {
  const reclaimed: string[] = [];
  let names: string[];
  try {
    names = readdirSync(parent).filter((name) => name.startsWith(PREFIX));
  } catch {
    return reclaimed;
  }
  for (const name of names) {
    const dir = join(parent, name);
    if (ownerAlive(dir)) continue;
    tearDown(dir);
    reclaimed.push(dir);
  }
  return reclaimed;
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
  return match !== null && ownerAlive(match[1]!);
}

/** Unmounts what is mounted under `dir`, detaches loop devices over files in it, deletes it. */
function tearDown(dir: string): void {
  let real: string;
  try {
    real = realpathSync(dir);
  } catch {
    return;
  }
  for (const mountPoint of mountsUnder(real).sort((a, b) => b.length - a.length)) {
    if (spawnSync(findProgram("umount") ?? "umount", [mountPoint]).status !== 0) spawnSync(findProgram("umount") ?? "umount", ["-l", mountPoint]);
  }
  for (const device of loopDevicesOver(real)) spawnSync(findProgram("losetup") ?? "losetup", ["-d", device]);
  // Whatever could not be unmounted stays, rather than deleting through a mount.
  if (mountsUnder(real).length === 0) rmSync(real, { recursive: true, force: true });
}

/** Mount points at or under `dir` (from /proc/self/mountinfo, whose paths escape spaces as \040). */
function mountsUnder(dir: string): string[] {
  let text: string;
  try {
    text = readFileSync("/proc/self/mountinfo", "utf8");
  } catch {
    return [];
  }
  return text
    .split("\n")
    .map((line) => line.split(" ")[4])
    .filter((field): field is string => field !== undefined)
    .map((field) => field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8))))
    .filter((mountPoint) => mountPoint === dir || mountPoint.startsWith(`${dir}/`));
}

/** Loop devices whose backing file lies in `dir`. */
function loopDevicesOver(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync("/sys/block").filter((name) => name.startsWith("loop"));
  } catch {
    return [];
  }
  return names
    .filter((name) => {
      try {
        return readFileSync(`/sys/block/${name}/loop/backing_file`, "utf8").trim().startsWith(`${dir}/`);
      } catch {
        return false;
      }
    })
    .map((name) => `/dev/${name}`);
}

/** Whether the process named in `dir/owner` still runs (the same process: its start time matches). */
function ownerAlive(dir: string): boolean {
  let owner: string[];
  try {
    owner = readFileSync(join(dir, "owner"), "utf8").trim().split(" ");
  } catch {
    // No owner file: a directory being made this instant, or not ours to judge; left alone
    // unless it is old (a crash between mkdtemp and writing the owner).
    return !ownerlessAndStale(dir);
  }
  const pid = Number(owner[0]);
  return Number.isSafeInteger(pid) && pid > 0 && processStartTime(pid) === (owner[1] ?? "");
}

function ownerlessAndStale(dir: string): boolean {
  try {
    return Date.now() - statSync(dir).mtimeMs > 60_000;
  } catch {
    return false;
  }
}

/** Field 22 of /proc/PID/stat (clock ticks since boot when the process started), or "" when there is no such process. */
function processStartTime(pid: number): string {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19] ?? "";
  } catch {
    return "";
  }
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

/** The path of `program` on PATH or in the sbin directories root's PATH has, or null. */
export function findProgram(program: string): string | null {
  const dirs = [...(process.env.PATH ?? "").split(delimiter), "/usr/local/sbin", "/usr/sbin", "/sbin"];
  for (const dir of dirs) {
    if (dir !== "" && existsSync(join(dir, program))) return join(dir, program);
  }
  return null;
}
