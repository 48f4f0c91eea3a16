/**
 * The arithmetic of direct-IO alignment, with no IO and no native code: what a disk's alignment
 * is (`DiskAlignment`), the granularity an IO of each direction must meet, and why a buffer
 * misses it. The planner, the scenario parser and the command line decide with these alone,
 * so importing them loads no libc; discovering a real disk's alignment is `disk/alignment.ts`.
 *
 *   memAlign         every iovec's address is a multiple of it
 *   offsetAlign      file offsets and lengths of writes (and of reads, unless:)
 *   readOffsetAlign  file offsets and lengths of reads, where the filesystem relaxes them
 */
import { PAGE_SIZE } from "./constants";
import { InvalidAlignmentError, InvalidInputError } from "./errors";

/** Where an alignment came from; `default` is `plan`'s 4096 when no disk is named. */
export type AlignmentSource = "statx" | "blksszget" | "probe" | "override" | "default";

export interface DiskAlignment {
  /** Whether the kernel does direct IO on this file at all. */
  directIo: boolean;
  /** Alignment of buffer addresses in memory. */
  memAlign: number;
  /** Alignment of file offsets and lengths for writes (and reads, unless `readOffsetAlign` differs). */
  offsetAlign: number;
  /** Alignment of file offsets and lengths for reads. */
  readOffsetAlign: number;
  source: AlignmentSource;
  /** How the source got its answer, for reports ("STATX_DIOALIGN", "empty file: ..."). */
  note?: string;
}

/** Largest alignment a user may simulate (`--align`). */
export const MAX_SIMULATED_ALIGNMENT = 2 ** 20;

/** True for 1, 2, 4, ... 2^52. */
export function isPowerOfTwo(value: number): boolean {
  return Number.isSafeInteger(value) && value > 0 && 2 ** Math.round(Math.log2(value)) === value;
}

/** @throws InvalidAlignmentError unless `alignment` is a positive power of two. */
export function checkAlignment(alignment: number): void {
  if (!isPowerOfTwo(alignment)) throw new InvalidAlignmentError(alignment);
}

/**
 * Why buffers at page offset `offset` and length `len` are not aligned to `alignment`, one
 * reason per violated condition; empty when they are.
 */
export function memoryAlignmentReasons(offset: number, len: number, alignment: number): string[] {
  checkAlignment(alignment);
  const reasons: string[] = [];
  if (alignment > PAGE_SIZE) {
    reasons.push(
      `alignment ${alignment} exceeds the page size ${PAGE_SIZE}: interior page boundaries are not contiguous in host memory`,
    );
  }
  if (offset % alignment !== 0) reasons.push(`memory offset ${offset} is not a multiple of ${alignment}`);
  if (len % alignment !== 0) reasons.push(`buffer length ${len} is not a multiple of ${alignment}`);
  return reasons;
}

/**
 * The one alignment the memory rule (`RequestBuffers.isAligned`) is checked against for an IO
 * of direction `op`: iovec addresses must meet `memAlign` and iovec lengths the offset
 * alignment, so the larger of the two. At least 1.
 */
export function requestAlignment(alignment: DiskAlignment, op: "read" | "write"): number {
  return Math.max(1, alignment.memAlign, blockSize(alignment, op));
}

/** The disk offset and length granularity for `op`. At least 1. */
export function blockSize(alignment: DiskAlignment, op: "read" | "write"): number {
  return Math.max(1, op === "read" ? alignment.readOffsetAlign : alignment.offsetAlign);
}

/** The alignment assumed when no disk is named: 4096, which suits every common disk. */
export const DEFAULT_ALIGNMENT: DiskAlignment = {
  directIo: true,
  memAlign: 4096,
  offsetAlign: 4096,
  readOffsetAlign: 4096,
  source: "default",
};

/**
 * The user's `--align`: every alignment becomes `alignment` (a power of two). A simulated disk
 * may only be stricter than the real one it runs on (`base`, when it was discovered): a smaller
 * value would send IO the real disk refuses, so it is bad input naming both.
 */
export function overrideAlignment(base: DiskAlignment | null, alignment: number): DiskAlignment {
  checkAlignment(alignment);
  if (base !== null && base.source !== "default" && base.directIo) {
    const real = Math.max(base.memAlign, base.offsetAlign, base.readOffsetAlign);
    if (alignment < real) {
      throw new InvalidInputError(
        `--align ${alignment} is below the disk's own alignment (memory ${base.memAlign}, offset ${base.offsetAlign}, from ${base.source}): a simulated disk may only be stricter than the real one`,
      );
    }
  }
  return {
    directIo: base?.directIo ?? true,
    memAlign: alignment,
    offsetAlign: alignment,
    readOffsetAlign: alignment,
    source: "override",
  };
}

/** Checks a user-given `--align` value. */
export function parseAlignment(value: number, what: string): number {
  if (!isPowerOfTwo(value)) throw new InvalidInputError(`${what}: alignment ${value} is not a power of two`);
  if (value > MAX_SIMULATED_ALIGNMENT) throw new InvalidInputError(`${what}: alignment ${value} is larger than 1 MiB`);
  return value;
}
