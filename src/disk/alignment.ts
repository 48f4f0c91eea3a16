/**
 * Direct-IO alignment of a disk (a file or a block device): what the kernel demands of an
 * `O_DIRECT` request's memory addresses (`memAlign`) and of its file offset and length
 * (`offsetAlign`; `readOffsetAlign` for reads, which some filesystems relax).
 *
 * Discovery, in this order, always reported with its source:
 *   1. statx  `STATX_DIOALIGN` (Linux 6.1+), plus `STATX_DIO_READ_ALIGN` (6.14+) for reads.
 *             Zeros mean the file does not support direct IO.
 *   2. blksszget  the logical block size of a block device.
 *   3. probe  empirical, as QEMU does: direct reads at increasing lengths, then at increasing
 *             memory offsets; only EINVAL means "misaligned".
 *   4. override  the user's `--align`, to simulate a stricter disk (a 4Kn disk on a 512 one).
 *
 * Unlike the reference, a regular file is never assumed to have 512-byte alignment.
 */
import { openUserFile } from "../host/files";
import {
  blockDeviceLogicalSize,
  closeFd,
  EINVAL,
  fileFlags,
  IovecArray,
  NativeRegion,
  O_NONBLOCK,
  setFileFlags,
  nextData,
  O_DIRECT,
  O_RDONLY,
  OsError,
  preadv,
  statx,
  type FileStatus,
} from "../native";
import { release } from "node:os";
import { kernelChecks, type DiskAlignment } from "../base/alignment-rules";
import { requireString } from "../base/arguments";

/** How this machine's kernel checks direct IO iovecs (see `kernelChecks`). */
export const RUNNING_KERNEL_CHECKS = kernelChecks(release());

/** Lengths and memory offsets the probe tries, smallest first (QEMU's list). */
const PROBE_ALIGNMENTS = [1, 512, 1024, 2048, 4096];
const PROBE_MAX = PROBE_ALIGNMENTS[PROBE_ALIGNMENTS.length - 1]!;

/**
 * The alignment of a disk, by the first source that knows, asked of an open descriptor (the one
 * `Disk.open` holds, so the answer is about the file that IO goes to) or of a path, which is
 * then opened once for all the questions.
 */
export function discoverAlignment(target: string | number, status?: FileStatus): DiskAlignment {
  return withDescriptor(target, (fd) => discoverOn(fd, status ?? statx(fd)));
}

/**
 * Finds the alignment empirically with direct reads of the file's first data (reading a hole
 * involves no device IO, so it accepts anything). A file with no data, or too short to read
 * `PROBE_MAX` bytes from, cannot tell: the probe then reports the conservative `PROBE_MAX` and
 * says so in `note`. Memory alignment is measured with reads only: probing writes would write
 * to the user's file. Like `discoverAlignment`, on a descriptor or a path opened once.
 */
export function probeAlignment(target: string | number, status?: FileStatus): DiskAlignment {
  return withDescriptor(target, (fd) => probeOn(fd, status ?? statx(fd)));
}

/** Runs `body` on `target`'s descriptor: the given one, or the path opened (without waiting on a FIFO) and closed after. */
function withDescriptor<T>(target: string | number, body: (fd: number) => T): T {
  if (typeof target === "number") return body(target);
  requireString(target, "disk path");
  const fd = openUserFile(target, O_RDONLY | O_NONBLOCK, "disk");
  try {
    return body(fd);
  } finally {
    closeFd(fd);
  }
}

function discoverOn(fd: number, status: FileStatus): DiskAlignment {
  if (status.dio !== null) {
    const { memAlign, offsetAlign, readOffsetAlign } = status.dio;
    if (memAlign === 0 && offsetAlign === 0) {
      return { directIo: false, memAlign: 0, offsetAlign: 0, readOffsetAlign: 0, source: "statx", note: "STATX_DIOALIGN reports no direct IO" };
    }
    return { directIo: true, memAlign, offsetAlign, readOffsetAlign: readOffsetAlign || offsetAlign, source: "statx" };
  }
  if (status.type === "block-device") {
    const size = blockDeviceLogicalSize(fd);
    return { directIo: true, memAlign: size, offsetAlign: size, readOffsetAlign: size, source: "blksszget" };
  }
  return probeOn(fd, status);
}

function probeOn(fd: number, status: FileStatus): DiskAlignment {
  const data = status.type === "file" ? nextData(fd, 0) : 0;
  const at = data === null ? null : Math.floor(data / PROBE_MAX) * PROBE_MAX;
  // The probe reads with O_DIRECT on the caller's descriptor and gives it back as it was.
  const flags = fileFlags(fd);
  try {
    setFileFlags(fd, flags | O_DIRECT);
  } catch (error) {
    if (error instanceof OsError && error.errno === EINVAL) {
      return { directIo: false, memAlign: 0, offsetAlign: 0, readOffsetAlign: 0, source: "probe", note: "O_DIRECT refused: EINVAL" };
    }
    throw error;
  }
  try {
    if (at === null || at + 2 * PROBE_MAX > status.size) {
      const why = at === null ? "the file holds no data (only holes)" : `the file has less than ${2 * PROBE_MAX} bytes of data`;
      const note = `${why}: cannot tell, assuming ${PROBE_MAX}`;
      return { directIo: true, memAlign: PROBE_MAX, offsetAlign: PROBE_MAX, readOffsetAlign: PROBE_MAX, source: "probe", note };
    }
    // Page-aligned memory, so that every memory offset tried is exactly that offset from a page.
    using buffer = NativeRegion.anonymous(4 * PROBE_MAX, "alignment probe buffer");
    using iovecs = new IovecArray(2);
    // Memory offsets are tried with two iovecs in two pages: the block layer lets a call of one
    // iovec inside one page through unchecked (Linux 6.18), which would report an alignment of 1.
    const readsAt = (memoryOffset: number, len: number, pieces: 1 | 2): boolean => {
      iovecs.clear();
      for (let piece = 0; piece < pieces; piece++) iovecs.push((buffer.address(0) as number) + 2 * piece * PROBE_MAX + memoryOffset, len);
      try {
        preadv(fd, iovecs.address(), pieces, at);
        return true;
      } catch (error) {
        if (error instanceof OsError && error.errno === EINVAL) return false;
        throw error;
      }
    };
    const offsetAlign = PROBE_ALIGNMENTS.find((len) => readsAt(0, len, 1)) ?? PROBE_MAX;
    const memAlign = PROBE_ALIGNMENTS.find((offset) => readsAt(offset, offsetAlign, 2)) ?? PROBE_MAX;
    return { directIo: true, memAlign, offsetAlign, readOffsetAlign: offsetAlign, source: "probe" };
  } finally {
    setFileFlags(fd, flags);
  }
}

