/**
 * The VMM policies as rule sets (`--rules qemu|cloud-hypervisor|openvmm`): examples that pin
 * each VMM's rule as its source states it, and a property test against a small reference model
 * written from those statements alone: a VMM hands the kernel one iovec per run of consecutive
 * pages of each descriptor, copies the whole request when any iovec misses its alignments, and
 * pads the disk range to its request alignment.
 */
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { overrideAlignment, type DiskAlignment } from "../src/base/alignment-rules";
import type { VmmPolicy } from "../src/base/vmm-policies";
import { PagedRange } from "../src";
import { plan, type IoOp } from "../src/io/planner";
import { PAGE, ROOT, runCliIn } from "./helpers";

const seg = (gpns: number[], offset = 0, len = gpns.length * PAGE - offset) => new PagedRange(offset, len, gpns);
/** A real-looking disk: `block`-byte blocks, 512-byte DMA alignment, found by statx. */
const disk = (block: number, extra: Partial<DiskAlignment> = {}): DiskAlignment => ({ directIo: true, memAlign: 512, offsetAlign: block, readOffsetAlign: block, source: "statx", ...extra });
const decide = (rules: VmmPolicy, segments: PagedRange[], alignment: DiskAlignment, op: IoOp = "write", at = 0) => plan({ op, mode: "auto", at, segments, alignment, rules });

describe("each VMM's rule, as its source states it", () => {
  const split = [seg([0], 512, 3584), seg([2], 0, 512)]; // one 4 KiB block in two 512-aligned pieces
  test("qemu: iovec bases against the memory alignment, lengths against the request alignment; the whole request copied", () => {
    expect(decide("qemu", split, disk(512)).decision).toBe("direct");
    const bounced = decide("qemu", split, disk(4096));
    expect(bounced.decision).toBe("bounce");
    expect(bounced.copiedBytes).toBe(4096);
    expect(bounced.reasons).toContain("segment 0: iovec 0: length 3584 is not a multiple of 4096");
    // A base 512 bytes into a page is taken with 512-byte DMA alignment, even on a 4 KiB disk.
    expect(decide("qemu", [seg([0, 1], 512, 4096)], disk(4096)).decision).toBe("direct");
    // Two touching descriptors stay two iovecs: QEMU copies what the kernel rule sends as one.
    const touching = [seg([5], 0, 2048), seg([5], 2048, 2048)];
    expect(plan({ op: "write", mode: "auto", at: 0, segments: touching, alignment: disk(4096) }).decision).toBe("direct");
    expect(decide("qemu", touching, disk(4096)).decision).toBe("bounce");
    // QEMU probes with reads: on a disk whose reads take 512 and writes want 4096, it pads writes to 512.
    const reflinked = disk(4096, { readOffsetAlign: 512 });
    expect(decide("qemu", [seg([0], 0, 512)], reflinked, "write", 512).decision).toBe("direct");
  });
  test("cloud-hypervisor: every iovec's base and length against max(memory, offset alignment); reads' own alignment never asked", () => {
    expect(decide("cloud-hypervisor", [seg([0, 1], 512, 4096)], disk(4096)).decision).toBe("bounce");
    expect(decide("cloud-hypervisor", [seg([0, 1], 512, 4096)], disk(512)).decision).toBe("direct");
    const reflinked = disk(4096, { readOffsetAlign: 512 });
    const read = decide("cloud-hypervisor", [seg([0], 0, 512)], reflinked, "read", 512);
    expect(read.decision).toBe("bounce"); // the kernel would take this read directly
    expect(read.diskStart % 4096).toBe(0);
    // statx said nothing (a probed disk): 512.
    expect(decide("cloud-hypervisor", [seg([0], 512, 512)], disk(4096, { source: "probe" })).decision).toBe("direct");
  });
  test("openvmm: 512 for every file whatever its filesystem, the device's logical block for a block device", () => {
    const file4k = disk(4096);
    expect(decide("openvmm", [seg([0], 512, 512)], file4k, "write", 512).decision).toBe("direct"); // the kernel refuses this
    expect(decide("openvmm", [seg([0], 512, 512)], { ...file4k, blockDevice: true }, "write", 512).decision).toBe("rmw");
    // The request's buffers as one range: offset and length against its sector (RequestBuffers.isAligned).
    expect(decide("openvmm", [seg([0], 100, 512)], disk(512)).decision).toBe("bounce");
  });
  test("a policy's reasons name the VMM and where its numbers come from", () => {
    const decided = decide("openvmm", [seg([0], 100, 512)], disk(512));
    expect(decided.reasons.at(-1)).toBe("openvmm copies the whole request when any of it misses its alignment (OpenVMM's sector size 512 (assumed for every file))");
  });
});

/** The reference model: what a VMM with memory alignment `mem`, length unit `unit` and request alignment `request` does. */
function model(segments: PagedRange[], at: number, mem: number, unit: number, request: number, perSegment: boolean): { direct: boolean; copied: number; diskStart: number; diskEnd: number } {
  const len = segments.reduce((sum, s) => sum + s.len, 0);
  let aligned = true;
  for (const s of segments) {
    if (perSegment) {
      if (s.offset % mem !== 0 || s.len % mem !== 0) aligned = false;
      continue;
    }
    // One iovec per run of consecutive GPNs of this descriptor.
    const gpns = s.gpns();
    let runStart = gpns[0]! * PAGE + (s.offset % PAGE);
    let runLen = 0;
    let remaining = s.len;
    for (let i = 0; i < gpns.length; i++) {
      const inPage = Math.min(PAGE - (i === 0 ? s.offset % PAGE : 0), remaining);
      if (i > 0 && gpns[i] !== gpns[i - 1]! + 1) {
        if (runStart % mem !== 0 || runLen % unit !== 0) aligned = false;
        runStart = gpns[i]! * PAGE;
        runLen = 0;
      }
      runLen += inPage;
      remaining -= inPage;
    }
    if (runStart % mem !== 0 || runLen % unit !== 0) aligned = false;
  }
  const diskAligned = at % request === 0 && len % request === 0;
  const diskStart = diskAligned ? at : Math.floor(at / request) * request;
  const diskEnd = diskAligned ? at + len : Math.ceil((at + len) / request) * request;
  const direct = aligned && diskAligned;
  return { direct, copied: direct ? 0 : len, diskStart, diskEnd };
}

describe("against the reference model", () => {
  const arbitrary = fc.record({
    segments: fc.array(fc.record({ pages: fc.integer({ min: 1, max: 3 }), consecutive: fc.boolean(), offset: fc.constantFrom(0, 0, 8, 100, 512, 1024, 3584), len: fc.constantFrom(512, 1024, 3584, 4096, 8192, 100) }), { minLength: 1, maxLength: 4 }),
    block: fc.constantFrom(512, 4096),
    readBlock: fc.constantFrom(512, 4096),
    at: fc.constantFrom(0, 512, 4096, 8192 + 512, 100),
    op: fc.constantFrom<IoOp>("read", "write"),
    device: fc.boolean(),
  });
  test("qemu, cloud-hypervisor and openvmm decide as the model on random requests", () => {
    fc.assert(
      fc.property(arbitrary, ({ segments: specs, block, readBlock, at, op, device }) => {
        let next = 0;
        const segments = specs.flatMap(({ pages, consecutive, offset, len }) => {
          const gpns = Array.from({ length: pages }, (_, i) => (consecutive ? next + i : next + 2 * i));
          next += 2 * pages + 1;
          const fitted = Math.min(len, pages * PAGE - offset);
          return fitted > 0 ? [seg(gpns, offset, fitted)] : [];
        });
        if (segments.length === 0) return;
        const alignment = { ...disk(Math.max(block, readBlock), { readOffsetAlign: readBlock }), ...(device ? { blockDevice: true } : {}) };
        const opBlock = op === "read" ? readBlock : Math.max(block, readBlock);
        const expected: Record<VmmPolicy, ReturnType<typeof model>> = {
          qemu: model(segments, at, 512, readBlock, readBlock, false),
          "cloud-hypervisor": model(segments, at, Math.max(512, alignment.offsetAlign), Math.max(512, alignment.offsetAlign), Math.max(512, alignment.offsetAlign), false),
          openvmm: model(segments, at, device ? opBlock : 512, device ? opBlock : 512, device ? opBlock : 512, true),
        };
        for (const rules of ["qemu", "cloud-hypervisor", "openvmm"] as VmmPolicy[]) {
          const decided = decide(rules, segments, alignment, op, at);
          const want = expected[rules];
          expect({ rules, direct: decided.decision === "direct", copied: decided.copiedBytes, diskStart: decided.diskStart, diskEnd: decided.diskEnd }).toEqual({
            rules,
            direct: want.direct,
            copied: want.copied,
            diskStart: want.diskStart,
            diskEnd: want.diskEnd,
          });
        }
      }),
      { numRuns: 400 },
    );
  });
});

describe("plan --rules all", () => {
  const json = (...args: string[]) => {
    const result = runCliIn(ROOT, "plan", ...args, "--json");
    return { code: result.code, doc: JSON.parse(result.stdout) };
  };
  test("every rule set's decision, what it copies beyond the kernel rule, and what the kernel would refuse of it", () => {
    const { code, doc } = json("--gpns", "1", "--at", "512", "--len", "4096", "--align", "4096", "--rules", "all");
    expect(code).toBe(0);
    const rows = Object.fromEntries(doc.policies.map((p: { rules: string }) => [p.rules, p]));
    expect(Object.keys(rows)).toEqual(["kernel", "seed", "qemu", "cloud-hypervisor", "openvmm"]);
    expect(rows.kernel).toMatchObject({ decision: "rmw", refused: null, needlessBytes: 0 });
    // OpenVMM assumes 512-byte sectors on a file: it sends 512+4096 to a 4 KiB disk as it stands.
    expect(rows.openvmm).toMatchObject({ decision: "direct", copiedBytes: 0, refused: "disk range 512+4096 is not whole 4096-byte blocks" });
    expect(rows.kernel.judgedBy).toContain("documented rule");
  });
  test("a copy beyond what the kernel needs is counted as needless", () => {
    const { doc } = json("--seg", "5@0+2048", "--seg", "5@2048+2048", "--align", "4096", "--rules", "all");
    const rows = Object.fromEntries(doc.policies.map((p: { rules: string }) => [p.rules, p]));
    expect(rows.kernel).toMatchObject({ decision: "direct", copiedBytes: 0 });
    expect(rows.qemu).toMatchObject({ decision: "bounce", copiedBytes: 4096, needlessBytes: 4096, refused: null });
  });
  test("--mode buffered has no direct IO to compare: exit 2", () => {
    const result = runCliIn(ROOT, "plan", "--gpns", "1", "--rules", "all", "--mode", "buffered");
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("--rules all");
  });
});
