/**
 * The planner: decisions and reasons on examples, and properties on random scatter-gather
 * lists: every call it plans obeys the kernel's direct-IO rules, and its parts move exactly the
 * IO's bytes.
 */
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { overrideAlignment, type DiskAlignment } from "../src/base/alignment-rules";
import { PagedRange } from "../src";
import { plan, type IoMode, type IoOp, type Plan } from "../src/io/planner";
import { PAGE } from "./helpers";

const align = (n: number) => overrideAlignment(null, n);
const seg = (gpns: number[], offset = 0, len = gpns.length * PAGE - offset) => new PagedRange(offset, len, gpns);
const planOf = (segments: PagedRange[], alignment: DiskAlignment, extra: { op?: IoOp; mode?: IoMode; at?: number; iovMax?: number } = {}) =>
  plan({ op: extra.op ?? "write", mode: extra.mode ?? "auto", at: extra.at ?? 0, segments, alignment, iovMax: extra.iovMax });

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

  test("a descriptor boundary inside a 4096-byte sector bounces, naming every condition", () => {
    const segments = [seg([0], 512, 3584), seg([2], 0, 512)];
    const result = planOf(segments, align(4096));
    expect(result.decision).toBe("bounce");
    expect(result.reasons).toEqual([
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

  test("only what must be copied is bounced; aligned segments after a split block are taken along", () => {
    const segments = [seg([1]), seg([2], 0, 100), seg([3], 0, 512), seg([4], 0, 412), seg([5]), seg([6], 7, 512), seg([7], 0, 512)];
    const result = planOf(segments, align(512));
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

  test("an alignment above the page size is never met: everything bounces", () => {
    const result = planOf([seg([0, 1])], align(8192));
    expect(result.decision).toBe("bounce");
    expect(result.reasons[0]).toContain("exceeds the page size 4096");
  });

  test("forced modes", () => {
    const segments = [seg([0], 512, 3584), seg([2], 0, 512)];
    const direct = planOf(segments, align(4096), { mode: "direct" });
    expect([direct.decision, direct.bouncePages]).toEqual(["direct", 0]);
    expect(direct.reasons.length).toBe(3);
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
