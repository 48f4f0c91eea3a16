/**
 * Scratch directories that are ours, and only ours. A run makes one with `ScratchDir.make`:
 *
 *   <tmp>/bounce-bench-<use>-XXXXXX/    mkdtemp: a new real directory, mode 0700, ours
 *     .bounce-bench-scratch             the marker: made with O_EXCL, locked (an open file
 *                                       description lock) before a byte is written, then
 *                                       holding MARKER; the lock is held for the run's life
 *
 * A crashed run leaves its directory behind; the next run reclaims it (`reclaimScratchDirs`)
 * only when every one of these holds, judged through descriptors so that nothing can be swapped
 * in between the checks:
 *   - it is a real directory, never a symlink (lstat, then opened O_DIRECTORY | O_NOFOLLOW and
 *     checked to be the same inode), owned by the running user, with mode 0700;
 *   - its marker is a regular file of ours holding exactly MARKER: an empty or half-written
 *     marker is a live run being made, not a dead one;
 *   - the marker's lock can be taken: a live run holds it, whatever PID namespace it runs in
 *     (liveness never depends on process IDs).
 * Reclaiming unmounts what is mounted at or under that directory, detaches the loop devices
 * whose backing file lies in it, and deletes it; nothing else is ever touched.
 */
import { spawnSync } from "node:child_process";
import { closeSync, constants, existsSync, fstatSync, lstatSync, mkdtempSync, openSync, readdirSync, readFileSync, readlinkSync, rmdirSync, rmSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { tryLockRange } from "../native";
import { BounceBenchError } from "../base/errors";
import { loopTable, mountTable } from "./block-devices";

// node:fs opens with O_CLOEXEC already (libuv), so no child inherits a marker's lock.

/** Every scratch directory bounce-bench makes starts with this (then its use: disk, repro, trace). */
export const SCRATCH_PREFIX = "bounce-bench-";
const MARKER_NAME = ".bounce-bench-scratch";
/** Names the tracing instance a run made in a tracefs mounted here (`noteTraceInstance`). */
const TRACE_INSTANCE_NAME = ".bounce-bench-trace-instance";
const TRACE_INSTANCE = /^bounce-bench-\d+-[a-z0-9]+$/;
/** The marker's whole content: a directory whose marker holds anything else is not judged dead. */
const MARKER = "bounce-bench scratch directory; locked while its run lives\n";

export class ScratchDir implements Disposable {
  #markerFd: number;

  private constructor(
    /** The directory (its canonical path). */
    readonly path: string,
    markerFd: number,
  ) {
    this.#markerFd = markerFd;
  }

  /** Makes `<parent>/bounce-bench-<use>-XXXXXX`, first reclaiming crashed runs' leftovers there. */
  static make(use: string, parent = tmpdir()): ScratchDir {
    reclaimScratchDirs(parent);
    let path: string;
    try {
      path = mkdtempSync(join(parent, `${SCRATCH_PREFIX}${use}-`));
    } catch (error) {
      // A read-only or full temporary directory is the host's state, not a bug: say where and what.
      const code = (error as NodeJS.ErrnoException).code;
      if (code === undefined) throw error;
      const what = (error as Error).message.split(",")[0]!.replace(`${code}: `, "");
      throw new BounceBenchError(code as `E${string}`, `cannot make a scratch directory in ${parent}: ${code} (${what}); point TMPDIR at a directory it can write`, { kind: "io" });
    }
    let fd = -1;
    try {
      fd = openSync(join(path, MARKER_NAME), constants.O_CREAT | constants.O_EXCL | constants.O_RDWR | constants.O_NOFOLLOW, 0o600);
      if (!tryLockRange(fd, 0, 1)) throw new Error(`scratch directory ${path}: its new marker is locked by someone else`);
      writeSync(fd, MARKER);
      return new ScratchDir(path, fd);
    } catch (error) {
      if (fd >= 0) closeSync(fd);
      // Out of descriptors (EMFILE) the marker could not be made, and a recursive remove, which
      // opens the directory, fails too: an empty directory goes by rmdir, which needs none.
      try {
        rmdirSync(path);
      } catch {
        rmSync(path, { recursive: true, force: true });
      }
      throw error;
    }
  }

  /**
   * Records, before it is made, the name of a tracing instance this run makes in a tracefs
   * mounted in this directory: instances belong to the machine, not the mount, so reclaiming a
   * killed run removes it before unmounting (it would trace on, unseen, otherwise).
   */
  noteTraceInstance(name: string): void {
    if (!TRACE_INSTANCE.test(name)) throw new Error(`scratch directory ${this.path}: ${JSON.stringify(name)} is not a tracing instance name of ours`);
    const fd = openSync(join(this.path, TRACE_INSTANCE_NAME), constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY | constants.O_NOFOLLOW, 0o600);
    try {
      writeSync(fd, name);
    } finally {
      closeSync(fd);
    }
  }

  /** Unmounts, detaches and deletes everything in the directory, then lets its lock go. Idempotent; never throws. */
  remove(): void {
    if (this.#markerFd < 0) return;
    tearDown(this.path);
    closeSync(this.#markerFd);
    this.#markerFd = -1;
  }

  [Symbol.dispose](): void {
    this.remove();
  }
}

/**
 * Reclaims the scratch directories under `parent` that are provably ours and dead (see the
 * module doc), with what is mounted under them and the loop devices over files in them.
 * Returns the directories reclaimed.
 */
export function reclaimScratchDirs(parent = tmpdir()): string[] {
  let names: string[];
  try {
    names = readdirSync(parent).filter((name) => name.startsWith(SCRATCH_PREFIX));
  } catch {
    return [];
  }
  const reclaimed: string[] = [];
  for (const name of names) {
    const judged = judge(join(parent, name), "take");
    if (judged === null) continue;
    try {
      if (judged.dead) {
        tearDown(judged.path);
        reclaimed.push(judged.path);
      }
    } finally {
      judged.close();
    }
  }
  return reclaimed;
}

/**
 * Whether `dir` is a scratch directory of ours whose run still lives: its checks pass and its
 * marker's lock is held (by that run; this process's own directories count).
 */
export function isLiveScratchDir(dir: string): boolean {
  const judged = judge(dir, "look");
  if (judged === null) return false;
  judged.close();
  return !judged.dead;
}

/**
 * Opens `dir` and its marker through descriptors and checks them; null when it is not a
 * complete scratch directory of ours. `dead`: its lock could be taken ("take": and is kept
 * until `close`, so that no live run can start using it meanwhile; "look": and is let go).
 */
function judge(dir: string, lock: "take" | "look"): { path: string; dead: boolean; close(): void } | null {
  const uid = process.getuid?.() ?? -1;
  const ours = (status: { uid: number; mode: number }) => status.uid === uid && (status.mode & 0o777) === 0o700;
  let dirFd = -1;
  let markerFd = -1;
  const close = () => {
    if (markerFd >= 0) closeSync(markerFd);
    if (dirFd >= 0) closeSync(dirFd);
    markerFd = dirFd = -1;
  };
  try {
    const seen = lstatSync(dir);
    if (!seen.isDirectory() || !ours(seen)) return null;
    dirFd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
    const opened = fstatSync(dirFd);
    if (opened.ino !== seen.ino || opened.dev !== seen.dev || !ours(opened)) return close(), null;
    // Through the descriptor: the directory checked is the one the marker is read from.
    const path = readlinkSync(`/proc/self/fd/${dirFd}`);
    markerFd = openSync(`/proc/self/fd/${dirFd}/${MARKER_NAME}`, constants.O_RDWR | constants.O_NOFOLLOW);
    const marker = fstatSync(markerFd);
    if (!marker.isFile() || marker.uid !== uid || marker.size !== MARKER.length) return close(), null;
    if (readFileSync(markerFd, "utf8") !== MARKER) return close(), null;
    const dead = tryLockRange(markerFd, 0, 1);
    if (dead && lock === "look") {
      close(); // lets the lock go with the descriptor
      return { path, dead, close: () => {} };
    }
    return { path, dead, close };
  } catch {
    close();
    return null;
  }
}

/**
 * Removes `dir` and what lives in it: tracing instances noted in it (or in directories below
 * it, for a directory that holds scratch directories of runs, as the mutant runner's does), then
 * mounts under it, loop devices over files in it, and the directory. Only for directories this
 * process made or has proved are bounce-bench's (`reclaimScratchDirs`).
 */
export function tearDown(dir: string): void {
  for (const noted of notedTraceDirs(dir)) removeTraceInstance(noted, dir);
  for (const mountPoint of mountsUnder(dir).sort((a, b) => b.length - a.length)) {
    if (spawnSync(findProgram("umount") ?? "umount", [mountPoint]).status !== 0) spawnSync(findProgram("umount") ?? "umount", ["-l", mountPoint]);
  }
  for (const device of loopDevicesOver(dir)) spawnSync(findProgram("losetup") ?? "losetup", ["-d", device]);
  // Whatever could not be unmounted stays, rather than deleting through a mount.
  if (mountsUnder(dir).length === 0) rmSync(dir, { recursive: true, force: true });
}

/** `dir` and the directories below it (never crossing into a mount) that hold a noted tracing instance's name. */
function notedTraceDirs(dir: string): string[] {
  const found: string[] = [];
  const mounts = new Set(mountsUnder(dir));
  const walk = (at: string) => {
    let entries;
    try {
      entries = readdirSync(at, { withFileTypes: true });
    } catch {
      return;
    }
    for (const entry of entries) {
      if (entry.isFile() && entry.name === TRACE_INSTANCE_NAME) found.push(at);
      else if (entry.isDirectory() && !mounts.has(join(at, entry.name))) walk(join(at, entry.name));
    }
  };
  walk(dir);
  return found;
}

/** The tracing instance noted in `noted` (`noteTraceInstance`), removed through a tracefs mounted under `dir` if it is still there. */
function removeTraceInstance(noted: string, dir: string): void {
  let name: string;
  try {
    name = readFileSync(join(noted, TRACE_INSTANCE_NAME), { encoding: "utf8", flag: constants.O_RDONLY | constants.O_NOFOLLOW });
  } catch {
    return; // no tracing here
  }
  if (!TRACE_INSTANCE.test(name)) return;
  for (const mountPoint of mountsUnder(dir)) {
    const instance = join(mountPoint, "instances", name);
    try {
      if (!lstatSync(instance).isDirectory()) continue;
      rmdirSync(instance); // tracefs disables and frees an instance on rmdir
    } catch {
      // not this mount's, or gone already
    }
  }
}

/** Mount points at or under `dir`. */
export function mountsUnder(dir: string): string[] {
  return mountTable()
    .map((mount) => mount.point)
    .filter((point) => point === dir || point.startsWith(`${dir}/`));
}

/** Loop devices whose backing file lies in `dir`. */
function loopDevicesOver(dir: string): string[] {
  return loopTable()
    .filter((loop) => loop.backing.startsWith(`${dir}/`))
    .map((loop) => `/dev/${loop.name}`);
}

/** The path of `program` on PATH or in the sbin directories root's PATH has, or null. */
export function findProgram(program: string): string | null {
  const dirs = [...(process.env.PATH ?? "").split(delimiter), "/usr/local/sbin", "/usr/sbin", "/sbin"];
  for (const dir of dirs) {
    if (dir !== "" && existsSync(join(dir, program))) return join(dir, program);
  }
  return null;
}
