/**
 * The files the user names: opening them, and creating guest images, disk files and job files
 * without ever destroying one the user did not mean to replace.
 *
 * A path that cannot be used as asked (missing, a missing parent, not a directory on the way, a
 * symlink loop, too long, no permission, read-only) is bad input (`kind` "input", exit 2) keeping
 * the errno name as its code and naming the path's role (`--disk`, "guest image").
 *
 * Creating: the path is judged by where it really lands, not by its text. Its parent directory
 * is resolved (symlinks, `..`, `//`) and nothing is created under `/dev`; a path that is itself a
 * symlink is refused (a file is never created or replaced through one); a new file is created
 * with `O_EXCL`, so an existing one is never touched, and `force` replaces only a regular file,
 * and only by renaming a new file over its name: the old file is never truncated, so a second
 * name of it (a hard link) keeps its bytes.
 */
import { lstatSync, readdirSync, readFileSync, realpathSync, renameSync, unlinkSync, writeSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { BounceBenchError, InvalidInputError } from "../base/errors";
import {
  closeFd,
  O_CREAT,
  O_EXCL,
  O_NOFOLLOW,
  O_NONBLOCK,
  O_RDONLY,
  O_RDWR,
  O_WRONLY,
  openFile,
  OsError,
  statx,
  truncateFd,
  type FileStatus,
} from "../native";

/** errnos that mean "the path the user gave is not a usable file". */
const BAD_PATH_ERRNOS = new Set(["ENOENT", "ENOTDIR", "EISDIR", "EACCES", "EPERM", "ELOOP", "ENAMETOOLONG", "EROFS", "ETXTBSY"]);

/** `error` as bad input naming `role` and `path` when it is a path errno; otherwise `error` itself. */
function asPathError(error: unknown, path: string, role: string): unknown {
  if (error instanceof OsError && BAD_PATH_ERRNOS.has(error.code)) {
    return new BounceBenchError(error.code, `${role} ${path}: ${error.code} (${error.description})`, { cause: error, kind: "input" });
  }
  const code = (error as NodeJS.ErrnoException | null)?.code;
  if (code !== undefined && BAD_PATH_ERRNOS.has(code)) {
    // node:fs says `ENOENT: no such file or directory, realpath '...'`: keep the middle.
    const why = /^[A-Z]+: ([^,]+)/.exec((error as Error).message)?.[1] ?? code;
    return new BounceBenchError(code as `E${string}`, `${role} ${path}: ${code} (${why})`, { cause: error, kind: "input" });
  }
  return error;
}

/** Opens a file the user named; a path that cannot be opened as asked is bad input (see above). */
export function openUserFile(path: string, flags: number, role: string): number {
  try {
    return openFile(path, flags);
  } catch (error) {
    throw asPathError(error, path, role);
  }
}

export interface CreateFileOptions {
  /** Replace an existing regular file. Without it an existing path is an error. */
  force?: boolean;
}

/** statx of `path`, or null when nothing is there; any other path problem is bad input. */
export function statusOrNull(path: string, role = "path"): FileStatus | null {
  try {
    return statx(path);
  } catch (error) {
    if (error instanceof OsError && error.code === "ENOENT") return null;
    throw asPathError(error, path, role);
  }
}

/**
 * Where a new file at `path` would land, checked: its parent resolved and not under `/dev`, the
 * path not a symlink, and an existing file replaced only with `force` and only if regular.
 * Returns whether something is there now. Exported so that a command can refuse a bad output
 * path before it spends a run on what it would write there.
 */
export function checkCreatable(path: string, force: boolean, role: string): boolean {
  if (path === "" || path.includes("\0")) throw new InvalidInputError(`${role}: ${JSON.stringify(path)} is not a path`);
  let parent: string;
  try {
    parent = realpathSync(dirname(resolve(path)));
  } catch (error) {
    throw asPathError(error, path, role);
  }
  const where = join(parent, basename(resolve(path)));
  // By path, and by filesystem: a devtmpfs mounted elsewhere is /dev all the same.
  if (where === "/dev" || where.startsWith("/dev/") || filesystemType(statx(parent)) === "devtmpfs") {
    throw new InvalidInputError(`${role} ${path}: lands in ${where}; bounce-bench never creates or replaces anything under /dev`);
  }
  let existing;
  try {
    existing = lstatSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw asPathError(error, path, role);
  }
  if (existing.isSymbolicLink()) {
    throw new InvalidInputError(`${role} ${path}: is a symbolic link; bounce-bench does not create or replace files through one (name the target)`);
  }
  if (!force) throw new InvalidInputError(`${role} ${path}: already exists (use --force to replace it)`);
  if (!existing.isFile()) {
    const kind = existing.isDirectory() ? "directory" : "special file";
    throw new InvalidInputError(`${role} ${path}: is a ${kind}, not a regular file; refusing to replace it`);
  }
  return true;
}

/**
 * A new file for `path`: `path` itself, created exclusively, or, to replace what is there, a new
 * file beside it (exclusively too) that `commit` renames over the name. Never through a symlink.
 */
function openForCreate(path: string, access: number, exists: boolean, role: string): { fd: number; commit(): void; abort(): void } {
  const target = exists ? join(dirname(path), `.${basename(path)}.bounce-bench-${process.pid}-${Math.random().toString(36).slice(2, 10)}`) : path;
  let fd: number;
  try {
    fd = openFile(target, access | O_CREAT | O_NOFOLLOW | O_EXCL, 0o644);
  } catch (error) {
    throw asPathError(error, path, role);
  }
  return {
    fd,
    commit: () => {
      if (exists) renameSync(target, path);
    },
    abort: () => unlinkSync(target), // leave nothing behind that we created
  };
}

/**
 * Creates a sparse file of `size` bytes at `path` and returns its open descriptor (read-write),
 * which the caller must close.
 */
export function createSparseFile(path: string, size: number, options: CreateFileOptions = {}, role = "file"): number {
  if (!Number.isSafeInteger(size) || size <= 0) {
    throw new InvalidInputError(`${path}: size ${size} is not a positive whole number of bytes`);
  }
  const existed = checkCreatable(path, options.force ?? false, role);
  const created = openForCreate(path, O_RDWR, existed, role);
  try {
    truncateFd(created.fd, size);
    created.commit();
    return created.fd;
  } catch (error) {
    closeFd(created.fd);
    created.abort();
    throw error;
  }
}

/** Writes `text` as a new file at `path` (or replaces a regular file there with `force`), under the rules above. */
export function writeUserTextFile(path: string, text: string, options: CreateFileOptions, role: string): void {
  const existed = checkCreatable(path, options.force ?? false, role);
  const created = openForCreate(path, O_WRONLY, existed, role);
  try {
    const bytes = new TextEncoder().encode(text);
    let done = 0;
    while (done < bytes.length) done += writeSync(created.fd, bytes, done);
  } catch (error) {
    closeFd(created.fd);
    created.abort();
    throw error;
  }
  closeFd(created.fd);
  created.commit();
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
    return decodeText(readFileSync(fd), `${role} ${path}`);
  } finally {
    closeFd(fd);
  }
}

/**
 * The `.json` files `path` names: itself, or every `.json` file below it, in name order (a
 * directory of scenarios, or of bench runs). Symlinked directories are not followed (a link back
 * up would loop forever); a path that is missing, or a directory that cannot be read or holds no
 * `.json` file, is bad input naming it and `what` the files are.
 */
export function jsonFilesUnder(path: string, what: string): string[] {
  const status = statusOrNull(path, `${what} path`);
  if (status === null) throw new BounceBenchError("ENOENT", `${path}: no such ${what} file or directory`, { kind: "input" });
  if (status.type !== "directory") return [path];
  const files: string[] = [];
  const walk = (dir: string) => {
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? "EIO";
      throw new BounceBenchError(code as `E${string}`, `${what} directory ${dir}: ${code} (cannot list it)`, { kind: "input" });
    }
    for (const entry of entries.sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const child = join(dir, entry.name);
      if (entry.isDirectory()) walk(child);
      else if (entry.name.endsWith(".json") && !entry.isSymbolicLink()) files.push(child);
      else if (entry.name.endsWith(".json") && statusOrNull(child, `${what} file`)?.type === "file") files.push(child);
    }
  };
  walk(path);
  if (files.length === 0) throw new BounceBenchError("INVALID_INPUT", `${path}: no .json ${what} files in it`);
  return files;
}

/**
 * UTF-8 text, decided one way: a leading byte-order mark (which some editors write) is dropped;
 * bytes that are not UTF-8 are refused, naming `what`, rather than read as replacement
 * characters that fail later with a confusing message.
 */
export function decodeText(bytes: Uint8Array, what: string): string {
  const start = bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? 3 : 0;
  try {
    return new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes.subarray(start));
  } catch {
    throw new InvalidInputError(`${what}: is not UTF-8 text`);
  }
}

/** The filesystem type of the file whose statx is `status` (`ext4`), from /proc/self/mountinfo. */
export function filesystemType(status: FileStatus): string | undefined {
  let mountinfo: string;
  try {
    mountinfo = readFileSync("/proc/self/mountinfo", "utf8");
  } catch {
    return undefined;
  }
  const device = `${status.devMajor}:${status.devMinor}`;
  for (const line of mountinfo.split("\n")) {
    const fields = line.split(" ");
    if (fields[2] !== device) continue;
    const separator = fields.indexOf("-");
    if (separator > 0) return fields[separator + 1];
  }
  return undefined;
}

/**
 * Refuses, before anything runs, an output path that names another output of the same command,
 * or one of its inputs (the same file by identity, or the same place for one not there yet):
 * `--output X --emit-fio X` would lose one of them, `--output` naming `--disk` would replace it.
 * Each entry is `[option, path]`; undefined paths are not given.
 */
export function refuseOutputsOverInputs(outputs: readonly [string, string | undefined][], inputs: readonly [string, string | undefined][]): void {
  const given = (list: readonly [string, string | undefined][]) => list.filter((entry): entry is [string, string] => entry[1] !== undefined);
  const outs = given(outputs);
  const ins = given(inputs);
  for (const [i, [option, path]] of outs.entries()) {
    for (const [other, otherPath] of [...outs.slice(i + 1), ...ins]) {
      if (samePlace(path, otherPath)) throw new InvalidInputError(`${option} ${path}: names the same file as ${other} ${otherPath}; one would replace the other`);
    }
  }
}

/** Whether two paths name the same file: by identity when both exist, else by where they land. */
function samePlace(a: string, b: string): boolean {
  const identity = (path: string) => {
    try {
      const status = statx(path);
      return `${status.devMajor}:${status.devMinor}:${status.inode}`;
    } catch {
      return null;
    }
  };
  const [ia, ib] = [identity(a), identity(b)];
  if (ia !== null && ib !== null) return ia === ib;
  const place = (path: string) => {
    try {
      return join(realpathSync(dirname(resolve(path))), basename(resolve(path)));
    } catch {
      return resolve(path);
    }
  };
  return place(a) === place(b);
}

/**
 * A new text file written as it goes (a trace), under the rules of `writeUserTextFile`: the
 * name appears (or replaces what was there, with `force`) only at `finish`; `abort` leaves
 * nothing behind.
 */
export class NewTextFile {
  readonly #created: { fd: number; commit(): void; abort(): void };
  readonly #encoder = new TextEncoder();
  #open = true;

  private constructor(created: { fd: number; commit(): void; abort(): void }) {
    this.#created = created;
  }

  static create(path: string, options: CreateFileOptions, role: string): NewTextFile {
    const existed = checkCreatable(path, options.force ?? false, role);
    return new NewTextFile(openForCreate(path, O_WRONLY, existed, role));
  }

  write(text: string): void {
    const bytes = this.#encoder.encode(text);
    let done = 0;
    while (done < bytes.length) done += writeSync(this.#created.fd, bytes, done);
  }

  finish(): void {
    if (!this.#open) return;
    this.#open = false;
    closeFd(this.#created.fd);
    this.#created.commit();
  }

  abort(): void {
    if (!this.#open) return;
    this.#open = false;
    closeFd(this.#created.fd);
    this.#created.abort();
  }
}
