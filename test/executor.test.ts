/**
 * The executor, on real files with O_DIRECT: a prepared IO run shifted along the disk (what
 * `bench` does with every IO) has exactly the effect of planning and executing the IO at the
 * shifted offset, for random scatter-gather lists, directions, modes, simulated alignments and
 * engines.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { copyFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import type { BounceBenchError } from "../src/base/errors";
import { BounceBufferTracker } from "../src/bounce/bounce-tracker";
import { Disk } from "../src/disk/disk";
import { executePlan, Executor } from "../src/io/executor";
import { plan, type IoMode, type IoOp } from "../src/io/planner";
import { PreparedIo } from "../src/io/prepared-io";
import { RangeLocks } from "../src/io/range-locks";
import { GuestMemory } from "../src/memory/guest-memory";
import { PagedRange } from "../src/memory/paged-range";
import { fileBytes, PAGE, randomBytes, scratchDir } from "./helpers";

const dir = scratchDir("executor");
const GUEST_PAGES = 48;
const DISK_BYTES = 256 * 1024;
const files = (name: string) => ({ guest: join(dir, `${name}-guest.img`), disk: join(dir, `${name}-disk.bin`) });
const shifted = files("shifted");
const fresh = files("fresh");
const opened: { release(): void }[] = [];
afterAll(() => opened.forEach((resource) => resource.release()));

const arbitraryCase = fc.record({
  segments: fc.array(
    fc.record({ gpn: fc.integer({ min: 0, max: GUEST_PAGES - 3 }), pages: fc.integer({ min: 1, max: 2 }), offset: fc.nat(8191), len: fc.nat(8191) }),
    { minLength: 1, maxLength: 4 },
  ),
  at: fc.nat(64 * 1024),
  blocksFurther: fc.nat(24),
  op: fc.constantFrom<IoOp>("read", "write"),
  mode: fc.constantFrom<IoMode>("auto", "bounce", "buffered"),
  align: fc.constantFrom<number | undefined>(undefined, 1024, 4096),
  engine: fc.constantFrom("sync" as const, "uring" as const),
  seed: fc.integer({ min: 1, max: 1 << 30 }),
});

describe("a prepared IO run shifted along the disk", () => {
  test("has the effect of the same IO planned and executed there: disk, guest, calls and bytes", async () => {
    await fc.assert(
      fc.asyncProperty(arbitraryCase, async (c) => {
        const segments = c.segments.map(({ gpn, pages, offset, len }) => {
          const span = pages * PAGE;
          const start = offset % span;
          return new PagedRange(start, 1 + (len % (span - start)), Array.from({ length: pages }, (_, i) => gpn + i));
        });
        // Both sides start from the same bytes.
        writeFileSync(shifted.guest, randomBytes(GUEST_PAGES * PAGE, c.seed));
        writeFileSync(shifted.disk, randomBytes(DISK_BYTES, c.seed + 1));
        copyFileSync(shifted.guest, fresh.guest);
        copyFileSync(shifted.disk, fresh.disk);
        const open = (where: typeof shifted) => {
          const memory = GuestMemory.open(where.guest);
          const disk = Disk.open(where.disk, { write: c.op === "write", direct: c.mode !== "buffered", alignOverride: c.align });
          return { memory, disk };
        };
        const a = open(shifted);
        const b = open(fresh);
        try {
          const planned = plan({ op: c.op, mode: c.mode, at: c.at, segments, alignment: a.disk.alignment });
          const shift = Math.min(c.blocksFurther, Math.floor((DISK_BYTES - planned.diskEnd) / planned.blockSize)) * planned.blockSize;
          if (planned.diskEnd > DISK_BYTES) return; // does not fit: planning refuses it, tested elsewhere
          using io = PreparedIo.prepare(planned, a.memory, a.disk, { locks: c.op === "write" ? new RangeLocks(4) : undefined });
          io.checkShift(shift);
          let failure: Error | null = null;
          using executor = new Executor(c.engine, 1, (_slot, error) => (failure = error));
          // Twice, at two places: the second run must not inherit anything from the first.
          executor.start(0, io, 0);
          await executor.run();
          executor.start(0, io, shift);
          await executor.run();
          const calls = executor.calls[0];
          const diskBytes = executor.diskBytes[0];
          expect(failure).toBeNull();

          const first = await executePlan(planned, b.memory, b.disk);
          const there = await executePlan(plan({ op: c.op, mode: c.mode, at: c.at + shift, segments, alignment: b.disk.alignment }), b.memory, b.disk);
          a.memory.sync();
          b.memory.sync();
          expect(fileBytes(shifted.disk)).toEqual(fileBytes(fresh.disk));
          expect(fileBytes(shifted.guest)).toEqual(fileBytes(fresh.guest));
          expect({ calls, diskBytes }).toEqual({ calls: there.calls, diskBytes: there.diskBytes });
          expect(first.bytes).toBe(there.bytes);
        } finally {
          for (const side of [a, b]) {
            side.disk.close();
            side.memory.release();
          }
        }
      }),
      { numRuns: 80 },
    );
  }, 60_000);

  test("a shift that is not a whole number of blocks, or leaves the disk, is refused before any IO", () => {
    using memory = GuestMemory.create(join(dir, "refuse-guest.img"), 4 * PAGE);
    writeFileSync(join(dir, "refuse-disk.bin"), new Uint8Array(16 * PAGE));
    using disk = Disk.open(join(dir, "refuse-disk.bin"), { write: false, direct: true, alignOverride: 4096 });
    using io = PreparedIo.prepare(plan({ op: "read", mode: "auto", at: 100, segments: [new PagedRange(0, 512, [0])], alignment: disk.alignment }), memory, disk);
    expect(() => io.checkShift(512)).toThrow("multiples of the 4096-byte block");
    expect(() => io.checkShift(16 * PAGE)).toThrow("within the disk");
    expect(() => io.checkShift(-4096)).toThrow("within the disk");
    io.checkShift(15 * PAGE);
  });

  test("bounce memory handed in must hold the plan and be aligned for the disk, or nothing is prepared", async () => {
    const { BounceBuffer } = await import("../src/bounce/bounce-buffer");
    using memory = GuestMemory.create(join(dir, "area-guest.img"), 4 * PAGE);
    writeFileSync(join(dir, "area-disk.bin"), new Uint8Array(16 * PAGE));
    using disk = Disk.open(join(dir, "area-disk.bin"), { write: false, direct: true });
    const bounced = plan({ op: "read", mode: "bounce", at: 0, segments: [new PagedRange(8, 4096, [0, 1])], alignment: disk.alignment });
    using buffer = new BounceBuffer(2 * PAGE);
    const area = (offset: number, len: number) => ({ address: (buffer.address() as number) + offset, bytes: buffer.bytes.subarray(offset, offset + len) });
    expect(() => PreparedIo.prepare(bounced, memory, disk, { bounce: area(0, 2048) })).toThrow(expect.objectContaining({ code: "BOUNCE_TOO_SMALL" }));
    expect(() => PreparedIo.prepare(bounced, memory, disk, { bounce: area(512, 4096) })).toThrow(expect.objectContaining({ code: "BOUNCE_TOO_SMALL" }));
    using io = PreparedIo.prepare(bounced, memory, disk, { bounce: area(PAGE, PAGE) });
    expect(io.copiedBytes).toBe(4096);
  });
});

describe("memory that IO in flight points into", () => {
  test("guest memory released while its read is queued stays mapped until the read is done; the read lands in its own image", async () => {
    const { IoQueue } = await import("../src/io/executor");
    const { ReleasedError } = await import("../src/base/errors");
    const a = join(dir, "inflight-a.img");
    const b = join(dir, "inflight-b.img");
    const diskPath = join(dir, "inflight-disk.bin");
    const pages = 64;
    const data = randomBytes(pages * PAGE, 77);
    writeFileSync(diskPath, data);
    for (let round = 0; round < 8; round++) {
      writeFileSync(a, new Uint8Array(pages * PAGE));
      writeFileSync(b, new Uint8Array(pages * PAGE).fill(0x5a));
      using disk = Disk.open(diskPath, { write: false, direct: true });
      using queue = new IoQueue(4);
      let released!: GuestMemory;
      const pending = (() => {
        using memory = GuestMemory.open(a); // released when this block ends, with the read still queued
        released = memory;
        const segments = [new PagedRange(0, pages * PAGE, Array.from({ length: pages }, (_, i) => i))];
        return executePlan(plan({ op: "read", mode: "auto", at: 0, segments, alignment: disk.alignment }), memory, disk, { queue });
      })();
      expect(released.released).toBe(true);
      expect(() => released.read(0, new Uint8Array(1))).toThrow(ReleasedError); // no new use
      using other = GuestMemory.open(b); // mapped meanwhile, perhaps where the first one was
      const result = await pending;
      expect(result.bytes).toBe(pages * PAGE);
      expect(fileBytes(a)).toEqual(data);
      expect(other.page(0)[0]).toBe(0x5a);
      expect(fileBytes(b)).toEqual(new Uint8Array(pages * PAGE).fill(0x5a));
    }
  });

  test("every copy is counted, and copyNs (from the timed ones) covers every byte copied", async () => {
    using memory = GuestMemory.create(join(dir, "copy-timing.img"), 4 * PAGE);
    writeFileSync(join(dir, "copy-timing.bin"), randomBytes(16 * PAGE, 5));
    using disk = Disk.open(join(dir, "copy-timing.bin"), { write: false, direct: true });
    using io = PreparedIo.prepare(plan({ op: "read", mode: "bounce", at: 0, segments: [new PagedRange(8, 4000, [1])], alignment: disk.alignment }), memory, disk);
    using executor = new Executor("null", 1, () => {});
    expect(executor.copyNs).toBe(0);
    for (let run = 0; run < 15; run++) {
      executor.start(0, io);
      await executor.run();
    }
    expect({ copies: executor.copies, bytes: executor.copiedBytes }).toEqual({ copies: 15, bytes: 15 * 4000 });
    expect(executor.copyNs).toBeGreaterThan(0);
  });

  test("a prepared IO released during its run is freed when the run settles, and does not run again", async () => {
    using memory = GuestMemory.create(join(dir, "run-release.img"), 4 * PAGE);
    writeFileSync(join(dir, "run-release.bin"), randomBytes(16 * PAGE, 3));
    using disk = Disk.open(join(dir, "run-release.bin"), { write: false, direct: true });
    const io = PreparedIo.prepare(plan({ op: "read", mode: "bounce", at: 0, segments: [new PagedRange(8, 4000, [1])], alignment: disk.alignment }), memory, disk);
    let settled: Error | null | undefined;
    using executor = new Executor("uring", 1, (_slot, error) => (settled = error));
    executor.start(0, io);
    io.release(); // the kernel holds its iovecs and bounce buffer now
    expect(io.iovecs.released).toBe(false);
    await executor.run();
    expect(settled).toBeNull();
    expect(io.iovecs.released).toBe(true);
    expect(() => executor.start(0, io)).toThrow("prepared IO: used after release");
  });
});

describe("the bounce budget", () => {
  test("a bounced IO takes its pages as it starts and gives them back as it settles; the next waits for them", async () => {
    const guestPath = join(dir, "budget.img");
    const diskPath = join(dir, "budget.bin");
    writeFileSync(guestPath, new Uint8Array(8 * PAGE));
    const data = randomBytes(16 * PAGE, 9);
    writeFileSync(diskPath, data);
    using memory = GuestMemory.open(guestPath);
    using disk = Disk.open(diskPath, { write: false, direct: true });
    // 6000 bytes, widened to 6144 for the disk: two bounce pages.
    const bounced = (at: number, gpn: number) => plan({ op: "read", mode: "bounce", at, segments: [new PagedRange(8, 6000, [gpn, gpn + 1])], alignment: disk.alignment });
    const tracker = new BounceBufferTracker(2, 1);
    using first = PreparedIo.prepare(bounced(0, 1), memory, disk, { budget: { tracker, thread: 0 } });
    using second = PreparedIo.prepare(bounced(8192, 4), memory, disk, { budget: { tracker, thread: 0 } });
    expect(first.bouncePages).toBe(2); // the whole budget
    const settled: (Error | null)[] = [];
    using executor = new Executor("uring", 2, (_slot, error) => settled.push(error));
    executor.start(0, first);
    expect(executor.engine.inFlight).toBe(1);
    expect(tracker.stats(0).inUsePages).toBe(2);
    executor.start(1, second); // no pages left: it waits, nothing submitted
    expect(executor.engine.inFlight).toBe(1);
    await executor.run();
    expect(settled).toEqual([null, null]);
    expect(tracker.stats(0)).toMatchObject({ acquired: 2, inUsePages: 0, peakPages: 2 });
    const guest = fileBytes(guestPath);
    expect(guest.subarray(PAGE + 8, PAGE + 6008)).toEqual(data.subarray(0, 6000));
    expect(guest.subarray(4 * PAGE + 8, 4 * PAGE + 6008)).toEqual(data.subarray(8192, 14192));
  });

  test("a bounced IO larger than the whole budget fails alone, with no call made and no page taken", async () => {
    writeFileSync(join(dir, "over-budget.bin"), randomBytes(16 * PAGE, 4));
    using memory = GuestMemory.create(join(dir, "over-budget.img"), 4 * PAGE);
    using disk = Disk.open(join(dir, "over-budget.bin"), { write: false, direct: true });
    const tracker = new BounceBufferTracker(1, 1);
    using io = PreparedIo.prepare(plan({ op: "read", mode: "bounce", at: 0, segments: [new PagedRange(8, 6000, [1, 2])], alignment: disk.alignment }), memory, disk, { budget: { tracker, thread: 0 } });
    expect(io.bouncePages).toBe(2);
    let settled: BounceBenchError | null | undefined;
    using executor = new Executor("uring", 1, (_slot, error) => (settled = error));
    executor.start(0, io);
    expect(executor.engine.inFlight).toBe(0);
    await executor.run();
    expect(settled?.code).toBe("BUDGET_EXCEEDED");
    expect(executor.calls[0]).toBe(0);
    expect(tracker.stats(0)).toMatchObject({ acquired: 0, inUsePages: 0 });
  });
});
