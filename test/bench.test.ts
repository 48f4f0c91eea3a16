/**
 * The benchmark, functionally (no timing assertions): every engine moves the right bytes
 * (each IO checked against the disk by an independent read), the JSON carries the SPEC fields,
 * the bounce budget holds across Workers, user files are protected, and Ctrl-C leaves nothing
 * behind.
 */
import { describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { LatencyHistogram } from "../src/bench/histogram";
import { runBench, type BenchOptions } from "../src/bench/runner";
import { fileBytes, randomBytes, ROOT, runCliIn, scratchDir } from "./helpers";

const dir = scratchDir("bench");

function options(overrides: Partial<BenchOptions>): BenchOptions {
  return {
    size: 4 * 2 ** 20,
    ops: ["read"],
    bs: [4096],
    memOffsets: [0],
    modes: ["auto"],
    engine: "sync",
    qd: 1,
    threads: 1,
    budget: 2048,
    runtimeSeconds: null,
    ios: 64,
    ...overrides,
  };
}

describe("engines move the right bytes (verified IO by IO)", () => {
  const cases: [string, Partial<BenchOptions>][] = [
    ["sync, direct and bounced", { engine: "sync", memOffsets: [0, 100], modes: ["auto", "bounce"], ops: ["read", "write", "randread", "randwrite"] }],
    ["uring qd 8", { engine: "uring", qd: 8, memOffsets: [0, 100], modes: ["auto", "bounce"], ops: ["read", "write", "randread"], bs: [4096, 65536] }],
    ["buffered", { engine: "uring", qd: 4, modes: ["buffered"], memOffsets: [7], ops: ["read", "write"] }],
    ["two threads", { engine: "uring", qd: 4, threads: 2, memOffsets: [512], modes: ["auto", "bounce"], ops: ["write", "read"] }],
  ];
  for (const [name, overrides] of cases) {
    test(name, async () => {
      const report = await runBench(options({ ...overrides, verify: true, force: true }));
      for (const result of report.results) {
        expect(result.error).toBeNull();
        expect(result.ios).toBe(Math.ceil(64 / result.threads) * result.threads);
        expect(result.bytes).toBe(result.ios * result.bs);
        if (result.memOffset === 100 || result.mode === "bounce") {
          expect(result.decision).toBe("bounce");
          expect(result.bounce.acquired).toBe(result.ios);
        }
      }
    });
  }

  test("the null engine touches nothing", async () => {
    const disk = join(dir, "null-disk.bin");
    const data = randomBytes(2 ** 20, 3);
    writeFileSync(disk, data);
    const report = await runBench(options({ engine: "null", qd: 16, diskPath: disk, ops: ["write", "randwrite"], force: true, ios: 5000 }));
    expect(report.results.map((r) => r.ios)).toEqual([5000, 5000]);
    expect(fileBytes(disk)).toEqual(data);
  });
});

describe("bounce budget", () => {
  test("held across Workers: each thread's slot never exceeds its budget, and waits are counted", async () => {
    const report = await runBench(
      options({ engine: "uring", qd: 4, threads: 2, bs: [65536], modes: ["bounce"], budget: 32, ios: 400, ops: ["read"] }),
    );
    const [result] = report.results;
    expect(result!.error).toBeNull();
    expect(result!.bounce.acquired).toBe(400);
    expect(result!.bounce.peakPages).toBeLessThanOrEqual(32);
    expect(result!.bounce.waits).toBeGreaterThan(0); // qd 4 x 16 pages cannot fit in 32
  });

  test("a block larger than the budget is refused up front", async () => {
    await expect(runBench(options({ bs: [65536], budget: 8, modes: ["bounce"] }))).rejects.toThrow("cannot hold one 64k bounce buffer");
  });
});

describe("the command", () => {
  test("--json carries the SPEC fields", () => {
    const result = runCliIn(dir, "bench", "--json", "--size", "2m", "--op", "read,write", "--bs", "4k", "--mem-offset", "0,100", "--mode", "auto", "--ios", "50");
    expect(result.code).toBe(0);
    const doc = JSON.parse(result.stdout);
    expect(Object.keys(doc.host)).toEqual(expect.arrayContaining(["kernel", "cpu", "filesystem", "alignment"]));
    expect(doc.host.alignment.source).toBe("statx");
    expect(doc.results.length).toBe(4);
    for (const r of doc.results) {
      for (const key of ["op", "bs", "memOffset", "mode", "decision", "engine", "qd", "threads", "ios", "bytes", "seconds", "mibPerSec", "iops", "latencyUs", "bounce"]) {
        expect(r).toHaveProperty(key);
      }
      expect(Object.keys(r.latencyUs)).toEqual(["p50", "p99", "max"]);
      expect(Object.keys(r.bounce)).toEqual(expect.arrayContaining(["acquired", "waits", "waitNs", "peakPages", "copyNs", "copyGiBPerSec", "hugePageBytes"]));
      expect(r.ios).toBe(50);
      // Only bounced cases copy.
      expect(r.bounce.copyNs > 0).toBe(r.decision === "bounce");
      expect(r.bounce.copyGiBPerSec > 0).toBe(r.decision === "bounce");
    }
    expect(["always", "madvise", "never", null]).toContain(doc.host.transparentHugePages);
    // /tmp is on a block device here: its request limit is known, and root sees page frames.
    expect(doc.host.maxSegments).toBeGreaterThan(0);
    for (const r of doc.results) {
      if (process.getuid?.() === 0) expect(r.physicalSegments).toBeOneOf([1, 2]); // 4k at offset 0 or 100
      else expect(r.physicalSegments).toBeNull();
    }
    expect(doc.results.map((r: { decision: string }) => r.decision)).toEqual(["direct", "bounce", "direct", "bounce"]);
  });

  test("the table for people has a header saying where it ran, and the cost of bouncing", () => {
    const result = runCliIn(dir, "bench", "--size", "2m", "--op", "read", "--bs", "4k", "--mem-offset", "0,100", "--ios", "50");
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^bounce-bench .* bench on Linux /);
    expect(result.stdout).toContain("alignment: memory 512, offset 512 (statx)");
    expect(result.stdout).toContain("vs direct");
    expect(result.stdout).toMatch(/MiB\/s [+-]\d+%, CPU [+-]\d+%/);
  });

  test("a write workload on an existing disk needs --force, and nothing is written without it", () => {
    const disk = join(dir, "mine.bin");
    const data = randomBytes(2 ** 20, 9);
    writeFileSync(disk, data);
    const refused = runCliIn(dir, "bench", "--disk", disk, "--op", "write", "--bs", "4k", "--ios", "10");
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain("use --force");
    expect(fileBytes(disk)).toEqual(data);
    expect(runCliIn(dir, "bench", "--disk", disk, "--op", "read", "--bs", "4k", "--ios", "10").code).toBe(0); // reads need no force
    expect(fileBytes(disk)).toEqual(data);
  });

  test("a forced direct case the kernel refuses is a result, not a failure", () => {
    const result = runCliIn(dir, "bench", "--json", "--size", "2m", "--op", "read", "--bs", "4k", "--mem-offset", "100", "--mode", "direct,auto", "--ios", "20", "--align", "4096");
    expect(result.code).toBe(0);
    const [direct, auto] = JSON.parse(result.stdout).results;
    expect(direct.error.code).toBe("EINVAL");
    expect(auto).toMatchObject({ decision: "bounce", ios: 20, error: null });
  });

  test("--emit-fio writes the equivalent fio job, and never replaces a file without --force", () => {
    const job = join(dir, "cases.fio");
    const result = runCliIn(dir, "bench", "--size", "2m", "--op", "randread", "--bs", "64k", "--mem-offset", "512", "--mode", "auto", "--engine", "uring", "--qd", "4", "--ios", "10", "--emit-fio", job);
    expect(result.code).toBe(0);
    const text = readFileSync(job, "utf8");
    for (const line of ["ioengine=io_uring", "iodepth=4", "rw=randread", "bs=65536", "direct=1", "iomem_align=512", "number_ios=10"]) expect(text).toContain(line);
    const again = runCliIn(dir, "bench", "--size", "2m", "--op", "read", "--bs", "4k", "--ios", "10", "--emit-fio", job);
    expect(again.code).toBe(2);
    expect(readFileSync(job, "utf8")).toBe(text);
  });

  test("bad values are exit 2 with one line", () => {
    for (const args of [["--bs", "1000"], ["--mem-offset", "5000"], ["--op", "readwrite"], ["--qd", "4"], ["--runtime", "-1"], ["--runtime", "1", "--ios", "5"], ["--threads", "0"]]) {
      const result = runCliIn(dir, "bench", "--size", "1m", ...args);
      expect(result.code).toBe(2);
      expect(result.stderr).toMatch(/^bounce-bench: [^\n]+\n$/);
    }
  });

  test("Ctrl-C prints the partial results, removes the scratch files and exits 130", async () => {
    const tmp = join(dir, "tmp-for-sigint");
    mkdirSync(tmp);
    const child = Bun.spawn([process.execPath, join(ROOT, "cli/bounce-bench.ts"), "bench", "--size", "8m", "--op", "read", "--bs", "4k", "--runtime", "30"], {
      env: { ...process.env, TMPDIR: tmp },
      stdout: "pipe",
      stderr: "pipe",
    });
    // Wait until the scratch directory exists (the run has started), then interrupt.
    for (let i = 0; i < 200 && readdirSync(tmp).length === 0; i++) await Bun.sleep(25);
    expect(readdirSync(tmp).length).toBe(1);
    await Bun.sleep(300);
    child.kill("SIGINT");
    const code = await child.exited;
    const stdout = await new Response(child.stdout).text();
    const stderr = await new Response(child.stderr).text();
    expect(code).toBe(130);
    expect(stdout).toContain("interrupted");
    expect(stderr).toContain("interrupted by SIGINT");
    expect(readdirSync(tmp)).toEqual([]);
    expect(existsSync(tmp)).toBe(true);
  });
});

describe("latency histogram", () => {
  test("percentiles are within 2% of the exact ones, and max is exact", () => {
    const values = Array.from(randomBytes(40000, 5), (b, i) => (b + 1) * ((i % 97) + 1) * 37);
    const histogram = new LatencyHistogram();
    for (const value of values) histogram.record(value);
    const sorted = [...values].sort((a, b) => a - b);
    for (const p of [50, 90, 99, 99.9]) {
      const exact = sorted[Math.ceil((p / 100) * sorted.length) - 1]!;
      expect(Math.abs(histogram.percentile(p) - exact) / exact).toBeLessThan(0.02);
    }
    expect(histogram.maxNs).toBe(sorted[sorted.length - 1]!);
    expect(new LatencyHistogram().percentile(50)).toBe(0);
  });
});
