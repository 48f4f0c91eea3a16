/**
 * Creating the files bounce-bench works on (guest images, disk files) without ever destroying
 * one the user did not mean to replace.
 *
 * A new file is created sparse (`ftruncate`), with `O_EXCL` so that an existing file is never
 * touched; replacing one needs `force`, and even then only a regular file is replaced (never a
 * directory, a device or anything under /dev).
 */
import { readFileSync, unlinkSync } from "node:fs";
import { BounceBenchError, InvalidInputError } from "../base/errors";
import { closeFd, O_CREAT, O_EXCL, O_NONBLOCK, O_RDONLY, O_RDWR, O_TRUNC, openFile, OsError, statx, truncateFd, type FileStatus } from "../native";

/** errnos of open(2) that mean "the path the user gave is not a usable file". */
const BAD_PATH_ERRNOS = new Set(["ENOENT", "ENOTDIR", "EISDIR", "EACCES", "EPERM", "ELOOP", "ENAMETOOLONG", "EROFS", "ETXTBSY"]);

/**
 * Opens a file the user named. A path that cannot be opened as asked (missing, a directory,
 * no permission, read-only) is bad input: a `BounceBenchError` of kind `input` keeping the
 * errno name as its code, with `role` ("guest image") in the message.
 */
export function openUserFile(path: string, flags: number, role: string): number {
  try {
    return openFile(path, flags);
  } catch (error) {
    if (error instanceof OsError && BAD_PATH_ERRNOS.has(error.code)) {
      const message = `${role} ${path}: ${error.code} (${error.description})`;
      throw new BounceBenchError(error.code, message, { cause: error, kind: "input" });
    }
    throw error;
  }
}

export interface CreateFileOptions {
  /** Replace an existing regular file. Without it an existing path is an error. */
  force?: boolean;
}

/** statx of `path`, or null when nothing is there. */
export function statusOrNull(path: string): FileStatus | null {
  try {
    return statx(path);
  } catch (error) {
    if (error instanceof OsError && error.code === "ENOENT") return null;
    throw error;
  }
}

/**
 * Creates a sparse file of `size` bytes at `path` and returns its open descriptor (read-write),
 * which the caller must close.
 */
export function createSparseFile(path: string, size: number, options: CreateFileOptions = {}): number {
  if (!Number.isSafeInteger(size) || size <= 0) {
    throw new InvalidInputError(`${path}: size ${size} is not a positive whole number of bytes`);
  }
  if (path.startsWith("/dev/")) {
    throw new InvalidInputError(`${path}: bounce-bench never creates or replaces anything under /dev`);
  }
  const existing = statusOrNull(path);
  if (existing !== null) {
    if (!options.force) throw new InvalidInputError(`${path}: already exists (use --force to replace it)`);
    if (existing.type !== "file") {
      throw new InvalidInputError(`${path}: is a ${existing.type}, not a regular file; refusing to replace it`);
    }
  }
  const flags = O_RDWR | O_CREAT | (existing === null ? O_EXCL : O_TRUNC);
  const fd = openFile(path, flags, 0o644);
  try {
    truncateFd(fd, size);
    return fd;
  } catch (error) {
    closeFd(fd);
    if (existing === null) unlinkSync(path); // leave nothing behind that we created
    throw error;
  }
}

/** Largest text file (a scenario) bounce-bench reads: far beyond any real one, far below harm. */
export const MAX_TEXT_FILE_BYTES = 16 * 2 ** 20;

/**
 * The text of a regular file the user named (a scenario file). It is opened without waiting
 * (a FIFO would otherwise block the open, or the read, forever), and anything but a regular file
 * of at most `MAX_TEXT_FILE_BYTES` is bad input naming `role` and the path.
 */
export function readUserTextFile(path: string, role: string): string {
  const fd = openUserFile(path, O_RDONLY | O_NONBLOCK, role);
  try {
    const status = statx(fd);
    if (status.type !== "file") throw new InvalidInputError(`${role} ${path}: is a ${status.type}, not a regular file`);
    if (status.size > MAX_TEXT_FILE_BYTES) {
      throw new InvalidInputError(`${role} ${path}: ${status.size} bytes, more than the ${MAX_TEXT_FILE_BYTES} a ${role} may have`);
    }
    return readFileSync(fd, "utf8");
  } finally {
    closeFd(fd);
  }
}
