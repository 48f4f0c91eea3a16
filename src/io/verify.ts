/**
 * Verification of an IO by an independent path: the disk bytes are read back with plain
 * buffered reads (node:fs), not through the engine that did the IO, and compared with the
 * guest bytes of the segments, in order.
 */
import { closeSync, openSync, readSync } from "node:fs";
import { BounceBenchError } from "../base/errors";
import { PAGE_SIZE } from "../base/constants";
import type { GuestMemory } from "../memory/guest-memory";
import type { PagedRange } from "../memory/paged-range";
import { RequestBuffers } from "../memory/request-buffers";
import { closeFd, EINVAL, IovecArray, NativeRegion, O_DIRECT, O_RDONLY, openFile, OsError, preadv } from "../native";

/** Where disk and guest first disagree. */
export interface Mismatch {
  /** Offset into the IO (the segments' concatenated bytes). */
  offset: number;
  diskOffset: number;
  disk: number;
  guest: number;
}

/** The disk bytes `[at, at+len)` of the file at `path`, read with ordinary buffered reads. */
export function readDiskBytes(path: string, at: number, len: number): Uint8Array {
  const bytes = new Uint8Array(len);
  const fd = openSync(path, "r");
  try {
    let done = 0;
    while (done < len) {
      const n = readSync(fd, bytes, done, len - done, at + done);
      if (n === 0) break;
      done += n;
    }
  } finally {
    closeSync(fd);
  }
  return bytes;
}

/** The segments' guest bytes, concatenated. */
export function guestBytes(memory: GuestMemory, segments: readonly PagedRange[]): Uint8Array {
  const total = segments.reduce((sum, segment) => sum + segment.len, 0);
  const bytes = new Uint8Array(total);
  let at = 0;
  for (const segment of segments) {
    new RequestBuffers(memory, segment, false).reader().read(bytes.subarray(at, at + segment.len));
    at += segment.len;
  }
  return bytes;
}

/** The first difference between disk bytes from `at` and the segments' guest bytes, or null. */
export function compareDiskWithGuest(path: string, at: number, memory: GuestMemory, segments: readonly PagedRange[]): Mismatch | null {
  const guest = guestBytes(memory, segments);
  const disk = readDiskBytes(path, at, guest.length);
  for (let i = 0; i < guest.length; i++) {
    if (disk[i] !== guest[i]) return { offset: i, diskOffset: at + i, disk: disk[i]!, guest: guest[i]! };
  }
  return null;
}

export class MismatchError extends BounceBenchError {
  constructor(readonly mismatch: Mismatch) {
    super(
      "MISMATCH", `verify: disk and guest differ at byte ${mismatch.offset} of the IO (disk offset ${mismatch.diskOffset}): disk 0x${mismatch.disk.toString(16).padStart(2, "0")}, guest 0x${mismatch.guest.toString(16).padStart(2, "0")}`,
    );
  }
}

/** Bytes a fingerprint chunk covers. */
const FINGERPRINT_CHUNK = 2 ** 20;

/**
 * A fingerprint of disk bytes `[at, at+len)`: one hash per MiB, so a later `firstChange` can
 * tell whether, and from where, the bytes changed without keeping them. Read with direct IO
 * where the disk allows it: a direct write the kernel refuses part-way may leave the page cache
 * holding the old bytes of a range it did write (it drops cached pages only for a write that
 * completes), so buffered reads could report "unchanged" for a changed disk.
 */
export function diskFingerprint(path: string, at: number, len: number): bigint[] {
  const hashes: bigint[] = [];
  for (let done = 0; done < len; done += FINGERPRINT_CHUNK) {
    hashes.push(BigInt(Bun.hash(readDiskBytesUncached(path, at + done, Math.min(FINGERPRINT_CHUNK, len - done)))));
  }
  return hashes;
}

/** The disk offset of the first MiB chunk of `[at, at+len)` that differs from `before`, or null. */
export function firstChange(path: string, at: number, len: number, before: readonly bigint[]): number | null {
  const now = diskFingerprint(path, at, len);
  const index = now.findIndex((hash, i) => hash !== before[i]);
  return index < 0 ? null : at + index * FINGERPRINT_CHUNK;
}

/** Alignment of the direct reads below: enough for any disk of up to 4 KiB blocks. */
const UNCACHED_ALIGN = 4096;

/**
 * Disk bytes `[at, at+len)` as the device holds them: read with O_DIRECT in whole 4 KiB units
 * into page-aligned memory; with buffered reads where direct IO is refused (a filesystem
 * without it, a disk of larger blocks).
 */
export function readDiskBytesUncached(path: string, at: number, len: number): Uint8Array {
  const start = Math.floor(at / UNCACHED_ALIGN) * UNCACHED_ALIGN;
  const end = Math.ceil((at + len) / UNCACHED_ALIGN) * UNCACHED_ALIGN;
  let fd: number;
  try {
    fd = openFile(path, O_RDONLY | O_DIRECT);
  } catch {
    return readDiskBytes(path, at, len);
  }
  try {
    using buffer = NativeRegion.anonymous(end - start, "uncached read buffer");
    using iovecs = new IovecArray(1);
    iovecs.push(buffer.address(0) as number, end - start);
    let done = 0;
    try {
      while (start + done < end) {
        iovecs.set(0, (buffer.address(0) as number) + done, end - start - done);
        const n = preadv(fd, iovecs.address(), 1, start + done);
        if (n === 0) break;
        done += n;
      }
    } catch (error) {
      if (error instanceof OsError && error.errno === EINVAL) return readDiskBytes(path, at, len);
      throw error;
    }
    const bytes = new Uint8Array(len);
    bytes.set(buffer.view(0, end - start).subarray(at - start, Math.min(done, at - start + len)));
    return bytes;
  } finally {
    closeFd(fd);
  }
}

/**
 * What a refused IO changed before the kernel refused it. A forced direct IO the block layer
 * splits into several requests may carry out the ones before the refused one: a write has then
 * changed the disk, a read guest memory (a refused read changed over a million guest bytes in
 * one case). Taken before the IO, asked after a refusal; both sides are checked whatever the
 * op: the disk by fingerprint (`firstChange`), the segments' guest bytes byte for byte, read
 * from the image file, never through the mapping: touching a hole of guest memory there would
 * allocate it, which on a full filesystem is a SIGBUS (the IO provides its pages only later).
 */
export class RefusalWatch {
  readonly #diskBefore: bigint[];
  readonly #guestBefore: Uint8Array;

  constructor(
    readonly diskPath: string,
    readonly diskStart: number,
    readonly diskLen: number,
    readonly memory: GuestMemory,
    readonly segments: readonly PagedRange[],
  ) {
    this.#diskBefore = diskFingerprint(diskPath, diskStart, diskLen);
    this.#guestBefore = guestImageBytes(memory.path, segments);
  }

  /** `diskChangedAt`: the first changed MiB's disk offset, or null; `guestBytesChanged`: guest bytes that now differ. */
  changes(): { diskChangedAt: number | null; guestBytesChanged: number } {
    const guest = guestImageBytes(this.memory.path, this.segments);
    let guestBytesChanged = 0;
    for (let i = 0; i < guest.length; i++) if (guest[i] !== this.#guestBefore[i]) guestBytesChanged++;
    return { diskChangedAt: firstChange(this.diskPath, this.diskStart, this.diskLen, this.#diskBefore), guestBytesChanged };
  }
}

/** The segments' guest bytes, concatenated, read from the guest image file at `path` (holes read as zeros). */
function guestImageBytes(path: string, segments: readonly PagedRange[]): Uint8Array {
  const total = segments.reduce((sum, segment) => sum + segment.len, 0);
  const bytes = new Uint8Array(total);
  const fd = openSync(path, "r");
  try {
    let at = 0;
    for (const segment of segments) {
      segment.forEachRun(0, segment.len, (gpn, offset, len) => {
        let done = 0;
        while (done < len) {
          const n = readSync(fd, bytes, at + done, len - done, gpn * PAGE_SIZE + offset + done);
          if (n === 0) break; // past the image's end: the IO refuses it before any call
          done += n;
        }
        at += len;
      });
    }
  } finally {
    closeSync(fd);
  }
  return bytes;
}
