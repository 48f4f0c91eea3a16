/**
 * Traces without the kernel's tracing: the format read back and refused when malformed, the
 * converters from fio's iolog and blkparse, replay's counts against a hand calculation and,
 * on random traces, against each IO planned on its own (no cache, no shapes), and --execute
 * doing the IOs for real on a disk file, bytes checked, nothing written outside the trace's
 * ranges.
 */
import { describe, expect, test } from "bun:test";
import { readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { DEFAULT_ALIGNMENT, RULE_SETS, type DiskAlignment } from "../src/base/alignment-rules";
import { kernelProblem } from "../src/base/kernel-rules";
import { kernelCalls } from "../src/io/kernel-verdicts";
import { plan } from "../src/io/planner";
import { NAMED_KERNELS, namedKernel, ReplayAnalysis, segmentsOf } from "../src/trace/replay";
import type { TraceIo } from "../src/trace/trace-format";
import { CaptureAssembler } from "../src/trace/capture-lines";
import { errnoName } from "../src/native";
import { fileBytes, randomBytes, rejection, runCliIn, scratchDir } from "./helpers";
import { Disk } from "../src/disk/disk";
import { GuestMemory } from "../src/memory/guest-memory";
import { executeReplay, slotPagesFor } from "../src/trace/replay-execute";

const dir = scratchDir("trace");
const PAGE = 4096;
const BASE = 0x7f12_3400_0000;

function header(extra: Record<string, unknown> = {}): string {
  return JSON.stringify({
    type: "header",
    format: "bounce-bench-trace",
    version: 1,
    tool: "test",
    started: "2026-12-06T00:00:00Z",
    kernel: null,
    host: null,
    disk: null,
    captured: { by: "hand", calls: [], notCaptured: [], pids: [], command: null },
    synthetic: null,
    ...extra,
  });
}

function io(op: "read" | "write", offset: number, iovecs: [number, number][], t = 0): TraceIo {
  return { type: "io", t, end: t + 1000, op, offset, iovecs, result: iovecs.reduce((s, [, l]) => s + l, 0) };
}

function writeTrace(name: string, ios: TraceIo[], maxInFlight = 1): string {
  const path = join(dir, name);
  writeFileSync(path, [header(), ...ios.map((i) => JSON.stringify(i)), JSON.stringify({ type: "end", ios: ios.length, missed: {}, maxInFlight })].join("\n") + "\n");
  return path;
}

function replayJson(...args: string[]) {
  const result = runCliIn(dir, "replay", ...args, "--json");
  expect({ code: result.code, stderr: result.stderr.split("\n").filter((l) => !l.includes("replay:")).join("") }).toEqual({ code: 0, stderr: "" });
  return JSON.parse(result.stdout);
}

describe("the trace format", () => {
  const cases: [string, string, RegExp][] = [
    ["empty", "", /is empty, not a trace/],
    ["not json", "{nope\n", /line 1 is not JSON/],
    ["no header", `${JSON.stringify(io("read", 0, [[BASE, PAGE]]))}\n`, /line 1 is not a bounce-bench-trace header/],
    ["a newer version", `${header({ version: 2 })}\n`, /trace version 2; this bounce-bench reads version 1/],
    ["a bad op", `${header()}\n${JSON.stringify({ ...io("read", 0, [[BASE, PAGE]]), op: "trim" })}\n`, /line 2: op "trim" is not "read" or "write"/],
    ["a negative offset", `${header()}\n${JSON.stringify(io("read", -512, [[BASE, PAGE]]))}\n`, /line 2: offset is not a whole number of bytes/],
    ["iovecs not pairs", `${header()}\n${JSON.stringify({ ...io("read", 0, [[BASE, PAGE]]), iovecs: [[1, 2, 3]] })}\n`, /line 2: an iovec is not \[address, length\]/],
    ["no iovecs", `${header()}\n${JSON.stringify({ ...io("read", 0, [[BASE, PAGE]]), iovecs: [] })}\n`, /line 2: iovecs is not a non-empty list/],
    ["too many iovecs", `${header()}\n${JSON.stringify(io("read", 0, Array.from({ length: 1025 }, (_, i) => [BASE + i * PAGE, PAGE] as [number, number])))}\n`, /1025 iovecs, more than IOV_MAX/],
    ["a bad errno", `${header()}\n${JSON.stringify({ ...io("read", 0, [[BASE, PAGE]]), result: null, error: "rm -rf" })}\n`, /line 2: error is not an errno name/],
    ["a line after the end", `${header()}\n${JSON.stringify({ type: "end", ios: 0, missed: {}, maxInFlight: 1 })}\n${JSON.stringify(io("read", 0, [[BASE, PAGE]]))}\n`, /line 3 follows the end line/],
    ["an unknown line", `${header()}\n{"type":"comment"}\n`, /line 2: type "comment" is not "io" or "end"/],
  ];
  for (const [name, text, message] of cases) {
    test(`${name}: one line, exit 2`, () => {
      const path = join(dir, `bad-${name.replace(/ /g, "-")}.trace`);
      writeFileSync(path, text);
      const result = runCliIn(dir, "replay", path);
      expect(result.code).toBe(2);
      expect(result.stdout).toBe("");
      expect(result.stderr).toMatch(message);
      expect(result.stderr.trim().split("\n")).toHaveLength(1);
    });
  }

  test("a trace that is not a file, or missing, is bad input", () => {
    expect(runCliIn(dir, "replay", dir).stderr).toMatch(/is a directory, not a regular file/);
    expect(runCliIn(dir, "replay", join(dir, "missing.trace")).code).toBe(2);
  });
});

describe("the capture's lines, assembled", () => {
  // Lines as the capture program prints them: a call's E (or U) line and its V lines come
  // together, from one CPU; its X (or C) line may come from another CPU, in any order, even
  // before them. Every IO comes out once, whole, with its result.
  test("property: whatever order the CPUs' lines arrive in, every IO comes out once, with its iovecs and result", () => {
    const call = fc.record({
      tid: fc.integer({ min: 100, max: 103 }),
      ring: fc.boolean(),
      op: fc.constantFrom("r", "w"),
      offset: fc.integer({ min: 0, max: 1 << 30 }),
      iovecs: fc.array(fc.tuple(fc.integer({ min: 0, max: 2 ** 47 }), fc.integer({ min: 0, max: 1 << 20 })), { minLength: 1, maxLength: 4 }),
      result: fc.integer({ min: -22, max: 1 << 20 }),
    });
    fc.assert(
      fc.property(fc.array(call, { minLength: 1, maxLength: 12 }), fc.array(fc.nat(), { minLength: 30, maxLength: 30 }), (calls, order) => {
        const zero = 5_000_000;
        const units: string[][] = [];
        calls.forEach((c, i) => {
          const t = zero + 1000 * (i + 1);
          const vs = c.iovecs.map(([address, len], k) => `V ${c.tid} ${k} ${address} ${len}`);
          if (c.ring) {
            units.push([`U 7 ${c.tid} ${t} ${c.op} ${c.offset} ${c.iovecs.length} ${c.iovecs.length > 1 ? 1 : 22} 4242 ${i} `.trim(), ...vs]);
            units.push([`C 4242 ${i} ${t} ${c.result} ${t + 500}`]);
          } else {
            units.push([`E 7 ${c.tid} ${t} ${c.op} ${c.offset} ${c.iovecs.length} preadv`, ...vs]);
            units.push([`X ${c.tid} ${t} ${c.result} ${t + 500}`]);
          }
        });
        // Shuffle the units (each E or U with its V lines stays whole).
        const shuffled = units.map((unit, i) => ({ unit, key: order[i % order.length]! * 64 + i })).sort((a, b) => a.key - b.key).map((u) => u.unit);
        const out: TraceIo[] = [];
        const assembler = new CaptureAssembler((io) => out.push(io));
        assembler.feed(`B ${zero}`);
        for (const unit of shuffled) for (const line of unit) assembler.feed(line);
        assembler.finish();
        const got = out.map((io) => [io.t, io.op, io.offset, io.iovecs, io.result, io.error ?? null, io.end]).sort((a, b) => (a[0] as number) - (b[0] as number));
        const expected = calls.map((c, i) => [1000 * (i + 1), c.op === "w" ? "write" : "read", c.offset, c.iovecs, c.result >= 0 ? c.result : null, c.result >= 0 ? null : errnoName(-c.result), 1000 * (i + 1) + 500]);
        expect(got).toEqual(expected);
      }),
      { numRuns: 300, seed: 26 },
    );
  });

  test("what was seen and not recorded is counted: M lines, lost events, io_uring submissions never read", () => {
    const assembler = new CaptureAssembler(() => {});
    for (const line of ["B 1", "M linux-aio-io_submit 7 1", "M linux-aio-io_submit 7 1", "Lost 12 events", "@decoded: 3", "@submitted: 5", "M iovecs-beyond-1024 7 1"]) assembler.feed(line);
    assembler.finish();
    expect(assembler.counts.missed).toEqual({ "linux-aio-io_submit": 2, "lost-events": 12, "io_uring-submissions-not-read": 2, "iovecs-beyond-1024": 1 });
  });
});

describe("trace convert", () => {
  test("fio iolog v2: reads and writes kept in order, the rest skipped, one iovec at --mem-offset", () => {
    const log = join(dir, "v2.iolog");
    writeFileSync(log, "fio version 2 iolog\n/dev/x add\n/dev/x open\n/dev/x read 0 4096\n/dev/x write 8192 512\n/dev/x sync 0 0\n/dev/x read 1048576 65536\n/dev/x close\n");
    const out = join(dir, "v2.trace");
    const result = runCliIn(dir, "trace", "convert", log, "--from", "fio-iolog", "--mem-offset", "512", "--output", out, "--json");
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ command: "trace convert", ios: 3, skipped: 4 });
    const lines = readFileSync(out, "utf8").trim().split("\n").map((l) => JSON.parse(l));
    expect(lines[0]).toMatchObject({ type: "header", synthetic: { from: "fio-iolog" } });
    expect(lines[0].synthetic.memory).toContain("512 bytes into a page");
    expect(lines.slice(1, -1).map((l) => [l.op, l.offset, l.iovecs.map(([a, n]: number[]) => [a! % PAGE, n])])).toEqual([
      ["read", 0, [[512, 4096]]],
      ["write", 8192, [[512, 512]]],
      ["read", 1048576, [[512, 65536]]],
    ]);
    expect(lines.at(-1)).toEqual({ type: "end", ios: 3, missed: {}, maxInFlight: 1 });
    // Never replaced without --force.
    expect(runCliIn(dir, "trace", "convert", log, "--from", "fio-iolog", "--output", out).stderr).toMatch(/already exists \(use --force/);
  });

  test("fio iolog v3: times in ms become ns", () => {
    const log = join(dir, "v3.iolog");
    writeFileSync(log, "fio version 3 iolog\n0 /dev/x add\n0 /dev/x open\n5 /dev/x read 4096 4096\n12 /dev/x write 0 4096\n13 /dev/x close\n");
    const out = join(dir, "v3.trace");
    expect(runCliIn(dir, "trace", "convert", log, "--from", "fio-iolog", "--output", out).code).toBe(0);
    const ios = readFileSync(out, "utf8").trim().split("\n").map((l) => JSON.parse(l)).filter((l) => l.type === "io");
    expect(ios.map((l) => [l.t, l.op, l.offset])).toEqual([
      [5_000_000, "read", 4096],
      [12_000_000, "write", 0],
    ]);
  });

  test("blkparse: queued reads and writes, in 512-byte sectors; other events and the summary skipped", () => {
    const text = join(dir, "blk.txt");
    writeFileSync(
      text,
      [
        "  8,0    3        1     0.000000000   697  Q   R 223490 + 8 [kjournald]",
        "  8,0    3        2     0.000001000   697  G   R 223490 + 8 [kjournald]",
        "  8,0    3        3     0.000500000   697  Q  WS 16 + 1 [fio]",
        "  8,0    3        4     0.000900000   697  C  WS 16 + 1 [0]",
        "CPU3 (8,0):",
        " Reads Queued:           1,        4KiB",
      ].join("\n") + "\n",
    );
    const out = join(dir, "blk.trace");
    expect(runCliIn(dir, "trace", "convert", text, "--from", "blkparse", "--output", out).code).toBe(0);
    const ios = readFileSync(out, "utf8").trim().split("\n").map((l) => JSON.parse(l)).filter((l) => l.type === "io");
    expect(ios.map((l) => [l.t, l.op, l.offset, l.iovecs[0][1]])).toEqual([
      [0, "read", 223490 * 512, 4096],
      [500_000, "write", 8192, 512],
    ]);
  });

  test("a log that is neither is one line, exit 2, and no trace is left", () => {
    const log = join(dir, "junk.iolog");
    writeFileSync(log, "fio version 2 iolog\n/dev/x read zero 4096\n");
    const out = join(dir, "junk.trace");
    const result = runCliIn(dir, "trace", "convert", log, "--from", "fio-iolog", "--output", out);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/line 2: read needs a whole offset and a positive length/);
    expect(() => readFileSync(out)).toThrow();
    writeFileSync(log, "not a log\n");
    expect(runCliIn(dir, "trace", "convert", log, "--from", "fio-iolog", "--output", out).stderr).toMatch(/line 1 is not "fio version 2 iolog"/);
  });
});

describe("replay counts", () => {
  // A 4 KiB-sector disk with 512-byte memory alignment (no disk named, none in the trace).
  const page = (n: number) => BASE + n * PAGE;
  const hand = writeTrace("hand.trace", [
    io("read", 0, [[page(0), 4096]]), // aligned: direct everywhere
    io("read", 4096, [[page(2) + 512, 4096]]), // memory 512 into a page
    io("write", 4096, [[page(4), 512]]), // 512 bytes: a read-modify-write of one block
    io("read", 8192, [
      [page(6), 2048],
      [page(6) + 2048, 2048],
    ]), // two iovecs that touch: one run
    io("read", 4096, [[page(2) + 512, 4096]]), // the second shape again
  ]);

  test("by hand: decisions, bytes copied, needless copies and refusals per rule set and kernel", () => {
    const doc = replayJson(hand, "--rules", "all", "--kernel", "all");
    expect(doc.command).toBe("replay");
    expect(doc.summary).toMatchObject({ ios: 5, reads: 4, writes: 1, bytes: 4096 + 4096 + 512 + 4096 + 4096, shapes: 4 });
    const by = Object.fromEntries(doc.summary.rules.map((r: { rules: string }) => [r.rules, r]));
    // kernel: memory at 512 is a multiple of the memory alignment (512): direct; the 512-byte write is widened.
    expect(by.kernel.decisions).toEqual({ direct: 4, bounce: 0, rmw: 1, split: 0, buffered: 0 });
    expect(by.kernel.copiedBytes).toBe(512);
    // seed: a segment is held to the larger of memory and block alignment (4096): the two at 512
    // bounce, and so does the pair that touch (its second segment starts 2048 into the page).
    expect(by.seed.decisions).toEqual({ direct: 1, bounce: 3, rmw: 1, split: 0, buffered: 0 });
    expect(by.seed.copiedBytes).toBe(512 + 3 * 4096);
    expect(by.seed.topShapes[0]).toEqual({ shape: "read 4096 B, 1 iovec [512+4096], disk offset on a block", ios: 2, copiedBytes: 8192 });
    const kernelOf = (rules: string, kernel: string) => by[rules].kernels.find((k: { kernel: string }) => k.kernel === kernel);
    // 6.0 and later take memory at 512 directly, and the touching pair as one iovec: seed's three
    // copies are needless there (the 512-byte write is not: no kernel takes part of a block).
    for (const k of ["6.0", "6.18.0", "6.18-stable"]) expect(kernelOf("seed", k)).toMatchObject({ needlessIos: 3, needlessBytes: 3 * 4096, refusedIos: 0 });
    // 5.19 holds memory to the block: it refuses the kernel rule's direct reads at 512, and seed's copies were needed.
    expect(kernelOf("kernel", "5.19")).toMatchObject({ refusedIos: 2, needlessIos: 0 });
    expect(kernelOf("kernel", "5.19").refusedExample).toContain("read 4096 B, 1 iovec [512+4096]");
    // 5.19 takes only the touching pair (one page-aligned run of a block) as it is.
    expect(kernelOf("seed", "5.19")).toMatchObject({ refusedIos: 0, needlessIos: 1, needlessBytes: 4096 });
  });

  test("one rule set and kernel, in the terminal", () => {
    const result = runCliIn(dir, "replay", hand, "--rules", "seed", "--kernel", "6.0");
    expect(result.code).toBe(0);
    expect(result.stdout).toContain("5 IOs (4 reads, 1 writes)");
    expect(result.stdout).toMatch(/^ {2}seed +3 IOs, 12\.0 KiB on 6\.0$/m);
    expect(result.stdout).toContain("2 x read 4096 B, 1 iovec [512+4096], disk offset on a block");
  });

  test("every rule set and kernel fit 80 columns", () => {
    const result = Bun.spawnSync([process.execPath, join(import.meta.dir, "..", "cli/bounce-bench.ts"), "replay", hand, "--rules", "all", "--kernel", "all"], { env: { ...process.env, COLUMNS: "80" } });
    const lines = result.stdout.toString().trimEnd().split("\n");
    expect(lines.filter((line) => [...line].length > 80)).toEqual([]);
    expect(lines).toContain("REFUSED (EINVAL: the rule set sends what the kernel refuses):");
    expect(lines).toContain("  kernel           2 IOs on 5.19");
  });

  test("property: the streamed totals are each IO planned on its own, at its own addresses", () => {
    const alignment: DiskAlignment = DEFAULT_ALIGNMENT;
    const kernels = NAMED_KERNELS.map(namedKernel);
    // gap: -1 touches the previous iovec; 0 starts in its last page (or the next); 1-3 and 1000
    // pages on; -3 and -1000 pages back.
    const iovec = fc.record({ gap: fc.constantFrom(-1, 0, 1, 2, 3, 1000, -3, -1000), offset: fc.constantFrom(0, 1, 511, 512, 1024, 2048, 3584, 4095), len: fc.constantFrom(1, 511, 512, 1024, 3584, 4096, 8192) });
    const traceIo = fc.record({ op: fc.constantFrom("read" as const, "write" as const), block: fc.integer({ min: 0, max: 64 }), within: fc.constantFrom(0, 512, 1024), iovecs: fc.array(iovec, { minLength: 1, maxLength: 5 }), page: fc.integer({ min: 0, max: 1 << 20 }) });
    fc.assert(
      fc.property(fc.array(traceIo, { minLength: 1, maxLength: 12 }), (shapes) => {
        const ios = shapes.map((s) => {
          let at = BASE + s.page * PAGE;
          const iovecs: [number, number][] = [];
          for (const v of s.iovecs) {
            const address = v.gap === -1 && iovecs.length > 0 ? at : Math.max(0, Math.floor((at - 1) / PAGE) + v.gap) * PAGE + v.offset;
            iovecs.push([address, v.len]);
            at = address + v.len;
          }
          return io(s.op, s.block * 4096 + s.within, iovecs);
        });
        const analysis = new ReplayAnalysis(alignment, RULE_SETS, kernels);
        for (const one of ios) analysis.add(one);
        const got = analysis.finish();
        for (const [r, rules] of RULE_SETS.entries()) {
          let copied = 0;
          const decisions: Record<string, number> = { direct: 0, bounce: 0, rmw: 0, split: 0, buffered: 0 };
          const needless = kernels.map(() => 0);
          const refused = kernels.map(() => 0);
          for (const one of ios) {
            const segments = segmentsOf(one);
            const decided = plan({ op: one.op, mode: "auto", at: one.offset, segments, alignment, rules });
            const direct = kernelCalls(plan({ op: one.op, mode: "direct", at: one.offset, segments, alignment }));
            decisions[decided.decision]!++;
            copied += decided.copiedBytes;
            for (const [k, kernel] of kernels.entries()) {
              if (decided.copiedBytes > 0 && kernelProblem(direct, alignment, one.op, kernel.checks, kernel.memoryIsBlock) === null) needless[k] += decided.copiedBytes;
              if (kernelProblem(kernelCalls(decided), alignment, one.op, kernel.checks, kernel.memoryIsBlock) !== null) refused[k]!++;
            }
          }
          const totals = got.rules[r]!;
          expect({ rules, decisions: totals.decisions, copied: totals.copiedBytes }).toEqual({ rules, decisions: decisions as typeof totals.decisions, copied });
          expect(totals.kernels.map((k) => k.needlessBytes)).toEqual(needless);
          expect(totals.kernels.map((k) => k.refusedIos)).toEqual(refused);
        }
      }),
      { numRuns: 300, seed: 25 },
    );
  });
});

describe("replay --execute", () => {
  test("on a disk file: the trace's writes land where it says and nowhere else, each IO's bytes checked", () => {
    const disk = join(dir, "exec-disk.bin");
    const before = randomBytes(64 * PAGE, 7);
    writeFileSync(disk, before);
    const page = (n: number) => BASE + n * PAGE;
    const trace = writeTrace(
      "exec.trace",
      [
        io("write", 4096, [[page(0), 4096]]),
        io("write", 3 * 4096 + 512, [[page(2) + 1, 512]]), // unaligned memory and disk: bounced
        io("read", 0, [
          [page(4), 4096],
          [page(5) + 100, 4096],
        ]),
        io("write", 40 * 4096, [
          [page(8), 1024],
          [page(8) + 1024, 3072],
        ]),
      ],
      2,
    );
    const doc = replayJson(trace, "--disk", disk, "--force", "--rules", "kernel", "--execute");
    expect(doc.execute).toMatchObject({ ios: 4, verified: 4, unverifiedOverlap: 0, qd: 2, wrapped: 0, failed: {}, rules: "kernel", stopped: false });
    expect(doc.execute.bytes).toBe(4096 + 512 + 8192 + 4096);
    expect(doc.execute.copiedBytes).toBeGreaterThan(0);
    // The decisions done are the ones the analysis counted on the same disk.
    expect(doc.execute.decisions).toEqual(doc.summary.rules[0].decisions);
    const after = fileBytes(disk);
    const written = new Uint8Array(after.length);
    for (const [at, len] of [
      [4096, 4096],
      [3 * 4096 + 512, 512],
      [40 * 4096, 4096],
    ] as const)
      written.fill(1, at, at + len);
    for (let i = 0; i < after.length; i++) if (!written[i] && after[i] !== before[i]) throw new Error(`byte ${i} changed outside the trace's writes`);
    // The written ranges hold new bytes (a pattern, not what was there).
    expect(Buffer.compare(Buffer.from(after.subarray(4096, 8192)), Buffer.from(before.subarray(4096, 8192)))).not.toBe(0);
  });

  test("verification reads the disk back: a disk file replaced under the replay is a MISMATCH, not a pass", async () => {
    const path = join(dir, "replaced.bin");
    writeFileSync(path, randomBytes(16 * PAGE, 9));
    using disk = Disk.open(path, { write: true, direct: true });
    // The path now names another file: the IO lands in the one opened, the read-back sees the other.
    writeFileSync(join(dir, "other.bin"), randomBytes(16 * PAGE, 10));
    renameSync(join(dir, "other.bin"), path);
    using memory = GuestMemory.create(join(dir, "replaced-guest.img"), 16 * PAGE);
    const one = io("write", 4096, [[BASE + 512, 4096]]);
    const run = (verify: boolean) => executeReplay([one], { memory, disk, rules: "kernel", engine: "sync", qd: 1, slotPages: slotPagesFor(one), pace: "fast", verify, fileLocks: false });
    expect((await rejection(run(true))).code).toBe("MISMATCH");
    expect(await run(false)).toMatchObject({ ios: 1, verified: 0 });
  });

  test("an existing disk is not written without --force, and nothing is done", () => {
    const disk = join(dir, "exec-noforce.bin");
    const before = randomBytes(16 * PAGE, 8);
    writeFileSync(disk, before);
    const trace = writeTrace("exec-noforce.trace", [io("write", 0, [[BASE, 4096]])]);
    const result = runCliIn(dir, "replay", trace, "--disk", disk, "--rules", "kernel", "--execute");
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/would overwrite it \(use --force\)/);
    expect(Buffer.compare(Buffer.from(fileBytes(disk)), Buffer.from(before))).toBe(0);
  });

  test("on a scratch disk: offsets beyond it wrap, and --rules all is refused for --execute", () => {
    const trace = writeTrace("exec-wrap.trace", [io("read", 0, [[BASE, 4096]]), io("write", 2 ** 40, [[BASE, 4096]])]);
    const doc = replayJson(trace, "--rules", "kernel", "--execute", "--no-verify");
    expect(doc.execute).toMatchObject({ ios: 2, wrapped: 1, timingIncludesVerify: false, verified: 0 });
    expect(runCliIn(dir, "replay", trace, "--rules", "all", "--execute").stderr).toMatch(/--execute does the IOs as one rule set plans them/);
  });
});
