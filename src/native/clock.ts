/**
 * The monotonic clock for hot paths. `Bun.nanoseconds()` costs about 42 ns a reading on the
 * machines measured, as much as the rest of a null-engine IO; clock_gettime(CLOCK_MONOTONIC)
 * through the dlopen table costs about 29 ns. The executor and the benchmark loop read this
 * clock, and only differences of its readings mean anything.
 *
 * Ownership: the timespec the kernel (vDSO) fills lives in a page of native memory this module
 * maps once per thread and never releases, so its address stays valid for every call; nothing
 * here allocates per reading.
 */
import { OsError } from "./errno";
import { lastErrno, libc } from "./libc";
import { NativeRegion } from "./region";
import type { Address } from "./os";

const CLOCK_MONOTONIC = 1;
const timespecRegion = NativeRegion.anonymous(16, "clock timespec"); // one per thread, for good
const timespecAddress = timespecRegion.address(0) as number as Address;
const timespecWords = new Uint32Array(timespecRegion.view(0, 16).buffer, timespecRegion.view(0, 16).byteOffset, 4);
/** Seconds at the first reading: readings count from here, so they stay exact doubles. */
let baseSeconds = -1;

/** Nanoseconds on the monotonic clock, from an arbitrary start in this thread. */
export function monotonicNs(): number {
  if (libc.clock_gettime(CLOCK_MONOTONIC, timespecAddress as never) !== 0) {
    throw new OsError(lastErrno(), "clock_gettime", "CLOCK_MONOTONIC");
  }
  const seconds = timespecWords[0]! + timespecWords[1]! * 2 ** 32;
  if (baseSeconds < 0) baseSeconds = seconds - 1; // readings start at 1 s: never 0, which callers may use as "none"
  return (seconds - baseSeconds) * 1e9 + timespecWords[2]!;
}
