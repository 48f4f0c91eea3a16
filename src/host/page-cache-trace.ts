/**
 * Whether IO on one file went through the page cache, as the kernel itself reports it: its
 * tracepoints fire as a file's IO goes through the cache: `filemap:mm_filemap_get_pages` for
 * every buffered read (cached or not), `writeback:writeback_dirty_folio` for every clean page a
 * buffered write dirties.
 * A filesystem that serves `O_DIRECT` through the page cache (btrfs for every write to a file
 * with data checksums and for misaligned reads) sets one of them off; true direct IO none (a
 * write over pages already dirty would not: `PageCacheWatch` flushes the file first). `cachestat(2)` cannot tell for writes:
 * btrfs writes its buffered fallback back and drops the pages before the call returns.
 *
 *   trace = PageCacheTrace.start(fd)     tracing on, for the pages of the file open at fd only
 *   ... IO ...
 *   trace.pages()                        buffered reads of the file and pages of it dirtied, since start (or the last clear)
 *   trace.clear()                        start counting again
 *   trace.close()                        tracing off, everything made undone
 *
 * Root only. Nothing shared is touched: tracefs is mounted in a scratch directory of this
 * process (`ScratchDir`; never the system's /sys/kernel/tracing, which other tools use), and the events are
 * recorded in a tracing instance of its own (instances are global to the machine: ours is
 * named bounce-bench-<pid>-<random>). `close` removes the instance, unmounts and removes the
 * directory, whatever happened; so does a failure while starting.
 *
 * The events are filtered to the file's inode number in the kernel, then here: a read to the
 * file's filesystem (the event names the superblock's device, which for btrfs is not the
 * `st_dev` of its files, so both that and the device /proc/self/mountinfo gives the mount
 * holding the file count), a dirtied page to this process's threads (the event names only the
 * backing device, which btrfs calls by a name of its own). A file of another filesystem with
 * the same inode number used by another process at that moment cannot count.
 */
import { spawnSync } from "node:child_process";
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, readlinkSync, rmdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { BounceBenchError } from "../base/errors";
import { statx } from "../native";
import { findProgram, ScratchDir } from "./scratch-dir";

const READ = "events/filemap/mm_filemap_get_pages";
const DIRTIED = "events/writeback/writeback_dirty_folio";
const EVENTS = [READ, DIRTIED];
/** Ring buffer per CPU: enough to see that pages were added, bounded however many were. */
const BUFFER_KB = 64;

export class PageCacheTrace implements Disposable {
  #closed = false;

  private constructor(
    readonly scratch: ScratchDir,
    /** Where tracefs is mounted (ours). */
    readonly mountPoint: string,
    /** Our tracing instance, under `mountPoint/instances`. */
    readonly instance: string,
    /** The devices ("major:minor") an event for the file may name. */
    readonly devices: ReadonlySet<string>,
  ) {}

  /** Why tracing cannot be used here, or null. */
  static unavailable(): string | null {
    if (process.getuid?.() !== 0) return "needs root (tracefs)";
    if (findProgram("mount") === null || findProgram("umount") === null) return "needs mount and umount";
    if (!readFileSync("/proc/filesystems", "utf8").includes("tracefs")) return "the kernel has no tracefs";
    return null;
  }

  /**
   * Starts watching the regular file open at `fd` (the descriptor the IO uses, so that a path
   * renamed or replaced meanwhile cannot make it watch another file).
   */
  static start(fd: number): PageCacheTrace {
    const why = PageCacheTrace.unavailable();
    if (why !== null) throw new BounceBenchError("TRACE_UNAVAILABLE", `page-cache tracing ${why}`);
    const status = statx(fd);
    const devices = new Set([`${status.devMajor}:${status.devMinor}`, mountDevice(readlinkSync(`/proc/self/fd/${fd}`))].filter((d): d is string => d !== null));
    // A scratch directory of ours (reclaimed, mount and all, if this run dies); tracefs goes on
    // a directory inside it, so that its marker stays visible.
    const scratch = ScratchDir.make("trace");
    const mountPoint = join(scratch.path, "tracefs");
    mkdirSync(mountPoint);
    let mounted = false;
    let instance: string | null = null;
    try {
      const mount = spawnSync(findProgram("mount")!, ["-t", "tracefs", "nodev", mountPoint], { encoding: "utf8" });
      if (mount.status !== 0) throw new BounceBenchError("TRACE_UNAVAILABLE", `mount -t tracefs: ${(mount.stderr || `exit ${mount.status}`).trim()}`);
      mounted = true;
      const name = `bounce-bench-${process.pid}-${Math.random().toString(36).slice(2, 10)}`;
      scratch.noteTraceInstance(name); // so that a killed run's instance is removed by the next run
      instance = join(mountPoint, "instances", name);
      mkdirSync(instance);
      writeFileSync(join(instance, "buffer_size_kb"), String(BUFFER_KB));
      writeFileSync(join(instance, READ, "filter"), `i_ino == ${status.inode}`);
      writeFileSync(join(instance, DIRTIED, "filter"), `ino == ${status.inode}`);
      for (const event of EVENTS) writeFileSync(join(instance, event, "enable"), "1");
      return new PageCacheTrace(scratch, mountPoint, instance, devices);
    } catch (error) {
      undo(scratch, mountPoint, mounted, instance);
      throw error;
    }
  }

  /**
   * `start`, or null where tracing cannot be used here (not root, no tracefs, a mount refused):
   * callers then fall back to what cachestat can tell, and say so.
   */
  static tryStart(fd: number): PageCacheTrace | null {
    if (PageCacheTrace.unavailable() !== null) return null;
    try {
      return PageCacheTrace.start(fd);
    } catch (error) {
      if (error instanceof BounceBenchError && error.code === "TRACE_UNAVAILABLE") return null;
      throw error;
    }
  }

  /** Since `start` or the last `clear`: buffered reads of the file (`reads`), and pages of it a write of this process dirtied in the page cache (`dirtied`). */
  pages(): { reads: number; dirtied: number } {
    if (this.#closed) throw new BounceBenchError("RELEASED", "page-cache trace: used after close");
    const threads = new Set(readdirSync("/proc/self/task"));
    let reads = 0;
    let dirtied = 0;
    for (const line of readFileSync(join(this.instance, "trace"), "utf8").split("\n")) {
      const read = /mm_filemap_get_pages: dev=(\d+:\d+) /.exec(line);
      if (read !== null && this.devices.has(read[1]!)) reads++;
      const dirty = /^\s*.+-(\d+)\s+\[\d+\].*writeback_dirty_folio: /.exec(line);
      if (dirty !== null && threads.has(dirty[1]!)) dirtied++;
    }
    return { reads, dirtied };
  }

  /** Empties the record: `pages` counts from here. */
  clear(): void {
    if (this.#closed) throw new BounceBenchError("RELEASED", "page-cache trace: used after close");
    // Opening the instance's trace file for writing with O_TRUNC empties its ring buffer.
    closeSync(openSync(join(this.instance, "trace"), "w"));
  }

  /** Tracing off; the instance, the mount and the directory gone. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    undo(this.scratch, this.mountPoint, true, this.instance);
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/** Disables and removes our instance, unmounts our tracefs and removes its scratch directory, as far as each was made. */
function undo(scratch: ScratchDir, mountPoint: string, mounted: boolean, instance: string | null): void {
  if (mounted && instance !== null) {
    try {
      for (const event of EVENTS) writeFileSync(join(instance, event, "enable"), "0");
    } catch {
      // the instance was not made this far
    }
    try {
      rmdirSync(instance);
    } catch {
      // not made
    }
  }
  if (mounted) spawnSync(findProgram("umount")!, [mountPoint]);
  scratch.remove(); // never deletes through a mount that would not go
}

/** The device ("major:minor") /proc/self/mountinfo gives for the mount holding `path`: its superblock's. */
export function mountDevice(path: string): string | null {
  let best: { point: string; device: string } | null = null;
  for (const line of readFileSync("/proc/self/mountinfo", "utf8").split("\n")) {
    const fields = line.split(" ");
    if (fields.length < 5) continue;
    const point = fields[4]!.replace(/\\040/g, " ");
    const inside = path === point || path.startsWith(point.endsWith("/") ? point : `${point}/`);
    if (inside && (best === null || point.length >= best.point.length)) best = { point, device: fields[2]! };
  }
  return best?.device ?? null;
}
