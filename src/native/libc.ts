/**
 * The dlopen table: every libc symbol bounce-bench calls, bound once per thread.
 *
 * Unsafe boundary. This file and its siblings in `src/native/` are the only code that imports
 * `bun:ffi` (test/native-boundary.test.ts enforces it). Nothing here is exported from the
 * package: the wrappers in `os.ts`, `region.ts` and `iovec.ts` turn `-1` returns into
 * `OsError`s and own every pointer they hand to the kernel.
 *
 * Conventions:
 * - Addresses travel as plain JS numbers (user-space addresses fit in 47 bits), never BigInt.
 *   64-bit returns are declared `i64_fast`, which yields a number when it fits.
 * - `ptr` arguments accept either such a number or a TypedArray, which Bun pins for the
 *   duration of the call only; the kernel must not keep such a pointer past the call.
 * - errno is read through `__errno_location()`, fetched once per thread: each Bun Worker loads
 *   its own copy of this module and so reads its own thread's errno. It is read right after the
 *   failing call returns, before any other native call can overwrite it.
 */
import { dlopen, FFIType, read } from "bun:ffi";

const LIBC_PATH = "libc.so.6";

export const libc = dlopen(LIBC_PATH, {
  open: { args: ["ptr", "i32", "u32"], returns: "i32" },
  close: { args: ["i32"], returns: "i32" },
  // Variadic in C; its third argument is an int (F_GETFL, F_SETFL: passed as a number) or a
  // pointer (the F_OFD_* locks' struct flock), one register either way.
  fcntl: { args: ["i32", "i32", "ptr"], returns: "i32" },
  memfd_create: { args: ["ptr", "u32"], returns: "i32" },
  fsync: { args: ["i32"], returns: "i32" },
  ftruncate: { args: ["i32", "i64"], returns: "i32" },
  lseek: { args: ["i32", "i64", "i32"], returns: FFIType.i64_fast },
  fallocate: { args: ["i32", "i32", "i64", "i64"], returns: "i32" },
  // Returns the error number itself (0 on success); errno is not set.
  posix_fadvise: { args: ["i32", "i64", "i64", "i32"], returns: "i32" },
  ioctl: { args: ["i32", "u64", "ptr"], returns: "i32" },
  statx: { args: ["i32", "ptr", "i32", "u32", "ptr"], returns: "i32" },
  mmap: { args: ["ptr", "u64", "i32", "i32", "i32", "i64"], returns: FFIType.i64_fast },
  munmap: { args: ["ptr", "u64"], returns: "i32" },
  // Variadic in C: the fifth argument (the new address, with MREMAP_FIXED) is a pointer, one register.
  mremap: { args: ["ptr", "u64", "u64", "i32", "ptr"], returns: FFIType.i64_fast },
  msync: { args: ["ptr", "u64", "i32"], returns: "i32" },
  madvise: { args: ["ptr", "u64", "i32"], returns: "i32" },
  preadv: { args: ["i32", "ptr", "i32", "i64"], returns: FFIType.i64_fast },
  pwritev: { args: ["i32", "ptr", "i32", "i64"], returns: FFIType.i64_fast },
  pwritev2: { args: ["i32", "ptr", "i32", "i64", "i32"], returns: FFIType.i64_fast },
  clock_gettime: { args: ["i32", "ptr"], returns: "i32" },
  // Variadic in C: every option used here takes unsigned longs.
  prctl: { args: ["i32", "u64", "u64", "u64", "u64"], returns: "i32" },
  syscall: { args: ["i64", "i64", "i64", "i64", "i64", "i64", "i64"], returns: FFIType.i64_fast },
  __errno_location: { args: [], returns: "ptr" },
}).symbols;

const errnoLocation = libc.__errno_location()!;

/** The calling thread's errno; valid only right after a call that reported failure. */
export function lastErrno(): number {
  return read.i32(errnoLocation, 0);
}
