/**
 * Disk: a file or block device opened for IO, with its size and direct-IO alignment.
 *
 * The disk is what the user pointed at: it is never created or resized here. Opening it reports
 * a missing path, a directory or a permission problem as bad input; a disk whose filesystem
 * does no direct IO is refused for `O_DIRECT` with a hint to use `--mode buffered`.
 */
import { overrideAlignment, type DiskAlignment } from "../base/alignment-rules";
import { discoverAlignment, filesystemType } from "./alignment";
import { BounceBenchError, InvalidInputError } from "../base/errors";
import { openUserFile, statusOrNull } from "../host/files";
import { blockDeviceSize, closeFd, O_DIRECT, O_RDONLY, O_RDWR, type FileType } from "../native";

export interface OpenDiskOptions {
  /** Open for writing too. */
  write: boolean;
  /** Open with `O_DIRECT` (every mode but `buffered`). */
  direct: boolean;
  /** `--align`: simulate a disk with this alignment (a power of two). */
  alignOverride?: number;
}

export class Disk implements Disposable {
  #fd: number;

  private constructor(
    readonly path: string,
    fd: number,
    readonly type: FileType,
    readonly size: number,
    /** The alignment the IO is planned against (the override, when there is one). */
    readonly alignment: DiskAlignment,
    /** What the kernel itself reports, whatever the override. */
    readonly discovered: DiskAlignment,
    readonly direct: boolean,
    readonly fsType: string | undefined,
  ) {
    this.#fd = fd;
  }

  static open(path: string, options: OpenDiskOptions): Disk {
    const status = statusOrNull(path);
    if (status === null) throw new BounceBenchError("ENOENT", "input", `disk ${path}: ENOENT (No such file or directory)`);
    if (status.type !== "file" && status.type !== "block-device") {
      throw new InvalidInputError(`disk ${path}: is a ${status.type}, not a regular file or block device`);
    }
    const discovered = discoverAlignment(path, status);
    const alignment = options.alignOverride === undefined ? discovered : overrideAlignment(discovered, options.alignOverride);
    if (options.direct && !discovered.directIo) {
      throw new BounceBenchError(
        "NO_DIRECT_IO",
        "io",
        `disk ${path}: its filesystem does not do direct IO (${discovered.source}: ${discovered.note ?? "no alignment"}); try --mode buffered`,
      );
    }
    const flags = (options.write ? O_RDWR : O_RDONLY) | (options.direct ? O_DIRECT : 0);
    const fd = openUserFile(path, flags, "disk");
    try {
      const size = status.type === "block-device" ? blockDeviceSize(fd) : status.size;
      return new Disk(path, fd, status.type, size, alignment, discovered, options.direct, filesystemType(status));
    } catch (error) {
      closeFd(fd);
      throw error;
    }
  }

  /** The open descriptor; valid until `close`. */
  get fd(): number {
    if (this.#fd < 0) throw new BounceBenchError("RELEASED", "input", `disk ${this.path}: used after close`);
    return this.#fd;
  }

  close(): void {
    if (this.#fd < 0) return;
    const fd = this.#fd;
    this.#fd = -1;
    closeFd(fd);
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
