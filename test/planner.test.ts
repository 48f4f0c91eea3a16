/**
 * The planner: decisions and reasons on examples, and properties on random scatter-gather
 * lists: every call it plans obeys the kernel's direct-IO rules, and its parts move exactly the
 * IO's bytes.
 */
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { overrideAlignment, type DiskAlignment, type RuleSet } from "../src/base/alignment-rules";
import { PagedRange } from "../src";
import { plan, type IoMode, type IoOp, type Plan } from "../src/io/planner";
import { PAGE } from "./helpers";

/** A disk with `n`-byte blocks and memory alignment `mem` (by default the smaller of `n` and 512, as real disks have). */
const align = (n: number, mem?: number) => overrideAlignment(null, n, mem);
const seg = (gpns: number[], offset = 0, len = gpns.length * PAGE - offset) => new PagedRange(offset, len, gpns);
const planOf = (segments: PagedRange[], alignment: DiskAlignment, extra: { op?: IoOp; mode?: IoMode; at?: number; iovMax?: number; rules?: RuleSet } = {}) =>
  plan({ op: extra.op ?? "write", mode: extra.mode ?? "auto", at: extra.at ?? 0, segments, alignment, iovMax: extra.iovMax, rules: extra.rules });

describe("decisions", () => {
  test("aligned buffers and disk range go direct, with no reasons", () => {
    const result = planOf([seg([3, 4, 9])], align(512));
    expect(result.decision).toBe("direct");
    expect(result.aligned).toBe(true);
    expect(result.reasons).toEqual([]);
    expect(result.iovecs).toEqual([
      { kind: "guest", gpa: 3 * PAGE, len: 2 * PAGE },
      { kind: "guest", gpa: 9 * PAGE, len: PAGE },
    ]);
    expect(result.calls).toEqual([{ diskOffset: 0, bytes: 3 * PAGE, firstIovec: 0, iovecs: 2 }]);
    expect(result.bouncePages).toBe(0);
  });

  test("a descriptor boundary inside a 4096-byte sector bounces, naming every iovec that breaks the rule", () => {
    const segments = [seg([0], 512, 3584), seg([2], 0, 512)];
    const result = planOf(segments, align(4096));
    expect(result.decision).toBe("bounce");
    expect(result.reasons).toEqual([
      "iovec 0: length 3584 is not a multiple of the 4096-byte block",
      "iovec 1: length 512 is not a multiple of the 4096-byte block",
    ]);
    expect(result.audit).toEqual({ rules: "seed", decision: "bounce", copiedBytes: PAGE });
    // The seed rule names every condition of each segment against the larger alignment.
    expect(planOf(segments, align(4096), { rules: "seed" }).reasons).toEqual([
      "segment 0: memory offset 512 is not a multiple of 4096",
      "segment 0: buffer length 3584 is not a multiple of 4096",
      "segment 1: buffer length 512 is not a multiple of 4096",
    ]);
    expect(result.bouncePages).toBe(1);
    expect(result.copiedBytes).toBe(PAGE);
    expect(result.guestIovecs).toEqual([
      { gpa: 512, len: 3584 },
      { gpa: 2 * PAGE, len: 512 },
    ]);
    // The same request on a 512-byte disk passes straight through.
    expect(planOf(segments, align(512)).decision).toBe("direct");
  });

  test("a 512-byte-aligned buffer on a 4 KiB-sector disk goes direct under the kernel's rule; the seed rule copies it all", () => {
    const segments = [seg(Array.from({ length: 17 }, (_, i) => i), 512, 16 * PAGE)];
    const kernel = planOf(segments, align(4096));
    expect([kernel.decision, kernel.copiedBytes, kernel.guestIovecs]).toEqual(["direct", 0, [{ gpa: 512, len: 16 * PAGE }]]);
    expect(kernel.audit).toEqual({ rules: "seed", decision: "bounce", copiedBytes: 16 * PAGE });
    expect(kernel.reasons).toEqual([`the seed rule (--rules seed) would have copied ${16 * PAGE} bytes here (${16 * PAGE} more, which the kernel takes directly)`]);
    const seed = planOf(segments, align(4096), { rules: "seed" });
    expect([seed.decision, seed.copiedBytes, seed.audit]).toEqual(["bounce", 16 * PAGE, null]);
    // Discontiguous pages at offset 512 give iovecs of 3584 bytes: not whole blocks, so bounced.
    expect(planOf([seg([0, 2, 4], 512, 2 * PAGE)], align(4096)).decision).toBe("bounce");
  });

  test("segments that join inside a block in guest memory make one iovec and go direct", () => {
    const segments = [seg([3], 0, 100), seg([3], 100, 412), seg([3, 4], 512, 4096)];
    const result = planOf(segments, align(512));
    expect([result.decision, result.guestIovecs]).toEqual(["direct", [{ gpa: 3 * PAGE, len: 4608 }]]);
    expect(planOf(segments, align(512), { rules: "seed" }).decision).toBe("bounce");
  });

  test("the kernel's rule bounces only the blocks it must: a run that breaks it is cut where the rest meets it", () => {
    const segments = [seg([1]), seg([2], 0, 100), seg([3], 0, 512), seg([4], 0, 412), seg([5]), seg([6], 7, 512), seg([7], 0, 512)];
    const result = planOf(segments, align(512));
    // Segments 0 and 1 touch in guest memory (one run of 4196 bytes): its first 4096 go direct.
    expect(result.parts.map((part) => [part.kind, part.stream, part.kind === "guest" ? part.len : part.copyLen])).toEqual([
      ["guest", 0, PAGE],
      ["bounce", PAGE, 1024],
      ["guest", PAGE + 1024, PAGE],
      ["bounce", 2 * PAGE + 1024, 512],
      ["guest", 2 * PAGE + 1536, 512],
    ]);
    expect(result.reasons).toEqual([
      "iovec 0: length 4196 is not a multiple of the 512-byte block",
      "iovec 2: length 412 is not a multiple of the 512-byte block",
      "iovec 4: address 0x6007 is not a multiple of the memory alignment 512",
    ]);
    expect(result.iovecs.map((iovec) => (iovec.kind === "guest" ? [iovec.gpa, iovec.len] : ["bounce", iovec.len]))).toEqual([
      [PAGE, PAGE],
      ["bounce", 1024],
      [5 * PAGE, PAGE],
      ["bounce", 512],
      [7 * PAGE, 512],
    ]);
  });

  test("seed: only what must be copied is bounced; aligned segments after a split block are taken along", () => {
    const segments = [seg([1]), seg([2], 0, 100), seg([3], 0, 512), seg([4], 0, 412), seg([5]), seg([6], 7, 512), seg([7], 0, 512)];
    const result = planOf(segments, align(512), { rules: "seed" });
    expect(result.decision).toBe("bounce");
    expect(result.parts.map((part) => [part.kind, part.first, part.last])).toEqual([
      ["guest", 0, 0],
      ["bounce", 1, 3],
      ["guest", 4, 4],
      ["bounce", 5, 5],
      ["guest", 6, 6],
    ]);
    expect(result.reasons).toContain("segment 2 is bounced too: the bounced bytes before it end inside a 512-byte block");
    expect(result.copiedBytes).toBe(100 + 512 + 412 + 512);
    // One call: guest pages and bounce slices side by side.
    expect(result.calls.length).toBe(1);
    expect(result.iovecs.map((iovec) => iovec.kind)).toEqual(["guest", "bounce", "guest", "bounce", "guest"]);
  });

  test("an unaligned disk range: reads are widened through a bounce buffer, writes are read-modify-write", () => {
    const read = planOf([seg([1], 0, 1000)], align(512), { op: "read", at: 100 });
    expect(read.decision).toBe("bounce");
    expect([read.diskStart, read.diskEnd]).toEqual([0, 1536]);
    expect(read.reasons).toContain("disk offset 100 is not a multiple of the 512-byte block");
    const write = planOf([seg([1])], align(512), { op: "write", at: 512 + 7 });
    expect(write.decision).toBe("rmw");
    expect([write.diskStart, write.diskEnd]).toEqual([512, 512 + PAGE + 512]);
    expect(write.reasons).toContain(
      `read-modify-write: head block 512..1024 and tail block ${PAGE + 512}..${PAGE + 1024} read first, then 512..${PAGE + 1024} written whole`,
    );
  });

  test("more than IOV_MAX discontiguous pages are split into calls, never EINVAL", () => {
    const gpns = Array.from({ length: 1500 }, (_, i) => 2 * i);
    const result = planOf([seg(gpns)], align(512));
    expect(result.decision).toBe("split");
    expect(result.calls.map((call) => call.iovecs)).toEqual([1024, 476]);
    expect(result.calls[1]!.diskOffset).toBe(1024 * PAGE);
    expect(result.reasons).toEqual(["1500 iovecs exceed IOV_MAX (1024): split into 2 calls"]);
    // Forced direct submits them as they are (the kernel will refuse), and says why.
    const direct = planOf([seg(gpns)], align(512), { mode: "direct" });
    expect(direct.calls.length).toBe(1);
    expect(direct.reasons).toEqual(["1500 iovecs exceed IOV_MAX (1024)"]);
  });

  test("a memory alignment above the page size is never met: everything bounces", () => {
    for (const rules of ["kernel", "seed"] as const) {
      const result = planOf([seg([0, 1])], align(8192, 8192), { rules });
      expect(result.decision).toBe("bounce");
      expect(result.reasons[0]).toContain("exceeds the page size 4096");
    }
    // 8 KiB blocks with the common memory alignment: two consecutive pages are one whole-block iovec.
    expect(planOf([seg([0, 1])], align(8192)).decision).toBe("direct");
  });

  test("forced modes", () => {
    const segments = [seg([0], 512, 3584), seg([2], 0, 512)];
    const direct = planOf(segments, align(4096), { mode: "direct" });
    expect([direct.decision, direct.bouncePages]).toEqual(["direct", 0]);
    expect(direct.reasons.length).toBe(2);
    const bounce = planOf([seg([0])], align(512), { mode: "bounce" });
    expect([bounce.decision, bounce.bouncePages, bounce.reasons[0]]).toEqual(["bounce", 1, "forced by --mode bounce"]);
    const buffered = planOf(segments, align(4096), { mode: "buffered", at: 3 });
    expect([buffered.decision, buffered.reasons, buffered.diskStart]).toEqual(["buffered", [], 3]);
  });

  test("reads relax to the read offset alignment where the filesystem reports one", () => {
    const alignment: DiskAlignment = { directIo: true, memAlign: 512, offsetAlign: 4096, readOffsetAlign: 512, source: "statx" };
    expect(planOf([seg([0], 0, 512)], alignment, { op: "read" }).decision).toBe("direct");
    expect(planOf([seg([0], 0, 512)], alignment, { op: "write" }).decision).toBe("rmw");
  });

  test("an empty IO is refused", () => {
    expect(() => planOf([seg([0], 0, 0)], align(512))).toThrow("the IO is empty");
  });
});

/** Random scatter-gather lists: 1..6 segments over distinct pages, random offsets and lengths. */
const arbitraryIo = fc
  .record({
    segments: fc.array(
      fc.record({ pages: fc.integer({ min: 1, max: 3 }), offsetChoice: fc.nat(), lenChoice: fc.nat(), aligned: fc.boolean() }),
      { minLength: 1, maxLength: 6 },
    ),
    shift: fc.integer({ min: 9, max: 13 }),
    at: fc.nat(64 * PAGE),
    atAligned: fc.boolean(),
    op: fc.constantFrom<IoOp>("read", "write"),
    mode: fc.constantFrom<IoMode>("auto", "bounce"),
  })
  .map((input) => {
    const a = 2 ** input.shift;
    let nextGpn = 0;
    const segments = input.segments.map(({ pages, offsetChoice, lenChoice, aligned }) => {
      const gpns = Array.from({ length: pages }, () => nextGpn++ * 2); // distinct, discontiguous
      const span = pages * PAGE;
      let offset = offsetChoice % span;
      let len = 1 + (lenChoice % (span - offset));
      if (aligned) {
        offset = Math.floor(offset / Math.min(a, PAGE)) * Math.min(a, PAGE);
        len = Math.max(Math.min(a, PAGE), Math.floor(len / Math.min(a, PAGE)) * Math.min(a, PAGE));
        if (offset + len > span) offset = 0;
      }
      return seg(gpns, offset, len);
    });
    const at = input.atAligned ? Math.floor(input.at / a) * a : input.at;
    return { segments, alignment: align(a), at, op: input.op, mode: input.mode };
  });

/** The kernel's direct-IO rules for one call, as the strict (pre-6.x relaxation) block layer applies them. */
function kernelAccepts(result: Plan, alignment: DiskAlignment): boolean {
  const block = alignment.offsetAlign;
  return result.calls.every((call) => {
    if (call.diskOffset % block !== 0 || call.bytes % block !== 0) return false;
    return result.iovecs.slice(call.firstIovec, call.firstIovec + call.iovecs).every((iovec) => {
      const address = iovec.kind === "guest" ? iovec.gpa : iovec.bufferOffset; // guest pages and the bounce buffer are page-aligned
      return address % Math.min(alignment.memAlign, PAGE) === 0 && iovec.len % block === 0 && (iovec.kind === "bounce" || alignment.memAlign <= PAGE);
    });
  });
}

describe("properties", () => {
  test("every call of an auto or bounce plan is one the kernel accepts, and the calls cover the disk range", () => {
    fc.assert(
      fc.property(arbitraryIo, ({ segments, alignment, at, op, mode }) => {
        const result = plan({ op, mode, at, segments, alignment });
        expect(kernelAccepts(result, alignment)).toBe(true);
        let position = result.diskStart;
        for (const call of result.calls) {
          expect(call.diskOffset).toBe(position);
          position += call.bytes;
        }
        expect(position).toBe(result.diskEnd);
        expect(result.diskStart).toBeLessThanOrEqual(at);
        expect(result.diskEnd).toBeGreaterThanOrEqual(at + result.len);
        expect(result.calls.every((call) => call.iovecs <= 1024)).toBe(true);
      }),
      { numRuns: 500 },
    );
  });

  test("the parts copy or pass every byte of the IO exactly once, in order", () => {
    fc.assert(
      fc.property(arbitraryIo, ({ segments, alignment, at, op, mode }) => {
        const result = plan({ op, mode, at, segments, alignment });
        let stream = 0;
        for (const part of result.parts) {
          const covered = part.kind === "guest" ? part.len : part.copyLen;
          expect(part.stream).toBe(stream);
          if (part.kind === "bounce") {
            expect(part.bufferOffset % PAGE).toBe(0);
            expect(part.diskStart).toBeLessThanOrEqual(at + part.stream);
            expect(part.diskStart + part.len).toBeGreaterThanOrEqual(at + part.stream + part.copyLen);
          }
          stream += covered;
        }
        expect(stream).toBe(result.len);
        const bounced = result.parts.filter((part) => part.kind === "bounce");
        expect(result.decision === "direct" || result.decision === "split").toBe(bounced.length === 0);
      }),
      { numRuns: 500 },
    );
  });

  test("every bounce part starts in the bounce buffer on a multiple of the page size and of the memory alignment", () => {
    // Memory, write and read alignments drawn apart, so that one standing in for another is seen.
    const alignments = fc.record({
      mem: fc.constantFrom(1, 8, 512, 4096, 8192, 16384),
      write: fc.constantFrom(1, 512, 4096, 8192),
      read: fc.constantFrom(1, 512, 4096),
    });
    fc.assert(
      fc.property(arbitraryIo, alignments, ({ segments, at, op, mode }, a) => {
        const alignment: DiskAlignment = { directIo: true, memAlign: a.mem, offsetAlign: a.write, readOffsetAlign: a.read, source: "override" };
        const result = plan({ op, mode, at, segments, alignment });
        for (const part of result.parts) {
          if (part.kind !== "bounce") continue;
          expect(part.bufferOffset % PAGE).toBe(0);
          expect(part.bufferOffset % a.mem).toBe(0);
        }
        expect(result.blockSize).toBe(Math.max(1, op === "read" ? a.read : a.write));
      }),
      { numRuns: 500 },
    );
  });

  test("auto bounces nothing when the buffers and the disk range are aligned", () => {
    fc.assert(
      fc.property(arbitraryIo, ({ segments, alignment, at, op }) => {
        const result = plan({ op, mode: "auto", at, segments, alignment });
        if (result.aligned) expect(result.bouncePages).toBe(0);
        else expect(result.reasons.length).toBeGreaterThan(0);
      }),
      { numRuns: 300 },
    );
  });
});

/**
 * The kernel rule's layout against a reference model: small IOs (up to 10 blocks, 1 to 4
 * segments that sometimes touch in guest memory and sometimes share pages), and every way of
 * choosing which blocks to bounce, tried exhaustively. A choice is valid when every guest
 * iovec it leaves (the runs of consecutive guest memory cut to the guest blocks) meets the
 * documented rule: address a multiple of the memory alignment, length of the block.
 */
describe("the kernel rule against an exhaustive reference model", () => {
  const smallIo = fc
    .record({
      blockShift: fc.constantFrom(9, 10, 12),
      memAlign: fc.constantFrom(1, 8, 512, 4096),
      blocks: fc.integer({ min: 1, max: 10 }),
      cuts: fc.uniqueArray(fc.nat(), { maxLength: 3 }),
      starts: fc.array(fc.record({ touch: fc.boolean(), gpn: fc.nat(6), offset: fc.constantFrom(0, 8, 100, 512, 1024, 3584, 4000), contiguous: fc.boolean() }), {
        minLength: 4,
        maxLength: 4,
      }),
      op: fc.constantFrom<IoOp>("read", "write"),
    })
    .map(({ blockShift, memAlign, blocks, cuts, starts, op }) => {
      const block = 2 ** blockShift;
      const total = blocks * block;
      const bounds = [...new Set([0, ...cuts.map((cut) => 1 + (cut % (total - 1 || 1))), total])].filter((b) => b <= total).sort((a, b) => a - b);
      let previousEnd = -1; // guest physical address just past the previous segment
      const segments: PagedRange[] = [];
      for (let i = 0; i + 1 < bounds.length; i++) {
        const len = bounds[i + 1]! - bounds[i]!;
        if (len === 0) continue;
        const start = starts[i % starts.length]!;
        const first = start.touch && previousEnd >= 0 ? previousEnd : start.gpn * PAGE + start.offset;
        const pages = Math.ceil(((first % PAGE) + len) / PAGE);
        const gpns = Array.from({ length: pages }, (_, p) => Math.floor(first / PAGE) + (start.contiguous || p === 0 ? p : 2 * p + 7));
        segments.push(new PagedRange(first % PAGE, len, gpns));
        const lastByte = gpns[pages - 1]! * PAGE + (((first % PAGE) + len - 1) % PAGE);
        previousEnd = lastByte + 1;
      }
      const alignment: DiskAlignment = { directIo: true, memAlign, offsetAlign: block, readOffsetAlign: block, source: "override" };
      return { segments, alignment, block, memAlign, blocks, op };
    });

  /** Runs of consecutive guest memory, byte by byte from the segments (independent of the planner's). */
  function referenceRuns(segments: PagedRange[]): { gpa: number; stream: number; len: number }[] {
    const runs: { gpa: number; stream: number; len: number }[] = [];
    let stream = 0;
    for (const segment of segments) {
      const gpns = segment.gpns();
      for (let i = 0; i < segment.len; ) {
        const inPage = (segment.offset + i) % PAGE;
        const piece = Math.min(PAGE - inPage, segment.len - i);
        const gpa = gpns[Math.floor((segment.offset + i) / PAGE)]! * PAGE + inPage;
        const last = runs[runs.length - 1];
        if (last !== undefined && last.gpa + last.len === gpa) last.len += piece;
        else runs.push({ gpa, stream, len: piece });
        stream += piece;
        i += piece;
      }
    }
    return runs;
  }

  function validChoice(runs: ReturnType<typeof referenceRuns>, guestBlocks: boolean[], block: number, memAlign: number): boolean {
    for (let b = 0; b < guestBlocks.length; ) {
      if (!guestBlocks[b]) {
        b++;
        continue;
      }
      let e = b;
      while (e < guestBlocks.length && guestBlocks[e]) e++;
      const [from, to] = [b * block, e * block];
      for (const run of runs) {
        const start = Math.max(from, run.stream);
        const end = Math.min(to, run.stream + run.len);
        if (start >= end) continue;
        if ((run.gpa + start - run.stream) % memAlign !== 0 || (end - start) % block !== 0) return false;
      }
      b = e;
    }
    return true;
  }

  test("it bounces exactly the fewest blocks a valid choice can, and goes direct whenever the iovecs meet the rule", () => {
    fc.assert(
      fc.property(smallIo, ({ segments, alignment, block, memAlign, blocks, op }) => {
        const runs = referenceRuns(segments);
        let fewest = blocks;
        for (let mask = 0; mask < 2 ** blocks; mask++) {
          const guestBlocks = Array.from({ length: blocks }, (_, b) => ((mask >> b) & 1) === 1);
          const bounced = guestBlocks.filter((guest) => !guest).length;
          if (bounced < fewest && validChoice(runs, guestBlocks, block, memAlign)) fewest = bounced;
        }
        const result = plan({ op, mode: "auto", at: 0, segments, alignment });
        expect(result.copiedBytes).toBe(fewest * block);
        expect(result.decision === "direct").toBe(fewest === 0);
        const allMeet = runs.every((run) => run.gpa % memAlign === 0 && run.len % block === 0);
        if (allMeet) expect(result.decision).toBe("direct");
        // And what it hands over is itself a valid choice.
        const guestBlocks = Array.from({ length: blocks }, (_, b) => !result.parts.some((part) => part.kind === "bounce" && part.stream <= b * block && b * block < part.stream + part.copyLen));
        expect(validChoice(runs, guestBlocks, block, memAlign)).toBe(true);
        for (const iovec of result.iovecs) {
          if (iovec.kind === "guest") expect([iovec.gpa % memAlign, iovec.len % block]).toEqual([0, 0]);
        }
      }),
      { numRuns: 400 },
    );
  });
});
