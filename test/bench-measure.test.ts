/**
 * How the bench measures, functionally (no timing assertions): repeats interleave and summarise
 * as medians with the spread, the ramp is not counted, the effective queue depth shows a budget
 * that starves the queue, a refused case shows no invented figures, guest memory has the backing
 * asked for and bounce buffers its page size, bounce copies are placed away from memcpy's slow
 * distances (reference model: every placement tried) with bytes verified, and the table, CSV
 * and --output formats say what they promise.
 */
import { describe, expect, test } from "bun:test";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { runBench } from "../src/bench/runner";
import type { BenchOptions, BenchProgress } from "../src/bench/bench-options";
import type { BenchCaseResult } from "../src/bench/bench-results";
import { directPeer } from "../src/bench/verdicts";
import { difference, FINDING_P, rankSumP, runRates, spreadOf } from "../src/bench/statistics";
import { guestBackingUnavailable, transparentHugePageMode } from "../src/bench/guest-backing";
import { placeCopies, slowAt, slowCopy, SLOW_DISTANCE_BELOW, type PlannedCopy } from "../src/bounce/copy-placement";
import { measureCopyRates } from "../src/bench/copy-rates";
import { Disk } from "../src/disk/disk";
import { executePlan } from "../src/io/executor";
import { plan } from "../src/io/planner";
import { PreparedIo } from "../src/io/prepared-io";
import { GuestMemory } from "../src/memory/guest-memory";
import { PagedRange } from "../src/memory/paged-range";
import { fileBytes, randomBytes, runCliIn, scratchDir } from "./helpers";

const dir = scratchDir("bench-measure");

function options(overrides: Partial<BenchOptions>): BenchOptions {
  return { size: 4 * 2 ** 20, ops: ["read"], bs: [4096], memOffsets: [0], modes: ["auto"], engine: "sync", qd: 1, threads: 1, budget: 2048, runtimeSeconds: null, ios: 32, ...overrides };
}

describe("repeats, spread, ramp", () => {
  test("runs interleave across cases (round 1 of each, then round 2), and a case's figures are its runs' median and extremes", async () => {
    // Each run's first report (the progress line also redraws within a run, any number of times).
    const started: string[] = [];
    const record = (status: BenchProgress) => {
      const run = `${status.run}:${status.label}`;
      if (started[started.length - 1] !== run) started.push(run);
    };
    const report = await runBench(options({ memOffsets: [0, 8], repeat: 3, onProgress: record }));
    expect(started).toEqual(["0:read 4k +0 auto", "1:read 4k +8 auto", "2:read 4k +0 auto", "3:read 4k +8 auto", "4:read 4k +0 auto", "5:read 4k +8 auto"]);
    for (const result of report.results) {
      expect(result.repeats).toBe(3);
      expect(result.samples).toHaveLength(3);
      const rates = result.samples.map((s) => s.iops).sort((a, b) => a - b);
      expect([result.iopsMin, result.iops, result.iopsMax]).toEqual(rates);
      expect(result.ios).toBe(96);
    }
  });

  test("a sweep stopped early reports every case that ran, with the runs it had", async () => {
    const stop = new Int32Array(new SharedArrayBuffer(4));
    const report = await runBench(
      options({ memOffsets: [0, 8, 512], repeat: 3, stop, onProgress: (status: BenchProgress) => void (status.run === 4 && Atomics.store(stop, 0, 1)) }),
    );
    expect(report.interrupted).toBe(true);
    // Round 1 ran all three cases, round 2 got to the second (stopped at its start).
    expect(report.results.map((r) => [r.memOffset, r.repeats])).toEqual([
      [0, 2],
      [8, 2],
      [512, 1],
    ]);
  });

  test("--ramp runs first and is not counted", async () => {
    const [result] = (await runBench(options({ rampSeconds: 0.05, ios: 20, verify: true, force: true }))).results;
    expect(result!.ios).toBe(20);
    expect(result!.histogram!.counts.reduce((a, b) => a + b, 0)).toBe(20);
  });

  test("the progress line shows the measured run's IOs, never the warm-up's: a 1 s warm-up then 20 IOs shows no count above 20", async () => {
    const seen: number[] = [];
    const report = await runBench(options({ rampSeconds: 1, ios: 20, onProgress: (status: BenchProgress) => seen.push(status.ios) }));
    expect(report.results[0]!.ios).toBe(20);
    // Redrawn every 200 ms: several times within the warm-up, which does far more than 20 IOs.
    expect(seen.length).toBeGreaterThan(2);
    expect(Math.max(...seen)).toBeLessThanOrEqual(20);
  });

  test("the warm-up runs on the measured run's own ring, and leaves nothing in its counts: every per-IO figure is as without one", async () => {
    // Bounced and direct cases, fixed buffers, single-iovec opcodes: each count the run keeps.
    const run = async (rampSeconds: number) =>
      (
        await runBench(
          options({ engine: "uring", qd: 8, memOffsets: [0, 100], modes: ["auto", "bounce"], ops: ["randread", "write"], ios: 40, rampSeconds, verify: true, force: true, uring: { fixedBuffers: true, nonvectored: true } }),
        )
      ).results.map((r) => ({
        case: `${r.op} ${r.memOffset} ${r.mode}`,
        ios: r.ios,
        latencies: r.histogram!.counts.reduce((a, b) => a + b, 0),
        calls: r.callsPerIo,
        diskBytes: r.diskBytesPerIo,
        copied: r.copiedBytesPerIo,
        fixed: r.fixedBuffers,
        nonvectored: r.nonvectored,
      }));
    const cold = await run(0);
    expect(cold.every((r) => r.ios === 40 && r.latencies === 40)).toBe(true);
    expect(cold.some((r) => r.copied > 0) && cold.some((r) => r.copied === 0)).toBe(true);
    expect(await run(0.05)).toEqual(cold);
  });

  test("spreadOf is the sorted values' median, extremes and (from 4) quartiles; a difference is judged by its runs", () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 1000 }), { minLength: 1, maxLength: 9 }), (values) => {
        const sorted = [...values].sort((a, b) => a - b);
        const spread = spreadOf(values);
        const n = sorted.length;
        expect(spread.median).toBe(n % 2 === 1 ? sorted[(n - 1) / 2]! : (sorted[n / 2 - 1]! + sorted[n / 2]!) / 2);
        expect([spread.min, spread.max]).toEqual([sorted[0]!, sorted[n - 1]!]);
        expect(spread.quartiles === null).toBe(n < 4);
        if (spread.quartiles !== null) expect(spread.quartiles[0]).toBeLessThanOrEqual(spread.quartiles[1]);
      }),
    );
    // Quartiles interpolate between ranks: (n - 1) / 4 and 3 (n - 1) / 4 of the sorted values.
    expect(spreadOf([5, 1, 4, 2, 3]).quartiles).toEqual([2, 4]);
    expect(spreadOf([4, 1, 3, 2]).quartiles).toEqual([1.75, 3.25]);
    expect(spreadOf([7, 1, 3]).quartiles).toBeNull();
    // Three runs a side can never be a finding (the least p is 0.1); four can.
    expect(difference([90, 100, 110], [120, 130, 140])).toEqual({ percent: 30, p: 0.1, beyondNoise: false });
    expect(difference([90, 100, 105, 110], [120, 125, 130, 140])).toEqual({ percent: (127.5 - 102.5) / 102.5 * 100, p: 2 / 70, beyondNoise: true });
    expect(difference([100], [130])).toEqual({ percent: 30, p: null, beyondNoise: false });
  });
});

/** Every split of the pooled values into sides of a's and b's sizes, ranked from scratch: the reference model of the exact test. */
function referenceRankSumP(a: number[], b: number[]): number {
  const pooled = [...a, ...b];
  const sorted = [...pooled].sort((x, y) => x - y);
  const rank = (value: number) => {
    const first = sorted.indexOf(value);
    const last = sorted.lastIndexOf(value);
    return (first + last) / 2 + 1;
  };
  const ranks = pooled.map(rank);
  const mean = (a.length * (pooled.length + 1)) / 2;
  const observed = Math.abs(a.reduce((sum, value) => sum + rank(value), 0) - mean);
  let extreme = 0;
  let all = 0;
  const choose = (from: number, left: number, sum: number): void => {
    if (left === 0) {
      all++;
      if (Math.abs(sum - mean) >= observed - 1e-9) extreme++;
      return;
    }
    for (let i = from; i <= pooled.length - left; i++) choose(i + 1, left - 1, sum + ranks[i]!);
  };
  choose(0, a.length, 0);
  return extreme / all;
}

/** Deterministic normal deviates (xorshift32 and Box-Muller), so the rates below reproduce. */
function normals(seed: number): () => number {
  let x = seed | 0 || 1;
  const uniform = () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return ((x >>> 0) + 0.5) / 2 ** 32;
  };
  return () => Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
}

describe("the rank test that judges a difference", () => {
  test("exact p-values equal the reference model's (every split enumerated), ties included", () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 6 }), { minLength: 1, maxLength: 6 }),
        fc.array(fc.integer({ min: 0, max: 6 }), { minLength: 1, maxLength: 6 }),
        (a, b) => {
          expect(rankSumP(a, b)).toBeCloseTo(referenceRankSumP(a, b), 12);
        },
      ),
      { numRuns: 300 },
    );
  });

  test("the least p of n and m runs is 2 / C(n+m, n): 3 and 3 runs 0.1, 4 and 4 2/70, 5 and 5 2/252", () => {
    expect(rankSumP([1, 2, 3], [4, 5, 6])).toBeCloseTo(0.1, 12);
    expect(rankSumP([1, 2, 3, 4], [5, 6, 7, 8])).toBeCloseTo(2 / 70, 12);
    expect(rankSumP([6, 7, 8, 9, 10], [1, 2, 3, 4, 5])).toBeCloseTo(2 / 252, 12);
    expect(rankSumP([1, 1, 1], [1, 1, 1])).toBe(1);
  });

  test("beyond 40 values, the normal approximation (ties corrected) stays within 0.01 of the exact test", () => {
    const next = normals(7);
    for (let trial = 0; trial < 40; trial++) {
      const shift = (trial % 5) * 0.3;
      const a = Array.from({ length: 18 }, () => Math.round(next() * 4));
      const b = Array.from({ length: 20 }, () => Math.round(next() * 4 + shift * 4));
      expect(Math.abs(rankSumP(a, b, 0) - rankSumP(a, b))).toBeLessThan(0.01);
    }
  });

  test("two sets of 5 runs of one distribution are a finding in at most 5% of pairs; a 20% change with 5% noise is found in at least 90%", () => {
    const next = normals(11);
    const runs = (centre: number) => Array.from({ length: 5 }, () => centre * (1 + 0.05 * next()));
    let falseFindings = 0;
    let found = 0;
    const pairs = 2000;
    for (let i = 0; i < pairs; i++) {
      if (difference(runs(100), runs(100)).beyondNoise) falseFindings++;
      if (difference(runs(100), runs(120)).beyondNoise) found++;
    }
    expect(falseFindings / pairs).toBeLessThanOrEqual(FINDING_P);
    expect(found / pairs).toBeGreaterThanOrEqual(0.9);
  });
});

describe("what the figures count", () => {
  test("a budget smaller than the queue shows as an effective depth below --qd; process CPU includes the IO thread's", async () => {
    const [full, starved] = (
      await runBench(options({ engine: "uring", qd: 8, bs: [65536], modes: ["auto", "bounce"], budget: 32, ios: 400 }))
    ).results;
    expect(full!.decision).toBe("direct");
    expect(full!.effectiveQd).toBeGreaterThan(6);
    expect(starved!.decision).toBe("bounce");
    expect(starved!.effectiveQd).toBeLessThan(4); // 32 pages hold two 16-page buffers
    expect(full!.cpuNsPerIo).toBeGreaterThan(0);
    expect(full!.cpuUtilization).toBeGreaterThan(0);
    // The whole process's clock runs at least as fast as the IO thread's over the same time.
    for (const r of [full!, starved!]) expect(r.cpuNsPerIoMax).toBeGreaterThanOrEqual(r.threadCpuNsPerIo * 0.95);
  });

  test("a case the kernel refuses shows no latency, histogram or segments", async () => {
    const [refused] = (await runBench(options({ memOffsets: [100], modes: ["direct"], alignOverride: 4096, repeat: 2 }))).results;
    expect(refused!.error?.code).toBe("EINVAL");
    expect(refused!.ios).toBe(0);
    expect({ latency: refused!.latencyUs, histogram: refused!.histogram, segments: refused!.physicalSegments, mib: refused!.mibPerSec }).toEqual({
      latency: null,
      histogram: null,
      segments: null,
      mib: 0,
    });
  });
});

describe("guest memory backing, like for like", () => {
  const thp = guestBackingUnavailable("thp", 2 ** 21);
  test.skipIf(thp !== null)(`thp: guest memory on huge pages, and bounce buffers too by default; bytes verified${thp === null ? "" : ` (skipped: ${thp})`}`, async () => {
    const report = await runBench(options({ guestBacking: "thp", ops: ["write", "read"], bs: [65536], memOffsets: [0, 8], modes: ["auto", "bounce"], verify: true, force: true }));
    expect(report.host).toMatchObject({ guestBacking: "thp", bounceHugePages: true });
    expect(report.host.guestHugePageBytes).toBeGreaterThan(0);
    for (const r of report.results) expect(r.error).toBeNull();
    expect(report.results.some((r) => r.bounce.hugePageBytes > 0)).toBe(true);
  });

  test("file and memfd: base pages for guest and bounce buffers; --bounce-pages thp is the labelled exception", async () => {
    for (const guestBacking of ["file", "memfd"] as const) {
      const report = await runBench(options({ guestBacking, ops: ["write", "read"], memOffsets: [8], modes: ["auto"], verify: true, force: true }));
      expect(report.host).toMatchObject({ guestBacking, bounceHugePages: false, guestHugePageBytes: 0 });
      for (const r of report.results) expect({ error: r.error, huge: r.bounce.hugePageBytes }).toEqual({ error: null, huge: 0 });
    }
    const unlike = await runBench(options({ bouncePages: "thp", memOffsets: [8] }));
    expect(unlike.host.bounceHugePages).toBe(true);
    const header = runCliIn(dir, "bench", "--size", "2m", "--bs", "4k", "--mem-offset", "8", "--mode", "bounce", "--ios", "10", "--repeat", "1", "--bounce-pages", "thp").stdout;
    expect(header).toContain("bounce buffers on transparent huge pages (NOT like the guest's: --bounce-pages)");
  });

  const layoutUnavailable =
    process.getuid?.() !== 0 ? "page frames are visible to root only" : transparentHugePageMode() === "never" ? "transparent huge pages are off" : null;
  test.skipIf(layoutUnavailable !== null)(
    `bounce buffers are laid out physically like the guest pages they stand in for: the device sees as many segments; bytes verified${layoutUnavailable === null ? "" : ` (skipped: ${layoutUnavailable})`}`,
    async () => {
      const report = await runBench(options({ ops: ["write", "read"], bs: [65536, 2 ** 20], memOffsets: [0, 8], modes: ["auto", "bounce"], verify: true, force: true }));
      for (const r of report.results) {
        expect(r.error).toBeNull();
        if (r.bounce.copyNs === 0) {
          expect({ direct: r.physicalSegments, layout: r.bounce.layoutMatched }).toEqual({ direct: r.guestSegments, layout: null });
          continue;
        }
        expect(r.bounce.layoutMatched).toBe(true);
        // At +0 the bounce buffer repeats the guest buffer page for page.
        if (r.memOffset === 0) expect(r.physicalSegments).toBe(r.guestSegments!);
      }
      // `any`: memory as it comes, nothing asked.
      const any = await runBench(options({ bs: [65536], modes: ["bounce"], bounceLayout: "any" }));
      expect(any.results[0]!.bounce.layoutMatched).toBeNull();
    },
    30_000,
  );

  const hugetlb = guestBackingUnavailable("hugetlb", 2 ** 21);
  test.skipIf(hugetlb !== null)(`hugetlb: guest memory from the reserved pool${hugetlb === null ? "" : ` (skipped: ${hugetlb})`}`, async () => {
    const report = await runBench(options({ guestBacking: "hugetlb", ops: ["write", "read"], memOffsets: [8], modes: ["auto"], verify: true, force: true }));
    expect(report.host.guestBacking).toBe("hugetlb");
    for (const r of report.results) expect(r.error).toBeNull();
  });

  test("an unavailable backing, or one next to --guest, is exit 2 naming why, before anything is made", () => {
    const bad = runCliIn(dir, "bench", "--guest", join(dir, "g.img"), "--guest-backing", "thp", "--ios", "5");
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("cannot be combined with --guest");
    expect(existsSync(join(dir, "g.img"))).toBe(false);
    if (hugetlb !== null) {
      const none = runCliIn(dir, "bench", "--guest-backing", "hugetlb", "--ios", "5");
      expect(none.code).toBe(2);
      expect(none.stderr).toContain("huge pages");
    }
  });
});

describe("bounce copies placed away from memcpy's slow distances", () => {
  const copy = fc.record({ guestAddress: fc.integer({ min: 0, max: 2 ** 20 }), bounceOffset: fc.integer({ min: 0, max: 2 ** 16 }), len: fc.integer({ min: 1, max: 2 ** 16 }) });

  test("the shift is a multiple of the memory alignment below a page, leaves the fewest slow bytes of any such shift, and splits exactly the copies still slow", () => {
    fc.assert(
      fc.property(fc.array(copy, { minLength: 1, maxLength: 8 }), fc.boolean(), fc.constantFrom(1, 8, 512, 4096), (copies: PlannedCopy[], toBounce, memAlign) => {
        const { shift, split } = placeCopies(copies, toBounce, memAlign, "placed");
        expect(shift % memAlign).toBe(0);
        expect(shift).toBeLessThan(4096);
        const slowBytes = (at: number) => copies.reduce((sum, c) => sum + (slowAt(at, c, toBounce) ? c.len : 0), 0);
        let least = Infinity;
        for (let at = 0; at < 4096; at += memAlign) least = Math.min(least, slowBytes(at));
        expect(slowBytes(shift)).toBe(least);
        expect(split).toEqual(copies.map((c) => slowAt(shift, c, toBounce)));
        expect(placeCopies(copies, toBounce, memAlign, "memcpy")).toEqual({ shift: 0, split: copies.map(() => false) });
      }),
    );
    // The slow window: destination 1 .. 63 bytes ahead within a page, for copies long enough for rep movsb.
    expect([slowCopy(0, 8, 65536), slowCopy(8, 0, 65536), slowCopy(0, SLOW_DISTANCE_BELOW, 65536), slowCopy(0, 8, 1024), slowCopy(4096, 8200, 4096)]).toEqual([true, false, false, false, true]);
  });

  test("a read into a guest buffer 8 bytes into its page: placed, no slow copy and the bytes right; memcpy: the slow copy, named, and the bytes right", async () => {
    const guestPath = join(dir, "copy-guest.img");
    const diskPath = join(dir, "copy-disk.bin");
    const data = randomBytes(2 ** 20, 13);
    writeFileSync(diskPath, data);
    writeFileSync(guestPath, new Uint8Array(64 * 4096));
    using memory = GuestMemory.open(guestPath);
    using disk = Disk.open(diskPath, { write: false, direct: true });
    for (const copy of ["placed", "memcpy"] as const) {
      const decided = plan({ op: "read", mode: "auto", at: 8192, segments: [new PagedRange(8, 65536, Array.from({ length: 17 }, (_, i) => 2 + i))], alignment: disk.alignment });
      expect(decided.decision).toBe("bounce");
      using io = PreparedIo.prepare(decided, memory, disk, { copy });
      expect({ copy, shift: io.bounceShift > 0, slow: io.slowCopyBytes }).toEqual({ copy, shift: copy === "placed", slow: copy === "placed" ? 0 : 65536 });
      memory.fill(0, 64 * 4096, 0);
      await executePlan(decided, memory, disk, { copy });
      expect(fileBytes(guestPath).subarray(2 * 4096 + 8, 2 * 4096 + 8 + 65536)).toEqual(data.subarray(8192, 8192 + 65536));
    }
  });

  test("the machine's copy rates are measured at each distance (the report names the slow ones)", () => {
    const rates = measureCopyRates([0, 8, 512], 16384, 2);
    expect(rates.map((r) => r.distance)).toEqual([0, 8, 512]);
    for (const rate of rates) expect(rate.gibPerSec).toBeGreaterThan(0);
  });
});

describe("the report's formats", () => {
  const base = ["bench", "--size", "2m", "--op", "read", "--bs", "4k", "--mem-offset", "0,100", "--ios", "20", "--repeat", "2"];

  test("everything fits the terminal from 80 columns: default columns give way (never decision), chosen ones stay; a bad column is exit 2", () => {
    const at = (columns: number, ...args: string[]) =>
      Bun.spawnSync([process.execPath, join(import.meta.dir, "../cli/bounce-bench.ts"), ...args], { cwd: dir, env: { ...process.env, COLUMNS: String(columns) } }).stdout.toString();
    // A sweep with verdicts, block sizes whose ranges are long, and every footnote.
    const sweep = ["bench", "--size", "8m", "--op", "read,write", "--bs", "4k,1m", "--mem-offset", "0,8", "--mode", "auto,bounce", "--ios", "8", "--repeat", "4"];
    for (const columns of [80, 100]) {
      const out = at(columns, ...sweep);
      expect(out).toContain("what bouncing costs");
      expect(out.split("\n").filter((line) => line.length > columns)).toEqual([]);
      expect(out.split("\n").find((line) => line.startsWith("op "))).toContain("decision");
    }
    const narrow = at(60, ...base).split("\n").find((line) => line.startsWith("op "))!;
    expect(narrow.length).toBeLessThanOrEqual(60);
    expect(narrow).toContain("decision");
    expect(narrow).not.toContain("±%");
    for (const command of ["", "image", "probe", "plan", "io", "bench", "compare", "report", "repro"]) {
      const help = at(80, ...(command === "" ? [] : [command]), "--help");
      expect({ command, long: help.split("\n").filter((line) => line.length > 80) }).toEqual({ command, long: [] });
    }
    const chosen = runCliIn(dir, ...base, "--columns", "op,p50,p90,p999,mean,stdev,qd,util,thcpu,calls");
    expect(chosen.stdout).toMatch(/op +p50 us +p90 us +p99\.9 us +mean us +sd us +eff qd +cores +IO thr us\/IO +calls\/IO\n/);
    // A leading + adds every column listed to the default set, as --help shows it.
    const added = runCliIn(dir, ...base, "--columns", "+segs,thcpu");
    const addedHeader = added.stdout.split("\n").find((line) => line.startsWith("op "))!;
    for (const head of ["MiB/s", "CPU us/IO", "phys segs", "IO thr us/IO"]) expect(addedHeader).toContain(head);
    const bad = runCliIn(dir, ...base, "--columns", "op,nonsense");
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('"nonsense" is not a column');
  });

  test("the verdict keeps its layout: each metric's row indented under its case", () => {
    const lines = runCliIn(dir, ...base).stdout.split("\n");
    const at = lines.findIndex((line) => /^  case +metric +change/.test(line));
    expect(lines.findIndex((line) => line.startsWith("what bouncing costs"))).toBeGreaterThan(0);
    expect(at).toBeGreaterThan(0);
    expect(lines[at + 1]).toMatch(/^  read 4k \+0 +CPU us\/IO /);
    expect(lines[at + 2]).toMatch(/^ +MiB\/s /);
    expect(lines[at + 2]!.indexOf("MiB/s")).toBe(lines[at + 1]!.indexOf("CPU us/IO")); // under its case, in the metric column
  });

  test("--format csv: every column, one row per case; --output writes the file, never replaces one without --force", () => {
    const csv = runCliIn(dir, ...base, "--format", "csv");
    expect(csv.code).toBe(0);
    const [head, ...rows] = csv.stdout.trim().split("\n");
    // Each header names its unit, the table's own; a value that is not there is empty, never "-".
    expect(head!.split(",")).toEqual(expect.arrayContaining(["op", "dmibs [%]", "cpu [us/IO]", "mibs [MiB/s]"]));
    expect(rows.join("\n")).not.toMatch(/(^|,)-(,|$)/m);
    expect(rows).toHaveLength(4); // offsets 0 and 100, modes auto and bounce
    const out = join(dir, "report.json");
    expect(runCliIn(dir, ...base, "--format", "json", "--output", out).stdout).toBe("");
    expect(JSON.parse(readFileSync(out, "utf8")).command).toBe("bench");
    const before = readFileSync(out, "utf8");
    const again = runCliIn(dir, ...base, "--format", "json", "--output", out);
    expect(again.code).toBe(2);
    expect(again.stderr).toContain("already exists");
    expect(readFileSync(out, "utf8")).toBe(before);
    expect(runCliIn(dir, ...base, "--format", "json", "--output", out, "--force").code).toBe(0);
  });
});

test("the progress line counts IOs as they complete, however few: a 1 s run of 4 MiB reads shows counts between 0 and its total", async () => {
  const seen: number[] = [];
  const report = await runBench(options({ size: 64 * 2 ** 20, bs: [4 * 2 ** 20], runtimeSeconds: 1, ios: null, onProgress: (status: BenchProgress) => seen.push(status.ios) }));
  const total = report.results[0]!.ios;
  // The line is redrawn every 200 ms of a run that lasts a second: some redraws fall inside it.
  expect(seen.some((ios) => ios > 0 && ios < total)).toBe(true);
});

describe("the direct case a bounced one is judged against", () => {
  const at = (memOffset: number, decision: string, extra: Record<string, unknown> = {}) =>
    ({ op: "read", bs: 65536, shape: null, memOffset, decision, mode: decision === "direct" ? "auto" : "bounce", ios: 10, ...extra }) as unknown as BenchCaseResult;
  test("the direct case at the same memory offset; else the smallest offset taken directly; never another op, size or a refused case", () => {
    const direct0 = at(0, "direct");
    const direct512 = at(512, "direct");
    const all = [direct0, at(8, "bounce"), direct512, at(512, "bounce"), at(0, "direct", { op: "write" }), at(4, "direct", { ios: 0 })];
    expect(directPeer(all[3]!, all)).toBe(direct512);
    expect(directPeer(all[1]!, all)).toBe(direct0);
    expect(directPeer(direct0, all)).toBeNull();
    expect(directPeer(at(8, "bounce", { bs: 4096 }), all)).toBeNull();
  });
});

describe("a run's rates from its jobs", () => {
  test("CPU from the earliest start to the latest end of the threads, time the longest job's, an unmeasured job counting for none", () => {
    const job = (ios: number, elapsedNs: number, cpuStart: number, cpuEnd: number, cpuNs: number) => ({ ios, bytes: ios * 4096, elapsedNs, processCpuStartNs: cpuStart, processCpuEndNs: cpuEnd, cpuNs });
    const rates = runRates([job(1000, 2e9, 5e6, 9e8, 3e8), job(500, 1.5e9, 2e8, 6e8, 1e8), job(0, 0, 0, 0, 0)]);
    expect(rates).toEqual({
      ios: 1500,
      bytes: 1500 * 4096,
      seconds: 2,
      mibPerSec: (1500 * 4096) / 2 ** 20 / 2,
      iops: 750,
      cpuNs: 9e8 - 5e6,
      cpuNsPerIo: (9e8 - 5e6) / 1500,
      threadCpuNsPerIo: 4e8 / 1500,
      utilization: (9e8 - 5e6) / 1e9 / 2,
    });
  });
});
