/**
 * Byte-range locks on a file shared with other processes: Linux open file description locks
 * (`fcntl(F_OFD_SETLK)`). A lock belongs to the open file description, not the process or the
 * thread, so every thread using one descriptor is one owner (threads of one process keep out of
 * each other's way with `RangeLocks`), while another process, or another `open` of the same
 * file, conflicts. Locks are advisory: they hold against bounce-bench and any other program that
 * takes them (QEMU does), not against a plain write. Closing the descriptor drops them.
 *
 *   struct flock (x86-64, arm64): i16 l_type, i16 l_whence, 4 bytes padding, i64 l_start,
 *                                 i64 l_len, i32 l_pid (0 for OFD locks), 4 bytes padding
 *
 * Ownership: the struct lives in a page of native memory this module maps once per thread and
 * never releases; each call fills it and the kernel reads it during the call only.
 */
import { EAGAIN_OR_EACCES, EINTR, OsError } from "./errno";
import { lastErrno, libc } from "./libc";
import { NativeRegion } from "./region";

const F_OFD_SETLK = 37;
const F_RDLCK = 0;
const F_WRLCK = 1;
const F_UNLCK = 2;
const SEEK_SET = 0;

const flockRegion = NativeRegion.anonymous(32, "struct flock"); // one per thread, for good
const flockAddress = flockRegion.address(0) as number;
const flockBytes = flockRegion.view(0, 32);
const flock = new DataView(flockBytes.buffer, flockBytes.byteOffset, 32);

function setLock(fd: number, type: number, start: number, len: number): number {
  flock.setInt16(0, type, true);
  flock.setInt16(2, SEEK_SET, true);
  flock.setUint32(8, start >>> 0, true); // 64-bit fields as two 32-bit halves: no BigInt
  flock.setUint32(12, Math.floor(start / 2 ** 32), true);
  flock.setUint32(16, len >>> 0, true);
  flock.setUint32(20, Math.floor(len / 2 ** 32), true);
  flock.setInt32(24, 0, true);
  for (;;) {
    if (libc.fcntl(fd, F_OFD_SETLK, flockAddress as never) === 0) return 0;
    const errno = lastErrno();
    if (errno !== EINTR) return errno;
  }
}

/**
 * Takes a lock on bytes `[start, start+len)` of `fd`'s file for this open file description,
 * without waiting: a write (exclusive) lock, or a read (shared) lock with `shared`, which other
 * shared locks do not conflict with. True when it is held now, false when another owner holds
 * a conflicting one (try again later). A shared lock needs `fd` open for reading.
 */
export function tryLockRange(fd: number, start: number, len: number, shared = false): boolean {
  const errno = setLock(fd, shared ? F_RDLCK : F_WRLCK, start, len);
  if (errno === 0) return true;
  if (EAGAIN_OR_EACCES.has(errno)) return false;
  throw new OsError(errno, "fcntl", `fd ${fd}, F_OFD_SETLK ${shared ? "read" : "write"} lock on ${start}+${len}`);
}

/** Drops this description's lock on `[start, start+len)`. */
export function unlockRange(fd: number, start: number, len: number): void {
  const errno = setLock(fd, F_UNLCK, start, len);
  if (errno !== 0) throw new OsError(errno, "fcntl", `fd ${fd}, F_OFD_SETLK unlock of ${start}+${len}`);
}
