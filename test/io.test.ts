/**
 * Real IO between guest memory and a disk file on the system temporary directory (ext4 with
 * O_DIRECT on the machines this runs on): every mode, aligned and unaligned memory, lengths and
 * disk offsets, scatter-gather lists, and random round trips checked byte for byte against the
 * files themselves.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { statSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { Disk } from "../src/disk/disk";
import { mountTable } from "../src/host/block-devices";
import { advance, executePlan } from "../src/io/executor";
import { GuestMemory, IovecArray, PagedRange } from "../src";
import { plan, type IoMode, type IoOp } from "../src/io/planner";
import { fileBytes, PAGE, randomBytes, rejection, scratchDir, thrown } from "./helpers";

const dir = scratchDir("io");
const guestPath = join(dir, "guest.img");
const diskPath = join(dir, "disk.bin");
const GUEST_PAGES = 64;
const DISK_BYTES = 64 * PAGE;
let memory: GuestMemory;
let guest: Uint8Array<ArrayBuffer>;
let disk: Uint8Array<ArrayBuffer>;

/** Fresh random contents in both files, mirrored in `guest` and `disk`. */
function reset(seed: number): void {
  guest = randomBytes(GUEST_PAGES * PAGE, seed);
  memory.write(0, guest);
  disk = randomBytes(DISK_BYTES, seed + 1);
  writeFileSync(diskPath, disk);
}

beforeAll(() => {
  memory = GuestMemory.create(guestPath, GUEST_PAGES * PAGE);
});
afterAll(() => memory.release());

async function doIo(op: IoOp, mode: IoMode, at: number, segments: PagedRange[], alignOverride?: number, fua = false) {
  using target = Disk.open(diskPath, { write: op === "write", direct: mode !== "buffered", alignOverride });
  const decided = plan({ op, mode, at, segments, alignment: target.alignment });
  const result = await executePlan(decided, memory, target, { fua });
  memory.sync();
  return { plan: decided, result };
}

/** The segments' bytes in the guest mirror, concatenated. */
function streamOf(segments: PagedRange[]): number[] {
  return segments.flatMap((segment) =>
    segment.runs().flatMap((run) => Array.from({ length: run.len }, (_, i) => run.gpn * PAGE + run.offset + i)),
  );
}

function expectFiles(): void {
  expect(fileBytes(diskPath)).toEqual(disk);
  expect(fileBytes(guestPath)).toEqual(guest);
}

const seg = (gpns: number[], offset = 0, len = gpns.length * PAGE - offset) => new PagedRange(offset, len, gpns);

describe("writes land on the disk, reads land in the guest", () => {
  const cases: [string, PagedRange[], number, IoMode, number | undefined][] = [
    ["aligned, direct", [seg([1, 2])], 4 * PAGE, "auto", undefined],
    ["unaligned memory offset", [seg([3], 100, 1024)], 2 * PAGE, "auto", undefined],
    ["unaligned length", [seg([4, 5], 0, 5000)], 0, "auto", undefined],
    ["unaligned disk offset (rmw on write)", [seg([6])], 3 * PAGE + 77, "auto", undefined],
    ["scatter-gather, boundary inside a 4096 sector", [seg([7], 512, 3584), seg([9], 0, 512)], PAGE, "auto", 4096],
    ["scatter-gather, partly bounced", [seg([10]), seg([11], 0, 100), seg([12], 0, 412), seg([13])], 8 * PAGE, "auto", undefined],
    ["forced bounce", [seg([14, 15])], 0, "bounce", undefined],
    ["buffered, byte offsets", [seg([16], 1, 4000)], 12345, "buffered", undefined],
  ];
  for (const [name, segments, at, mode, alignOverride] of cases) {
    test(`${name}: write`, async () => {
      reset(name.length);
      const { result } = await doIo("write", mode, at, segments, alignOverride);
      const stream = streamOf(segments);
      expect(result.bytes).toBe(stream.length);
      stream.forEach((gpa, i) => (disk[at + i] = guest[gpa]!));
      expectFiles();
    });
    test(`${name}: read`, async () => {
      reset(name.length + 100);
      const { result } = await doIo("read", mode, at, segments, alignOverride);
      const stream = streamOf(segments);
      expect(result.bytes).toBe(stream.length);
      stream.forEach((gpa, i) => (guest[gpa] = disk[at + i]!));
      expectFiles();
    });
  }

  test("a write with FUA (RWF_DSYNC) lands", async () => {
    reset(7);
    await doIo("write", "auto", 0, [seg([1])], undefined, true);
    streamOf([seg([1])]).forEach((gpa, i) => (disk[i] = guest[gpa]!));
    expectFiles();
  });

  test("more than 1024 discontiguous pages are split into several calls and land intact", async () => {
    const bigPath = join(dir, "big-guest.img");
    using big = GuestMemory.create(bigPath, 2400 * PAGE);
    const pattern = randomBytes(2400 * PAGE, 99);
    big.write(0, pattern);
    const gpns = Array.from({ length: 1100 }, (_, i) => 2 * i + 1);
    const segments = [seg(gpns)];
    const bigDisk = join(dir, "big-disk.bin");
    writeFileSync(bigDisk, new Uint8Array(1100 * PAGE));
    using target = Disk.open(bigDisk, { write: true, direct: true });
    const decided = plan({ op: "write", mode: "auto", at: 0, segments, alignment: target.alignment });
    expect(decided.decision).toBe("split");
    expect((await executePlan(decided, big, target)).calls).toBe(2);
    const written = fileBytes(bigDisk);
    gpns.forEach((gpn, i) => expect(written.subarray(i * PAGE, (i + 1) * PAGE)).toEqual(pattern.subarray(gpn * PAGE, (gpn + 1) * PAGE)));
  });
});

describe("refusals change nothing", () => {
  test("a forced direct IO the kernel refuses fails with EINVAL and no byte changes anywhere", async () => {
    reset(21);
    for (const op of ["read", "write"] as IoOp[]) {
      const error = await rejection(doIo(op, "direct", 100, [seg([2], 0, 1000)]));
      expect(error.code).toBe("EINVAL");
      expect(error.kind).toBe("io");
      expect(error.message).toContain(op === "read" ? "preadv" : "pwritev");
      expectFiles();
    }
  });

  test("a forced direct IO on a simulated 4096-byte disk is refused as that disk would, before any IO", async () => {
    reset(22);
    const error = await rejection(doIo("write", "direct", 512, [seg([0])], 4096));
    expect(error.code).toBe("EINVAL");
    expect(error.message).toContain("simulated disk (--align): 4096-byte blocks, memory alignment 512");
    const misaligned = await rejection(doIo("read", "direct", 0, [seg([0], 8, 4096 - 8), seg([2], 0, 8)], 4096));
    expect(misaligned.message).toContain("iovec 0 (4088 bytes at memory offset 8 in its page): the address is not a multiple of the memory alignment 512");
    expectFiles();
  });

  test("IO past the end of the disk is refused before any IO", async () => {
    reset(23);
    for (const op of ["read", "write"] as IoOp[]) {
      const error = await rejection(doIo(op, "auto", DISK_BYTES - PAGE, [seg([1, 2])]));
      expect(error.kind).toBe("input");
      expect(error.message).toContain("past the end of disk");
    }
    expectFiles();
  });

  test("a GPN past the end of guest memory is refused before any IO", async () => {
    reset(24);
    const error = await rejection(doIo("read", "auto", 0, [seg([1]), seg([GUEST_PAGES + 3])]));
    expect(error.code).toBe("GUEST_ACCESS");
    expect(error.message).toContain(`GPN ${GUEST_PAGES + 3} is past the end`);
    expectFiles();
  });

  test("a disk that is missing or a directory is bad input", () => {
    expect(thrown(() => Disk.open(join(dir, "nope.bin"), { write: false, direct: true })).kind).toBe("input");
    expect(thrown(() => Disk.open(dir, { write: false, direct: true })).message).toContain("not a regular file or block device");
  });
});

describe("a disk only read keeps its access time", () => {
  // Under relatime the kernel updates an access time older than the modification time: a read
  // that touched atime would move it. Nothing to see where the filesystem keeps no atime.
  const noatime = /(^|,)noatime(,|$)/.test(mountOptions(dir));
  test.skipIf(noatime)(`direct and buffered reads leave the file's atime as it was${noatime ? " (skipped: the scratch filesystem is mounted noatime)" : ""}`, async () => {
    for (const mode of ["direct", "buffered"] as IoMode[]) {
      reset(31);
      const old = new Date("2001-02-03T04:05:06Z");
      utimesSync(diskPath, old, new Date());
      await doIo("read", mode, PAGE, [seg([3])]);
      expect({ mode, atime: statSync(diskPath).atime.toISOString() }).toEqual({ mode, atime: old.toISOString() });
    }
  });
});

describe("random round trips", () => {
  const arbitrarySegments = (firstGpn: number) =>
    fc
      .array(fc.record({ pages: fc.integer({ min: 1, max: 3 }), a: fc.nat(), b: fc.nat() }), { minLength: 1, maxLength: 4 })
      .map((specs) => {
        let gpn = firstGpn;
        return specs.map(({ pages, a, b }) => {
          const gpns = Array.from({ length: pages }, () => gpn++);
          gpn++; // keep segments apart
          const span = pages * PAGE;
          const offset = a % 2 === 0 ? (a % (span / 512)) * 512 : a % span;
          const len = 1 + (b % (span - offset));
          return seg(gpns, offset, len);
        });
      });

  test("write random segments, read them back into other pages: the bytes survive, nothing else changes", async () => {
    await fc.assert(
      fc.asyncProperty(
        arbitrarySegments(0),
        fc.nat(16 * PAGE),
        fc.boolean(),
        fc.constantFrom<IoMode>("auto", "bounce", "buffered"),
        fc.constantFrom<number | undefined>(undefined, 4096),
        fc.nat(),
        fc.integer(),
        async (segments, atChoice, atAligned, mode, alignOverride, cutChoice, seed) => {
          reset(seed);
          const at = atAligned ? Math.floor(atChoice / 512) * 512 : atChoice;
          await doIo("write", mode, at, segments, alignOverride);
          const stream = streamOf(segments);
          stream.forEach((gpa, i) => (disk[at + i] = guest[gpa]!));
          expectFiles();
          // Read the same disk bytes into two other runs of pages, cut at a random point. The
          // writes use at most pages 0..15 and 48 KiB; each read-back run has 14 pages.
          const len = stream.length;
          const cut = cutChoice % (len + 1);
          const pages = (first: number) => Array.from({ length: 14 }, (_, i) => first + i);
          const back = [
            new PagedRange(cutChoice % PAGE, cut, pages(16)),
            new PagedRange((cutChoice + 5) % PAGE, len - cut, pages(32)),
          ].filter((range) => range.len > 0);
          await doIo("read", mode, at, back, alignOverride);
          streamOf(back).forEach((gpa, i) => (guest[gpa] = disk[at + i]!));
          expectFiles();
        },
      ),
      { numRuns: 60 },
    );
  });
});

describe("short transfers continue where they stopped", () => {
  test("advance skips the iovecs already transferred and trims the one cut in the middle", () => {
    using iovecs = new IovecArray(4);
    iovecs.push(0x10000, 100);
    iovecs.push(0x20000, 200);
    iovecs.push(0x30000, 300);
    expect(advance(iovecs, 0, 3, 0)).toBe(0);
    expect(advance(iovecs, 0, 3, 150)).toBe(1); // the first iovec done, 50 bytes into the second
    expect([iovecs.base(1), iovecs.length(1)]).toEqual([0x20000 + 50, 150]);
    expect(advance(iovecs, 1, 3, 150)).toBe(2); // exactly the rest of the second
    expect([iovecs.base(2), iovecs.length(2)]).toEqual([0x30000, 300]);
    expect(advance(iovecs, 2, 3, 300)).toBe(3);
  });
});

/** The mount options of the filesystem `path` is on (the longest mount point that holds it). */
function mountOptions(path: string): string {
  const holding = mountTable().filter(({ point }) => path === point || path.startsWith(point.endsWith("/") ? point : `${point}/`));
  return holding.reduce((best, mount) => (mount.point.length >= best.point.length ? mount : best), { point: "", options: "" }).options;
}
