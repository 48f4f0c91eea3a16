/**
 * Verification of an IO by an independent path: the disk bytes are read back with plain
 * buffered reads (node:fs), not through the engine that did the IO, and compared with the
 * guest bytes of the segments, in order.
 */
import { closeSync, openSync, readSync } from "node:fs";
import { BounceBenchError } from "../base/errors";
import type { GuestMemory } from "../memory/guest-memory";
import type { PagedRange } from "../memory/paged-range";
import { RequestBuffers } from "../memory/request-buffers";

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
 * A fingerprint of disk bytes `[at, at+len)`, read with buffered reads (coherent with direct
 * writes: the kernel drops cached pages a direct write covers): one hash per MiB, so a later
 * `firstChange` can tell whether, and from where, the bytes changed without keeping them.
 */
export function diskFingerprint(path: string, at: number, len: number): bigint[] {
  const hashes: bigint[] = [];
  for (let done = 0; done < len; done += FINGERPRINT_CHUNK) {
    hashes.push(BigInt(Bun.hash(readDiskBytes(path, at + done, Math.min(FINGERPRINT_CHUNK, len - done)))));
  }
  return hashes;
}

/** The disk offset of the first MiB chunk of `[at, at+len)` that differs from `before`, or null. */
export function firstChange(path: string, at: number, len: number, before: readonly bigint[]): number | null {
  const now = diskFingerprint(path, at, len);
  const index = now.findIndex((hash, i) => hash !== before[i]);
  return index < 0 ? null : at + index * FINGERPRINT_CHUNK;
}
