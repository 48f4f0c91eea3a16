/**
 * BounceBuffer and BounceBufferTracker on one thread: alignment (proved by a real O_DIRECT
 * read), release, budgets, FIFO order, and the reference's tracker defects.
 */
import { describe, expect, test } from "bun:test";
import { closeSync, openSync, readFileSync, readSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  BounceBudgetError,
  BounceBuffer,
  BounceBufferTracker,
  DEFAULT_BOUNCE_PAGES_PER_THREAD,
  ReleasedError,
  type TrackedBounceBuffer,
} from "../src";
import { closeFd, IovecArray, O_DIRECT, O_RDONLY, openFile, physicalFrames, physicalRuns, preadv, runLengths } from "../src/native";
import { transparentHugePageMode } from "../src/bench/guest-backing";
import fc from "fast-check";
import { PAGE, randomBytes, rejection, scratchDir, thrown } from "./helpers";

const dir = scratchDir("bounce");

/** /proc/kpageflags bits (Documentation/admin-guide/mm/pagemap.rst). */
const KPF_COMPOUND_HEAD = 1n << 15n;
const KPF_COMPOUND_TAIL = 1n << 16n;
const KPF_THP = 1n << 22n;

function pageFlags(frame: number): bigint {
  const entry = Buffer.alloc(8);
  const fd = openSync("/proc/kpageflags", "r");
  try {
    readSync(fd, entry, 0, 8, frame * 8);
  } finally {
    closeSync(fd);
  }
  return entry.readBigUInt64LE(0);
}

describe("BounceBuffer", () => {
  test("page-aligned, zeroed, exactly `size` bytes, one iovec", () => {
    using buffer = new BounceBuffer(3 * PAGE + 5);
    expect(buffer.size).toBe(3 * PAGE + 5);
    expect(buffer.pages).toBe(4);
    expect(buffer.bytes.length).toBe(3 * PAGE + 5);
    expect(buffer.bytes.every((b) => b === 0)).toBe(true);
    expect((buffer.address() as number) % PAGE).toBe(0);
    const iovecs = buffer.iovecs();
    expect(iovecs.count).toBe(1);
    expect(iovecs.base(0)).toBe(buffer.address() as number);
    expect(iovecs.length(0)).toBe(3 * PAGE + 5);
  });

  const directPath = join(dir, "direct.bin");
  const data = randomBytes(2 * PAGE, 11);
  writeFileSync(directPath, data);
  const noDirect = (() => {
    try {
      closeFd(openFile(directPath, O_RDONLY | O_DIRECT));
      return null;
    } catch (error) {
      return `${dir} does not support O_DIRECT (${(error as Error).message})`;
    }
  })();
  test.skipIf(noDirect !== null)(`the kernel accepts it for O_DIRECT${noDirect === null ? "" : ` (skipped: ${noDirect})`}`, () => {
    const fd = openFile(directPath, O_RDONLY | O_DIRECT);
    try {
      using buffer = new BounceBuffer(2 * PAGE);
      expect(preadv(fd, buffer.iovecs().address(), 1, 0)).toBe(2 * PAGE);
      expect(buffer.bytes).toEqual(data);
    } finally {
      closeFd(fd);
    }
  });

  test("with hugePages: starts on a 2 MiB boundary, is zeroed, gets huge pages where THP allows, and takes direct IO", () => {
    const mode = /\[(\w+)\]/.exec(readFileSync("/sys/kernel/mm/transparent_hugepage/enabled", "utf8"))?.[1];
    const data = randomBytes(3 * 2 ** 20, 12);
    const path = join(dir, "huge.bin");
    writeFileSync(path, data);
    using buffer = new BounceBuffer(3 * 2 ** 20 + 100, PAGE, { hugePages: true });
    expect((buffer.address() as number) % 2 ** 21).toBe(0);
    expect(buffer.bytes.length).toBe(3 * 2 ** 20 + 100);
    expect(buffer.bytes.every((b) => b === 0)).toBe(true);
    // Backing is the kernel's choice; with THP on, a fresh 2 MiB-aligned region gets it.
    if (mode === "always" || mode === "madvise") expect(buffer.hugePageBytes()).toBeGreaterThan(0);
    else expect(buffer.hugePageBytes()).toBe(0);
    using plain = new BounceBuffer(3 * 2 ** 20);
    if (mode === "madvise") expect(plain.hugePageBytes()).toBe(0);
    const fd = openFile(path, O_RDONLY | O_DIRECT);
    try {
      using iovecs = new IovecArray(1);
      iovecs.push(buffer.address(), data.length);
      expect(preadv(fd, iovecs.address(), 1, 0)).toBe(data.length);
    } finally {
      closeFd(fd);
    }
    expect(buffer.bytes.subarray(0, data.length)).toEqual(data);
    expect(buffer.bytes.subarray(data.length).every((b) => b === 0)).toBe(true);
    // Page frames are visible to root only; a huge page is one physically contiguous run.
    const runs = physicalRuns(buffer.address(), 2 ** 21);
    if (process.getuid?.() !== 0) expect(runs).toBeNull();
    else if (buffer.hugePageBytes() >= 2 ** 21) expect(runs).toBe(1);
  });

  test("physicalRuns counts physically contiguous runs, and pages not yet present as runs of their own", () => {
    using buffer = new BounceBuffer(8 * PAGE);
    expect(physicalRuns(buffer.address(), 8 * PAGE)).toBeNull(); // nothing faulted in yet
    buffer.bytes[0] = 1; // fault in the first page only
    const runs = physicalRuns(buffer.address(), 8 * PAGE);
    if (process.getuid?.() !== 0) return expect(runs).toBeNull();
    expect(runs).toBe(8); // one present page, seven absent ones
    buffer.bytes.fill(2);
    const present = physicalRuns(buffer.address(), 8 * PAGE)!;
    expect(present).toBeGreaterThanOrEqual(1);
    expect(present).toBeLessThanOrEqual(8);
    expect(physicalRuns(buffer.address(), PAGE)).toBe(1);
  });

  // Laying memory out needs page frames (root) and huge pages to split (THP not `never`).
  const layoutUnavailable =
    process.getuid?.() !== 0 ? "page frames are visible to root only" : transparentHugePageMode() === "never" ? "transparent huge pages are off" : noDirect;
  test.skipIf(layoutUnavailable !== null)(
    `a buffer asked for physical runs has exactly them, on base pages, zeroed, and takes direct IO (property)${layoutUnavailable === null ? "" : ` (skipped: ${layoutUnavailable})`}`,
    () => {
      fc.assert(
        fc.property(fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 1, maxLength: 24 }), (runs) => {
          const pages = runs.reduce((sum, run) => sum + run, 0);
          using buffer = new BounceBuffer(pages * PAGE - 5, PAGE, { runs });
          expect(buffer.layoutMatched).toBe(true);
          const frames = physicalFrames(buffer.address(), pages * PAGE)!;
          expect(runLengths(frames)).toEqual(runs);
          // Base pages: no frame belongs to a huge (compound) page.
          for (const frame of frames) expect(pageFlags(frame) & (KPF_COMPOUND_HEAD | KPF_COMPOUND_TAIL | KPF_THP)).toBe(0n);
          expect(buffer.bytes.every((b) => b === 0)).toBe(true);
        }),
        { numRuns: 25 },
      );
      // The kernel reads into it directly, and the bytes land in order across the runs.
      using buffer = new BounceBuffer(2 * PAGE, PAGE, { runs: [1, 1] });
      const fd = openFile(directPath, O_RDONLY | O_DIRECT);
      try {
        expect(preadv(fd, buffer.iovecs().address(), 1, 0)).toBe(2 * PAGE);
      } finally {
        closeFd(fd);
      }
      expect(buffer.bytes).toEqual(data);
    },
  );

  test("release is deterministic and idempotent; any later use fails", () => {
    const buffer = new BounceBuffer(PAGE);
    const view = buffer.bytes;
    const iovecs = buffer.iovecs();
    buffer.release();
    buffer.release();
    expect(buffer.released).toBe(true);
    expect(view.length).toBe(0);
    expect(thrown(() => buffer.bytes)).toBeInstanceOf(ReleasedError);
    expect(thrown(() => buffer.address())).toBeInstanceOf(ReleasedError);
    expect(thrown(() => iovecs.address())).toBeInstanceOf(ReleasedError);
  });

  test("`using` releases at the end of the scope", () => {
    let escaped: BounceBuffer;
    {
      using buffer = new BounceBuffer(10);
      escaped = buffer;
    }
    expect(escaped.released).toBe(true);
  });

  test("sizes outside 1 .. 1 GiB are refused", () => {
    for (const size of [0, -1, 1.5, 2 ** 30 + 1]) expect(() => new BounceBuffer(size)).toThrow("bounce buffer size");
  });
});

describe("BounceBufferTracker", () => {
  test("the default budget is 2048 pages per thread", () => {
    const tracker = new BounceBufferTracker();
    expect(DEFAULT_BOUNCE_PAGES_PER_THREAD).toBe(2048);
    expect(tracker.maxPagesPerThread).toBe(2048);
    expect(tracker.freePages(0)).toBe(2048);
  });

  test("acquire takes ceil(size/4096) pages; release returns them, once", async () => {
    const tracker = new BounceBufferTracker(8, 2);
    const buffer = await tracker.acquire(PAGE + 1, 1);
    expect(buffer.size).toBe(PAGE + 1);
    expect(tracker.freePages(1)).toBe(6);
    expect(tracker.freePages(0)).toBe(8);
    buffer.release();
    buffer.release();
    expect(tracker.freePages(1)).toBe(8);
    expect(tracker.stats(1)).toMatchObject({ acquired: 1, waits: 0, peakPages: 2, inUsePages: 0, budgetPages: 8 });
  });

  test("a request larger than the whole budget fails at once instead of waiting forever", async () => {
    const tracker = new BounceBufferTracker(4, 1);
    // Awaiting it would hang the test (until its timeout) if the request were queued instead.
    const error = await rejection(tracker.acquire(4 * PAGE + 1, 0));
    expect(error).toBeInstanceOf(BounceBudgetError);
    expect(error.code).toBe("BUDGET_EXCEEDED");
    expect(error.message).toContain("16385 bytes (5 pages) exceeds the per-thread budget of 4 pages");
    expect(thrown(() => tracker.tryAcquire(5 * PAGE, 0)).code).toBe("BUDGET_EXCEEDED");
    expect(tracker.freePages(0)).toBe(4);
  });

  test("a thread index outside the tracker is a clear error, not a crash", async () => {
    const tracker = new BounceBufferTracker(4, 2);
    for (const thread of [2, -1, 0.5, Number.NaN]) {
      const error = await rejection(tracker.acquire(PAGE, thread));
      expect(error.code).toBe("BAD_THREAD");
      expect(error.message).toBe(`bounce tracker: thread ${thread} does not exist (threads 0 .. 1)`);
    }
  });

  test("bad budgets and thread counts are refused", () => {
    expect(() => new BounceBufferTracker(0, 1)).toThrow("bounce budget");
    expect(() => new BounceBufferTracker(4, 0)).toThrow("thread count");
    expect(() => new BounceBufferTracker(1.5, 1)).toThrow("bounce budget");
  });

  test("waiters are served in arrival order: a large request is not starved by small ones", async () => {
    const tracker = new BounceBufferTracker(4, 1);
    const order: string[] = [];
    const held = await tracker.acquire(3 * PAGE, 0); // one page left
    const large = tracker.acquire(4 * PAGE, 0).then((b) => (order.push("large"), b));
    // Small requests arriving later would fit in the free page, but must queue behind `large`.
    const smalls = [1, 2, 3].map((i) => tracker.acquire(PAGE, 0).then((b) => (order.push(`small${i}`), b)));
    expect(tracker.tryAcquire(PAGE, 0)).toBeNull(); // does not jump the queue either
    await Bun.sleep(20);
    expect(order).toEqual([]);
    held.release();
    const big = await large;
    await Bun.sleep(5);
    expect(order).toEqual(["large"]);
    big.release();
    const served = await Promise.all(smalls);
    expect(order).toEqual(["large", "small1", "small2", "small3"]);
    served.forEach((b) => b.release());
    const stats = tracker.stats(0);
    expect(stats).toMatchObject({ acquired: 5, waits: 4, peakPages: 4, inUsePages: 0 });
    expect(stats.waitNs).toBeGreaterThan(0);
  });

  test("random acquire/release interleavings never exceed the budget or leak a page", async () => {
    for (let round = 0; round < 20; round++) {
      const budget = 1 + (round % 7);
      const tracker = new BounceBufferTracker(budget, 1);
      const random = randomBytes(200, round + 1);
      const held: TrackedBounceBuffer[] = [];
      const pending: Promise<void>[] = [];
      for (let step = 0; step < 60; step++) {
        const r = random[step]!;
        if (r % 3 === 0 && held.length > 0) {
          held.splice(r % held.length, 1)[0]!.release();
        } else {
          const size = 1 + ((r * 97) % (budget * PAGE));
          pending.push(tracker.acquire(size, 0).then((b) => void held.push(b)));
        }
        await Bun.sleep(0);
        const inUse = held.reduce((pages, b) => pages + b.pages, 0);
        expect(inUse).toBeLessThanOrEqual(budget);
        expect(tracker.freePages(0)).toBe(budget - inUse);
      }
      // Drain: keep releasing until every pending request has been served and released.
      while (held.length > 0 || tracker.stats(0).acquired < pending.length) {
        held.splice(0).forEach((b) => b.release());
        await Bun.sleep(0);
      }
      await Promise.all(pending);
      held.splice(0).forEach((b) => b.release());
      expect(tracker.freePages(0)).toBe(budget);
      expect(tracker.stats(0).peakPages).toBeLessThanOrEqual(budget);
    }
  });
});
