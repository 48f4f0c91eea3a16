/**
 * Disk: a file or block device opened for IO, with its size and direct-IO alignment.
 *
 * The disk is what the user pointed at: it is never created or resized here. Its path is opened
 * once; everything else (its type, size, alignment, the empirical probe, whether it takes
 * `O_DIRECT`) is asked of that descriptor, so every answer is about the file the IO goes to,
 * even if the path is renamed or replaced meanwhile. Opening reports a missing path, a
 * directory or a permission problem as bad input; a disk whose filesystem does no direct IO is
 * refused for `O_DIRECT` with a hint to use `--mode buffered`.
 *
 * Ownership: the Disk that opened the descriptor closes it (`close`, `using`). Bun Workers of
 * the same process reach the same descriptor with `Disk.adopt(disk.shared())`: the adopted Disk
 * never closes it, so the owner must outlive them. `O_DIRECT` belongs to the descriptor, so
 * `setDirect` changes it for every adopter at once (the benchmark's cases switch it between
 * cases, never during one).
 */
import { isScratchLoopDevice } from "../host/scratch-disks";
import { deviceInUse } from "../host/block-devices";
import { overrideAlignment, parseAlignment, type DiskAlignment } from "../base/alignment-rules";
import { BounceBenchError, InvalidInputError } from "../base/errors";
import { openUserFile } from "../host/files";
import { blockDeviceSize, closeFd, EINVAL, fileFlags, fileIdentity, O_DIRECT, O_NOATIME, O_NOFOLLOW, O_NONBLOCK, O_RDONLY, O_RDWR, OsError, setFileFlags, statx, type FileType } from "../native";
import { lstatSync } from "node:fs";
import { filesystemType } from "../host/files";
import { discoverAlignment } from "./alignment";
import { measureKernelChecks, type MeasuredKernelChecks, type SubmissionMethod } from "./direct-io-probe";
import { requireObject, requireString } from "../base/arguments";

export interface OpenDiskOptions {
  /** Open for writing too. */
  write: boolean;
  /** Open with `O_DIRECT` (every mode but `buffered`). */
  direct: boolean;
  /** `--align`: simulate a disk with blocks of this size (a power of two, at least the disk's own). */
  alignOverride?: number;
  /** `--mem-align`: simulate a disk with this memory alignment (at least the disk's own). */
  memAlignOverride?: number;
  /**
   * `--overwrite-device`: a write may go to a block device bounce-bench did not make, if nothing
   * uses it (`deviceInUse`). Without it only its own scratch loop devices are written.
   */
  overwriteDevice?: boolean;
}

/** What another thread needs to use an open Disk (plain data, for postMessage). */
export interface SharedDisk {
  path: string;
  fd: number;
  type: FileType;
  size: number;
  alignment: DiskAlignment;
  discovered: DiskAlignment;
  direct: boolean;
  fsType: string | undefined;
  fileId: string;
  /** The kernel's measured checks, per submission method measured so far. */
  kernelChecks: KernelChecksByMethod;
}

/** Measured kernel checks, by how iovecs reach the kernel (`SubmissionMethod`). */
export type KernelChecksByMethod = Partial<Record<SubmissionMethod, MeasuredKernelChecks>>;

export class Disk implements Disposable {
  #fd: number;
  #direct: boolean;
  readonly #kernelChecks: KernelChecksByMethod;

  private constructor(
    readonly path: string,
    fd: number,
    readonly type: FileType,
    readonly size: number,
    /** The alignment the IO is planned against (the override, when there is one). */
    readonly alignment: DiskAlignment,
    /** What the kernel itself reports, whatever the override. */
    readonly discovered: DiskAlignment,
    direct: boolean,
    readonly fsType: string | undefined,
    /** Whether `close` closes the descriptor (false for an adopted one). */
    readonly owner: boolean,
    /** Which file this is (`fileIdentity`): to tell it apart from the guest image. */
    readonly fileId: string,
    kernelChecks: KernelChecksByMethod,
  ) {
    this.#fd = fd;
    this.#direct = direct;
    this.#kernelChecks = { ...kernelChecks };
  }

  static open(path: string, options: OpenDiskOptions): Disk {
    requireString(path, "disk path");
    requireObject(options, "Disk.open options");
    // O_NONBLOCK: a FIFO or a device must not make the open wait; it is cleared once the type is known.
    let fd: number;
    try {
      // Never written through a symlink, even with --force: the file written is the one named.
      fd = openUserFile(path, (options.write ? O_RDWR | O_NOFOLLOW : O_RDONLY) | O_NONBLOCK, "disk");
    } catch (error) {
      // A directory cannot be opened for writing at all; say what it is, as for reading.
      if (error instanceof BounceBenchError && error.code === "EISDIR") throw notADisk(path, "directory");
      if (error instanceof BounceBenchError && error.code === "ELOOP" && isSymlink(path)) {
        throw new InvalidInputError(`disk ${path}: is a symbolic link; bounce-bench writes no disk through one (name the file it points to)`);
      }
      throw error;
    }
    try {
      const status = statx(fd);
      if (status.type !== "file" && status.type !== "block-device") {
        throw notADisk(path, status.type);
      }
      // Block devices written: the loop devices bounce-bench made over its own scratch files,
      // and one the user gives up with --overwrite-device when nothing uses it; any other is
      // refused before any IO (reading one is harmless).
      if (status.type === "block-device" && options.write && !isScratchLoopDevice(`${status.rdevMajor}:${status.rdevMinor}`)) {
        if (options.overwriteDevice !== true) {
          throw new InvalidInputError(
            `disk ${path}: a block device bounce-bench did not make, and a write destroys what it holds; --overwrite-device allows it (--force does not), unless it is mounted, swap, partitioned, held by another device or under a loop device`,
          );
        }
        const inUse = deviceInUse(status.rdevMajor, status.rdevMinor);
        if (inUse !== null) throw new InvalidInputError(`disk ${path}: not overwritten, even with --overwrite-device: ${inUse}`);
      }
      setFileFlags(fd, fileFlags(fd) & ~O_NONBLOCK);
      keepAccessTime(fd);
      const discovered = discoverAlignment(fd, status);
      const { alignOverride, memAlignOverride } = options;
      const alignment =
        alignOverride === undefined && memAlignOverride === undefined
          ? discovered
          : overrideAlignment(
              discovered,
              alignOverride === undefined ? undefined : parseAlignment(alignOverride, "--align"),
              memAlignOverride === undefined ? undefined : parseAlignment(memAlignOverride, "--mem-align"),
            );
      const size = status.type === "block-device" ? blockDeviceSize(fd) : status.size;
      const disk = new Disk(path, fd, status.type, size, alignment, discovered, false, filesystemType(status), true, fileIdentity(status), {});
      if (options.direct) disk.setDirect(true);
      return disk;
    } catch (error) {
      closeFd(fd);
      throw error;
    }
  }

  /** The Disk another thread opened, over the same descriptor (see the module doc). */
  static adopt(shared: SharedDisk): Disk {
    return new Disk(shared.path, shared.fd, shared.type, shared.size, shared.alignment, shared.discovered, shared.direct, shared.fsType, false, shared.fileId, shared.kernelChecks);
  }

  /** This disk as plain data for `Disk.adopt` in a Worker. */
  shared(): SharedDisk {
    return {
      path: this.path,
      fd: this.fd,
      type: this.type,
      size: this.size,
      alignment: this.alignment,
      discovered: this.discovered,
      direct: this.#direct,
      fsType: this.fsType,
      fileId: this.fileId,
      // A simulated disk's refusals need them: measured here, once, so that no Worker sets
      // O_DIRECT on the shared descriptor to measure them while others do IO on it.
      kernelChecks: this.alignment.source === "override" ? { vectored: this.kernelChecksFor("vectored"), fixed: this.kernelChecksFor("fixed") } : { ...this.#kernelChecks },
    };
  }

  /**
   * What the running kernel checks of direct IO on this disk beyond the documented rule,
   * measured on first use with a few direct reads of its data (`measureKernelChecks`), against
   * the disk's own alignment, whatever the override. What `--align`'s simulated disk answers.
   */
  get kernelChecks(): MeasuredKernelChecks {
    return this.kernelChecksFor("vectored");
  }

  /** The same, for iovecs that reach the kernel by `method` (io_uring's registered buffers: `fixed`). */
  kernelChecksFor(method: SubmissionMethod): MeasuredKernelChecks {
    this.#kernelChecks[method] ??= measureKernelChecks(this.fd, statx(this.fd), this.discovered, method);
    return this.#kernelChecks[method];
  }

  /** Whether IO bypasses the page cache (`O_DIRECT`). */
  get direct(): boolean {
    return this.#direct;
  }

  /** Turns `O_DIRECT` on or off for the descriptor (for every Disk sharing it). */
  setDirect(direct: boolean): void {
    if (direct && !this.discovered.directIo) throw this.#noDirectIo(this.discovered.note ?? "no alignment");
    const flags = fileFlags(this.fd);
    try {
      setFileFlags(this.fd, direct ? flags | O_DIRECT : flags & ~O_DIRECT);
    } catch (error) {
      if (error instanceof OsError && error.errno === EINVAL) throw this.#noDirectIo("O_DIRECT refused: EINVAL");
      throw error;
    }
    this.#direct = direct;
  }

  /** The open descriptor; valid until `close`. */
  get fd(): number {
    if (this.#fd < 0) throw new BounceBenchError("RELEASED", `disk ${this.path}: used after close`);
    return this.#fd;
  }

  /** Closes the descriptor if this Disk opened it; an adopted Disk only stops using it. Idempotent. */
  close(): void {
    if (this.#fd < 0) return;
    const fd = this.#fd;
    this.#fd = -1;
    if (this.owner) closeFd(fd);
  }

  [Symbol.dispose](): void {
    this.close();
  }

  #noDirectIo(why: string): BounceBenchError {
    return new BounceBenchError(
      "NO_DIRECT_IO", `disk ${this.path}: its filesystem does not do direct IO (${this.discovered.source}: ${why}); try --mode buffered`,
    );
  }
}

function isSymlink(path: string): boolean {
  try {
    return lstatSync(path).isSymbolicLink();
  } catch {
    return false;
  }
}

function notADisk(path: string, type: FileType): InvalidInputError {
  return new InvalidInputError(`disk ${path}: is a ${type}, not a regular file or block device`);
}

/**
 * Reads through `fd` leave the disk's access time as it was (O_NOATIME, as fio opens block
 * devices): the tool changes nothing of a disk it only reads, and the kernel skips the atime
 * check on every IO. Where only the owner may ask it (EPERM), reads update atime as usual.
 */
function keepAccessTime(fd: number): void {
  try {
    setFileFlags(fd, fileFlags(fd) | O_NOATIME);
  } catch (error) {
    if (!(error instanceof OsError && error.code === "EPERM")) throw error;
  }
}
