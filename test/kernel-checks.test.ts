/**
 * The running kernel's checks beyond the documented rule (`KernelChecks`): the model the
 * simulated disk answers with, and their measurement on the disk at hand. The measurement is
 * judged by the kernel itself: on every disk kind this machine can make, the model with the
 * measured checks must give the kernel's own verdict on the shapes that tell the checks apart
 * (the random sweep of `test/kernel-oracle.test.ts` does the same on random IOs). Measuring
 * never writes (no write call is made) and needs data: a file of holes is held to the
 * documented rule, and says so.
 */
import { describe, expect, test } from "bun:test";
import { closeSync, fsyncSync, openSync, writeFileSync, truncateSync, writeSync } from "node:fs";
import { join } from "node:path";
import { availableDisks } from "../measure/kernel-oracle";
import { DOCUMENTED_CHECKS, simulatedDiskProblem, type DiskAlignment, type KernelChecks } from "../src/base/alignment-rules";
import { Disk } from "../src/disk/disk";
import { measureKernelChecks, SUBMISSION_METHODS } from "../src/disk/direct-io-probe";
import { vectoredFixedBuffers } from "../src/io/engines";
import { ScratchDisk } from "../src/host/scratch-disks";
import { closeFd, EINVAL, IO_PWRITEV, IORING_OP_READ_FIXED, IORING_OP_READV_FIXED, IoUring, IovecArray, ioCounters, NativeRegion, O_DIRECT, O_RDONLY, openFile, preadvOnce, statx } from "../src/native";
import { PAGE, randomBytes, runCliIn, scratchDir } from "./helpers";

const disk4k: DiskAlignment = { directIo: true, memAlign: 512, offsetAlign: 4096, readOffsetAlign: 4096, source: "statx" };
const disk512: DiskAlignment = { ...disk4k, offsetAlign: 512, readOffsetAlign: 512 };

/** Iovecs as `[page, offset in page, length]`, in one region whose pages follow one another. */
type Shape = [number, number, number][];
const view = (shape: Shape, base = 0) => ({ count: shape.length, base: (i: number) => base + shape[i]![0] * PAGE + shape[i]![1], length: (i: number) => shape[i]![2] });
const takes = (shape: Shape, at: number, alignment: DiskAlignment, checks: KernelChecks) =>
  simulatedDiskProblem(at, shape.reduce((sum, [, , len]) => sum + len, 0), view(shape), 0, alignment, "read", checks) === null;

describe("the model of the kernel's checks", () => {
  const lax: KernelChecks = { lengthsByMemory: true, onePageAnyAddress: true };
  test("the disk range comes first: not whole blocks is refused under any checks", () => {
    expect(takes([[0, 0, 512]], 0, disk4k, lax)).toBe(false);
    expect(simulatedDiskProblem(512, 4096, view([[0, 0, 4096]]), 0, disk4k, "read", lax)).toBe("disk range 512+4096 is not whole 4096-byte blocks");
  });
  test("lengthsByMemory: iovec lengths of the memory alignment make a block; documented: whole blocks each", () => {
    const split: Shape = [[0, 0, 512], [2, 0, 3584]];
    expect(takes(split, 0, disk4k, { ...DOCUMENTED_CHECKS, lengthsByMemory: true })).toBe(true);
    expect(takes(split, 0, disk4k, DOCUMENTED_CHECKS)).toBe(false);
    // Lengths still multiples of the memory alignment, and addresses still checked.
    expect(takes([[0, 0, 256], [2, 0, 3840]], 0, disk4k, { ...DOCUMENTED_CHECKS, lengthsByMemory: true })).toBe(false);
    expect(takes([[0, 8, 512], [2, 0, 3584]], 0, disk4k, { ...DOCUMENTED_CHECKS, lengthsByMemory: true })).toBe(false);
  });
  test("onePageAnyAddress: one range inside one page at any address, iovecs that continue one another counting as one", () => {
    const one = { ...DOCUMENTED_CHECKS, onePageAnyAddress: true };
    expect(takes([[0, 1, 512]], 0, disk512, one)).toBe(true);
    expect(takes([[0, 1, 512]], 0, disk512, DOCUMENTED_CHECKS)).toBe(false);
    // A disk of 8-byte blocks, so that a range can end on a page's last byte from an unaligned address.
    const disk8 = { ...disk512, offsetAlign: 8, readOffsetAlign: 8 };
    expect(takes([[0, 4000, 96]], 0, disk8, one)).toBe(true);
    expect(takes([[0, 4000, 104]], 0, disk8, one)).toBe(false); // one block into the next page
    expect(takes([[0, 8, 256], [0, 264, 256]], 0, disk512, one)).toBe(true); // continues: one range
    expect(takes([[0, 8, 256], [0, 520, 256]], 0, disk512, one)).toBe(false); // a gap: two ranges
    expect(takes([[0, 8, 512], [1, 8, 512]], 0, disk512, one)).toBe(false); // two pages
  });
});

test("a file with no data is not measured: held to the documented rule, saying why", () => {
  const dir = scratchDir("kernel-checks");
  const path = join(dir, "holes.img");
  writeFileSync(path, "");
  truncateSync(path, 2 ** 20); // holes only
  using disk = Disk.open(path, { write: false, direct: true });
  expect(disk.kernelChecks).toMatchObject(DOCUMENTED_CHECKS);
  expect(disk.kernelChecks.sources.lengthsByMemory).toContain("no data to read");
});

const { disks, skipped } = availableDisks();

/** Shapes that tell the checks apart on a disk with `block`-byte blocks and 512-byte memory alignment. */
function decisiveShapes(block: number): Shape[] {
  return [
    [[0, 0, block]],
    [[0, 0, 512], [2, 0, block - 512]],
    [[0, 0, block - 512], [2, 512, 512]],
    [[0, 1, block]],
    [[0, 8, block]],
    [[0, 100, block]],
    [[0, 8, 256], [0, 264, block - 256]],
    [[0, 8, 256], [0, 1024, block - 256]],
    [[0, 8, block], [2, 8, block]],
  ];
}

describe("measured on every disk kind, for each submission method, the model gives the kernel's verdict", () => {
  for (const kind of disks) {
    const name = `${kind.kind}${kind.sector === undefined ? "" : ` (${kind.sector}-byte sectors)`}`;
    for (const method of SUBMISSION_METHODS) {
      test(`${name}, ${method}: measured without a write; the decisive shapes agree with the kernel's ${method === "fixed" ? "fixed-buffer reads" : "preadv"}`, () => {
        using scratch = ScratchDisk.make({ kind: kind.kind, sector: kind.sector, size: 2 ** 20 });
        const writer = openSync(scratch.path, "r+");
        writeSync(writer, randomBytes(2 ** 20, 3), 0, 2 ** 20, 0);
        fsyncSync(writer);
        closeSync(writer);
        const fd = openFile(scratch.path, O_RDONLY | O_DIRECT);
        using memory = NativeRegion.anonymous(8 * PAGE, "shapes");
        const base = memory.address(0) as number;
        // Fixed: the shapes' memory registered; one iovec as READ_FIXED, several as READV_FIXED.
        using ring = new IoUring(1);
        if (method === "fixed") ring.registerBuffers([{ address: base, length: 8 * PAGE }]);
        try {
          const status = statx(fd);
          using disk = Disk.open(scratch.path, { write: false, direct: true });
          const writesBefore = ioCounters[IO_PWRITEV]!;
          const checks = measureKernelChecks(fd, status, disk.discovered, method);
          expect(ioCounters[IO_PWRITEV]!).toBe(writesBefore);
          const block = Math.max(512, disk.discovered.readOffsetAlign);
          using iovecs = new IovecArray(4);
          const read = (count: number, at: number): number => {
            if (method === "vectored") return preadvOnce(fd, iovecs.address(), count, at);
            if (count === 1) ring.prepare(IORING_OP_READ_FIXED, fd, iovecs.base(0) as never, iovecs.length(0), at, 0, 0, 0, 0);
            else ring.prepare(IORING_OP_READV_FIXED, fd, iovecs.address(), count, at, 0, 0, 0, 0);
            ring.submitAndWait(1);
            const results = new Int32Array(1);
            while (ring.takeCompletions(new Int32Array(1), results, 1) === 0) ring.submitAndWait(1);
            return results[0]!;
          };
          // A zero-length iovec (a shape of a 512-byte block) is EFAULT as a fixed buffer: no planned IO has one.
          const shapes = decisiveShapes(block).filter((shape) => method === "vectored" || ((shape.length === 1 || vectoredFixedBuffers()) && shape.every(([, , len]) => len > 0)));
          const verdicts = shapes.map((shape) => {
            iovecs.clear();
            for (const [page, offset, len] of shape) iovecs.push(base + page * PAGE + offset, len);
            const result = read(shape.length, 2 * block);
            if (result < 0 && result !== -EINVAL) throw new Error(`${method} read: errno ${-result}`);
            const model = simulatedDiskProblem(2 * block, shape.reduce((sum, [, , len]) => sum + len, 0), view(shape, base), 0, disk.discovered, "read", checks) === null;
            return { shape: JSON.stringify(shape), kernel: result >= 0, model };
          });
          expect(verdicts.length).toBeGreaterThan(0);
          expect({ checks, verdicts }).toEqual({ checks, verdicts: verdicts.map((v) => ({ ...v, model: v.kernel })) });
        } finally {
          closeFd(fd);
        }
      });
    }
  }
  for (const line of skipped) test.skip(`${line} (skipped)`, () => {});
});

describe("plan --kernel", () => {
  const dir = scratchDir("plan-kernel");
  const guest = join(dir, "guest.img");
  const diskPath = join(dir, "disk.img");
  writeFileSync(guest, randomBytes(16 * PAGE, 1));
  writeFileSync(diskPath, randomBytes(64 * PAGE, 2));
  const json = (...args: string[]) => {
    const result = runCliIn(dir, ...args, "--json");
    return { code: result.code, doc: JSON.parse(result.stdout) };
  };
  const shapes = [
    ["--gpns", "3", "--mem-offset", "100", "--len", "512"],
    ["--gpns", "3", "--mem-offset", "1", "--len", "512"],
    ["--seg", "0@512+3584", "--seg", "2@0+512"],
    ["--seg", "0@8+512", "--seg", "2@8+512"],
    ["--gpns", "4-5"],
  ];
  for (const shape of shapes) {
    test(`current says what the kernel does with the IO in direct mode here: ${shape.join(" ")}`, () => {
      for (const op of ["read", "write"]) {
        const planned = json("plan", "--disk", diskPath, "--op", op, "--at", "4096", ...shape, "--kernel", "current");
        expect(planned.code).toBe(0);
        const [current] = planned.doc.kernels;
        const done = json("io", "--guest", guest, "--disk", diskPath, "--op", op, "--at", "4096", ...shape, "--mode", "direct");
        expect({ op, takes: current.takes }).toEqual({ op, takes: done.code === 0 });
        if (done.code !== 0) expect(done.doc.error.code).toBe("EINVAL");
      }
    });
  }
  test("all: every named rule set, then current; without --disk, current is not judged and says why", () => {
    const { code, doc } = json("plan", "--gpns", "3", "--mem-offset", "100", "--len", "512", "--align", "512", "--kernel", "all");
    expect(code).toBe(0);
    expect(doc.kernels.map((k: { kernel: string; takes: boolean | null }) => [k.kernel, k.takes])).toEqual([
      ["5.19", false],
      ["6.0", false],
      ["6.18.0", true],
      ["6.18-stable", false],
      ["current", null],
    ]);
    expect(doc.kernels[4].problem).toContain("--disk");
    expect(doc.kernels[1].problem).toContain("not a multiple of the memory alignment 512");
  });
  test("a 4 KiB block as iovecs of 3584 and 512 bytes: only 6.18's rules take it; 5.19 wants block-aligned memory", () => {
    const seg = ["--seg", "0@512+3584", "--seg", "2@0+512", "--align", "4096"];
    const verdicts = json("plan", ...seg, "--kernel", "all").doc.kernels.map((k: { takes: boolean | null }) => k.takes);
    expect(verdicts).toEqual([false, false, true, true, null]);
    const memory = json("plan", "--gpns", "0-1", "--mem-offset", "512", "--len", "4096", "--align", "4096", "--kernel", "all").doc.kernels;
    expect(memory.map((k: { takes: boolean | null }) => k.takes)).toEqual([false, true, true, true, null]);
    expect(memory[0].problem).toContain("not a multiple of the memory alignment 4096");
  });
});
