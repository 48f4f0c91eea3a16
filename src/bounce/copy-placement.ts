/**
 * Where a bounce buffer's bytes sit, so that copying the guest's bytes in or out is fast.
 *
 * glibc's `memcpy` copies large blocks with `rep movsb`, which on some x86 CPUs (AMD EPYC here)
 * runs 15-20 times slower when the destination is a little ahead of the source within a page:
 * (destination - source) mod 4096 in 1..31 measured 2.2-2.7 GiB/s against 35-45 GiB/s at every
 * other distance (64 KiB copies, `npm run bench:copy`). A guest buffer a few bytes past a page
 * boundary, copied from a page-aligned bounce buffer, is exactly that case: every VMM that
 * bounces with `memcpy` pays it on reads into such buffers.
 *
 * The bounce buffer only has to start on a multiple of the disk's memory alignment, so it can
 * start at any such offset within its first page: `placeCopies` picks the offset (`shift`) that
 * leaves the fewest copied bytes at a slow distance, and marks copies no offset can save (a
 * disk whose memory alignment is a page leaves no choice) for splitting into pieces shorter
 * than `rep movsb`'s threshold, which glibc copies with vector loops instead.
 *
 *   copy `memcpy`  shift 0, whole copies: the slow path as a plain VMM meets it (to show it)
 *   copy `placed`  the shift above, and pieces where it cannot help (the default)
 */
import { PAGE_SIZE } from "../base/constants";

export type CopyMethod = "placed" | "memcpy";
export const COPY_METHODS: readonly CopyMethod[] = ["placed", "memcpy"];

/** Distances (destination - source, mod 4096) at or above 1 and below this are slow; a margin over the 32 measured. */
export const SLOW_DISTANCE_BELOW = 64;
/** Copies shorter than this never take `rep movsb` (glibc's threshold is 2048 or more). */
export const REP_MOVSB_MIN = 2048;
/** The pieces a copy that cannot be placed well is split into: below every `rep movsb` threshold. */
export const COPY_PIECE = 1024;

/** The distance class of one copy: slow when it may take `rep movsb` at a short forward distance. */
export function slowCopy(source: number, destination: number, len: number): boolean {
  const distance = (((destination - source) % PAGE_SIZE) + PAGE_SIZE) % PAGE_SIZE;
  return len >= REP_MOVSB_MIN && distance >= 1 && distance < SLOW_DISTANCE_BELOW;
}

/** One copy between guest memory and the bounce buffer: the guest's host address and the position in the bounce layout. */
export interface PlannedCopy {
  guestAddress: number;
  bounceOffset: number;
  len: number;
}

/**
 * Whether `copy` is slow with the bounce layout starting `shift` bytes into page-aligned bounce
 * memory, for a write's copy into the bounce buffer (`toBounce`) or a read's out of it.
 */
export function slowAt(shift: number, copy: PlannedCopy, toBounce: boolean): boolean {
  const bounce = shift + copy.bounceOffset;
  return toBounce ? slowCopy(copy.guestAddress, bounce, copy.len) : slowCopy(bounce, copy.guestAddress, copy.len);
}

/**
 * Where the bounce layout starts within page-aligned bounce memory (a multiple of `memAlign`,
 * below a page), and which copies must still be split, for copies into the bounce buffer
 * (`toBounce`: a write's) or out of it (a read's).
 */
export function placeCopies(copies: readonly PlannedCopy[], toBounce: boolean, memAlign: number, method: CopyMethod): { shift: number; split: boolean[] } {
  if (method === "memcpy") return { shift: 0, split: copies.map(() => false) };
  let best = 0;
  let bestSlowBytes = Infinity;
  for (let shift = 0; shift < PAGE_SIZE; shift += Math.max(1, memAlign)) {
    const slowBytes = copies.reduce((sum, copy) => sum + (slowAt(shift, copy, toBounce) ? copy.len : 0), 0);
    if (slowBytes < bestSlowBytes) {
      best = shift;
      bestSlowBytes = slowBytes;
    }
    if (slowBytes === 0) break;
  }
  return { shift: best, split: copies.map((copy) => slowAt(best, copy, toBounce)) };
}
