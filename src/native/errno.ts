/**
 * Linux errno numbers, names and descriptions, and the error type that carries them.
 *
 * The numbers are the asm-generic ones used by x86_64 and arm64 Linux. An `OsError` keeps the
 * errno name (`EINVAL`) as its `code`, so scenario expectations and `--json` consumers match
 * on names, never on numbers or message text.
 */
import { BounceBenchError, type ErrnoCode } from "../base/errors";

const ERRNO_TABLE: ReadonlyArray<readonly [number, string, string]> = [
  [1, "EPERM", "Operation not permitted"],
  [2, "ENOENT", "No such file or directory"],
  [3, "ESRCH", "No such process"],
  [4, "EINTR", "Interrupted system call"],
  [5, "EIO", "Input/output error"],
  [6, "ENXIO", "No such device or address"],
  [7, "E2BIG", "Argument list too long"],
  [9, "EBADF", "Bad file descriptor"],
  [11, "EAGAIN", "Resource temporarily unavailable"],
  [12, "ENOMEM", "Cannot allocate memory"],
  [13, "EACCES", "Permission denied"],
  [14, "EFAULT", "Bad address"],
  [15, "ENOTBLK", "Block device required"],
  [16, "EBUSY", "Device or resource busy"],
  [17, "EEXIST", "File exists"],
  [18, "EXDEV", "Invalid cross-device link"],
  [19, "ENODEV", "No such device"],
  [20, "ENOTDIR", "Not a directory"],
  [21, "EISDIR", "Is a directory"],
  [22, "EINVAL", "Invalid argument"],
  [23, "ENFILE", "Too many open files in system"],
  [24, "EMFILE", "Too many open files"],
  [25, "ENOTTY", "Inappropriate ioctl for device"],
  [26, "ETXTBSY", "Text file busy"],
  [27, "EFBIG", "File too large"],
  [28, "ENOSPC", "No space left on device"],
  [29, "ESPIPE", "Illegal seek"],
  [30, "EROFS", "Read-only file system"],
  [31, "EMLINK", "Too many links"],
  [32, "EPIPE", "Broken pipe"],
  [34, "ERANGE", "Numerical result out of range"],
  [36, "ENAMETOOLONG", "File name too long"],
  [38, "ENOSYS", "Function not implemented"],
  [39, "ENOTEMPTY", "Directory not empty"],
  [40, "ELOOP", "Too many levels of symbolic links"],
  [61, "ENODATA", "No data available"],
  [75, "EOVERFLOW", "Value too large for defined data type"],
  [95, "EOPNOTSUPP", "Operation not supported"],
  [110, "ETIMEDOUT", "Connection timed out"],
  [122, "EDQUOT", "Disk quota exceeded"],
  [125, "ECANCELED", "Operation canceled"],
];

const NAMES = new Map<number, string>();
const DESCRIPTIONS = new Map<number, string>();
for (const [number, name, description] of ERRNO_TABLE) {
  NAMES.set(number, name);
  DESCRIPTIONS.set(number, description);
}

export const EINTR = 4;
/** What a lock request that conflicts with another owner's lock fails with (EAGAIN, or EACCES on some systems). */
export const EAGAIN_OR_EACCES: ReadonlySet<number> = new Set([11, 13]);
export const EINVAL = 22;
export const ENOSYS = 38;

/** `EINVAL` for 22; `ERRNO_200` for a number not in the table. */
export function errnoName(errno: number): string {
  return NAMES.get(errno) ?? `ERRNO_${errno}`;
}

/**
 * A system call failed. `code` is the errno name, `call` the libc function, `detail` what it
 * was doing (`fd 5, 3 iovecs, 12288 bytes at 0x1000`), `hint` an optional suggestion.
 */
export class OsError extends BounceBenchError {
  /** strerror-like text: `Invalid argument`. */
  readonly description: string;

  constructor(
    readonly errno: number,
    readonly call: string,
    readonly detail: string,
    readonly hint?: string,
  ) {
    const name = errnoName(errno);
    const description = DESCRIPTIONS.get(errno) ?? "unknown error";
    const where = detail ? `${call}(${detail})` : call;
    super(name as ErrnoCode, `${where}: ${name} (${description})${hint ? `; ${hint}` : ""}`, { kind: "io" });
    this.description = description;
  }
}
