/**
 * Whether one IO on a disk opened with `O_DIRECT` really bypassed the page cache, checked
 * around the IO with what the kernel reports:
 *
 *   traced       (root, regular files) buffered reads of the file, or pages of it a write
 *                dirtied in the page cache, during the IO, from the kernel's tracepoints
 *                (`PageCacheTrace`): any is a fallback
 *   cachestat    pages of the IO's disk range in the cache before and after: more after (a
 *                direct read adds none, a direct write drops the pages it covers) is a fallback;
 *   tmpfs        keeps every file in the page cache: its IO is always a fallback
 *
 * A buffered write that the filesystem writes back and drops before the call returns (btrfs)
 * leaves nothing for cachestat to see: without tracing, a write with no other sign is `null`
 * (unknown), never "direct".
 */
import type { Disk } from "../disk/disk";
import type { PageCacheTrace } from "../host/page-cache-trace";
import { cachedPages, fsyncFd } from "../native";
import type { IoOp } from "./planner";

export interface PageCacheUse {
  /** Whether the IO went through the page cache; null when nothing could tell. */
  used: boolean | null;
  /** Traced (null when not): a read's buffered reads of the file, a write's pages of it dirtied in the page cache. */
  traced: number | null;
  /** How it was found, in words. */
  evidence: string;
}

export class PageCacheWatch {
  readonly #before: number | null;

  /** Call just before the IO of `op` on disk bytes `[start, start+len)`; `trace` (cleared here) when root can trace the file. */
  constructor(
    readonly disk: Disk,
    readonly op: IoOp,
    readonly start: number,
    readonly len: number,
    readonly trace: PageCacheTrace | null,
  ) {
    // Clean pages first: a write over pages already dirty would dirty none, and show nothing.
    if (trace !== null && op === "write") fsyncFd(disk.fd);
    trace?.clear();
    this.#before = cachedPages(disk.fd, start, len)?.cached ?? null;
  }

  /** Call just after the IO. */
  finish(): PageCacheUse {
    const after = cachedPages(this.disk.fd, this.start, this.len)?.cached ?? null;
    const before = this.#before;
    const traced = this.trace?.pages() ?? null;
    // A read dirties guest memory, not the disk: only a write's dirtied pages are the disk file's
    // (the dirtied event names no filesystem, so another file with the inode number could count).
    const events = traced === null ? null : this.op === "read" ? traced.reads : traced.dirtied;
    if (events !== null && events > 0) {
      const what = this.op === "read" ? `was read through the page cache ${events} time(s)` : `had ${events} page(s) dirtied in the page cache by this write`;
      return { used: true, traced: events, evidence: `the file ${what} during the IO (the kernel's filemap and writeback tracepoints): the filesystem served it through the page cache` };
    }
    if (before !== null && after !== null) {
      if (this.op === "read" && after > before) {
        return { used: true, traced: events, evidence: `the range had ${before} page(s) cached before the read and ${after} after (cachestat): read through the page cache` };
      }
      if (this.op === "write" && after > before) {
        return { used: true, traced: events, evidence: `the range had ${before} page(s) cached before the write and ${after} after (cachestat), where a direct write drops them: written through the page cache` };
      }
    }
    if (this.disk.fsType === "tmpfs") return { used: true, traced: events, evidence: "tmpfs: its files are the page cache" };
    if (events !== null) return { used: false, traced: events, evidence: `no buffered ${this.op === "read" ? "read of the file" : "write dirtied a page of the file"} during the IO (the kernel's filemap and writeback tracepoints)` };
    if (after === null) return { used: null, traced: events, evidence: "unknown: this kernel has no cachestat(2), and tracing needs root" };
    if (this.op === "read") return { used: false, traced: events, evidence: `no page of the range was added to the page cache (cachestat: ${before} before, ${after} after)` };
    return { used: null, traced: events, evidence: "unknown: a buffered write can be written back and dropped before the call returns, which cachestat cannot see; tracing it needs root" };
  }
}
