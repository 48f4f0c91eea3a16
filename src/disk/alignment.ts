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
 *             memory offsets; only EINVAL means "misaligned" (`direct-io-probe.ts`, which
 *             also probes writes and the page cache for `probe --empirical`).
 *   4. override  the user's `--align`, to simulate a stricter disk (a 4Kn disk on a 512 one).
 *
 * Unlike the reference, a regular file is never assumed to have 512-byte alignment.
 */
import { openUserFile } from "../host/files";
import { blockDeviceLogicalSize, closeFd, nextData, O_NONBLOCK, O_RDONLY, statx, type FileStatus } from "../native";
import { dataToProbe, measureAlignment, PROBE_MAX, PROBE_SPAN, takesDirectIo, withDirect } from "./direct-io-probe";
import type { DiskAlignment } from "../base/alignment-rules";
import { requireString } from "../base/arguments";

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
 * `PROBE_SPAN` bytes from, cannot tell: the probe then reports the conservative `PROBE_MAX` and
 * says so in `note`. Reads only: writes would write to the user's file (`probeDirectIo` probes
 * writes on a scratch file). Like `discoverAlignment`, on a descriptor or a path opened once.
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
  const found = discoverFrom(fd, status);
  return status.type === "block-device" ? { ...found, blockDevice: true } : found;
}

function discoverFrom(fd: number, status: FileStatus): DiskAlignment {
  if (status.dio !== null) {
    const { memAlign, offsetAlign, readOffsetAlign } = status.dio;
    if (memAlign === 0 && offsetAlign === 0) {
      return { directIo: false, memAlign: 0, offsetAlign: 0, readOffsetAlign: 0, source: "statx", note: "STATX_DIOALIGN reports no direct IO" };
    }
    const sources = {
      memAlign: "statx STATX_DIOALIGN",
      offsetAlign: "statx STATX_DIOALIGN",
      readOffsetAlign: readOffsetAlign
        ? "statx STATX_DIO_READ_ALIGN"
        : "statx STATX_DIOALIGN (no STATX_DIO_READ_ALIGN: as writes)",
    };
    return { directIo: true, memAlign, offsetAlign, readOffsetAlign: readOffsetAlign || offsetAlign, source: "statx", sources };
  }
  if (status.type === "block-device") {
    const size = blockDeviceLogicalSize(fd);
    const block = "BLKSSZGET (the logical block size)";
    const sources = { memAlign: `${block}; the DMA alignment may be smaller`, offsetAlign: block, readOffsetAlign: block };
    return { directIo: true, memAlign: size, offsetAlign: size, readOffsetAlign: size, source: "blksszget", sources };
  }
  return probeOn(fd, status);
}

function probeOn(fd: number, status: FileStatus): DiskAlignment {
  if (!takesDirectIo(fd)) {
    return { directIo: false, memAlign: 0, offsetAlign: 0, readOffsetAlign: 0, source: "probe", note: "O_DIRECT refused: EINVAL" };
  }
  const at = dataToProbe(fd, status);
  if (at === null) {
    const why = nextData(fd, 0) === null ? "the file holds no data (only holes)" : `the file has less than ${PROBE_SPAN} bytes of data`;
    const note = `${why}: cannot tell, assuming ${PROBE_MAX}`;
    const assumed = `assumed (${why})`;
    const sources = { memAlign: assumed, offsetAlign: assumed, readOffsetAlign: assumed };
    return { directIo: true, memAlign: PROBE_MAX, offsetAlign: PROBE_MAX, readOffsetAlign: PROBE_MAX, source: "probe", note, sources };
  }
  const { offsetAlign, memAlign } = withDirect(fd, () => measureAlignment(fd, "read", at));
  const measured = `empirical probe: direct reads of the data at ${at}`;
  const sources = { memAlign: `${measured} (two iovecs in two pages)`, offsetAlign: `${measured}; writes assumed alike`, readOffsetAlign: measured };
  return { directIo: true, memAlign, offsetAlign, readOffsetAlign: offsetAlign, source: "probe", sources };
}
