/**
 * The benchmark, functionally (no timing assertions): every engine moves the right bytes
 * (each IO checked against the disk by an independent read), the JSON carries the SPEC fields,
 * the bounce budget holds across Workers, user files are protected, and Ctrl-C leaves nothing
 * behind.
 */
import { describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { tmpdir } from "node:os";
import { PageCacheTrace } from "../src/host/page-cache-trace";
import { mountsUnder } from "../src/host/scratch-dir";
import { spawnSync } from "node:child_process";
import { scratchDiskUnavailable } from "../src/host/scratch-disks";
import { LatencyHistogram } from "../src/bench/histogram";
import { VERSION } from "../cli/version";
import { runBench } from "../src/bench/runner";
import { vectoredFixedBuffers } from "../src/io/engines";
import { Disk } from "../src/disk/disk";
import type { BenchOptions } from "../src/bench/bench-options";
import type { JobSpec } from "../src/bench/job";
import { parseSegment } from "../src/base/value-parsers";
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
    // io_uring's options, as fio names them (the ring's own tests check each against the kernel).
    ["uring qd 8, registered file", { engine: "uring", qd: 8, uring: { registerFiles: true }, memOffsets: [0, 100], modes: ["auto"], ops: ["randread", "randwrite"] }],
    ["uring qd 8, SQPOLL", { engine: "uring", qd: 8, uring: { sqpoll: true }, memOffsets: [0, 100], modes: ["auto"], ops: ["randread", "write"] }],
    ["uring qd 8, DEFER_TASKRUN, two threads", { engine: "uring", qd: 8, threads: 2, uring: { deferTaskrun: true, registerFiles: true }, memOffsets: [0], modes: ["auto", "bounce"], ops: ["read", "randwrite"] }],
    // Guest pages and bounce memory registered: every call goes with a registered buffer.
    ["uring qd 8, fixed buffers, two threads", { engine: "uring", qd: 8, threads: 2, uring: { fixedBuffers: true }, memOffsets: [0, 100], modes: ["auto", "bounce"], ops: ["randread", "randwrite", "write"], bs: [4096, 65536] }],
  ];
  for (const [name, overrides] of cases) {
    test(name, async () => {
      const report = await runBench(options({ ...overrides, verify: true, force: true }));
      for (const result of report.results) {
        expect(result.error).toBeNull();
        // Verifying reads the disk back through the page cache: a fallback could not be told apart.
        if (result.mode !== "buffered") expect(result.pageCache).toMatchObject({ used: null, evidence: expect.stringContaining("--verify") });
        expect(result.ios).toBe(Math.ceil(64 / result.threads) * result.threads);
        expect(result.bytes).toBe(result.ios * result.bs);
        if (result.memOffset === 100 || result.mode === "bounce") {
          expect(result.decision).toBe("bounce");
          expect(result.bounce.acquired).toBe(result.ios);
        }
        expect(result.fixedBuffers).toEqual(overrides.uring?.fixedBuffers ? { calls: result.ios, notFixed: 0 } : null);
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

  test("bounce memory is what the budget lets a thread hold at once, not queue depth x block size; the IOs beyond it wait, and every byte lands", async () => {
    // qd 64 x 1 MiB would be 64 MiB; a budget of 512 pages holds two 1 MiB buffers.
    const [deep] = (await runBench(options({ bs: [2 ** 20], qd: 64, engine: "uring", budget: 512, modes: ["bounce"], ops: ["write"], ios: 200, verify: true, force: true }))).results;
    expect(deep!.error).toBeNull();
    expect(deep!.bounce.arenaBytes).toBe(2 * (2 ** 20 + 4096)); // a page more each, for the copy placement
    expect(deep!.bounce.peakPages).toBeLessThanOrEqual(512);
    expect(deep!.bounce.waits).toBeGreaterThan(0);
    expect(deep!.effectiveQd).toBeLessThanOrEqual(3);
    // With room for the whole queue, one buffer per IO in flight.
    const [roomy] = (await runBench(options({ bs: [65536], qd: 8, engine: "uring", budget: 2048, modes: ["bounce"], ios: 64 }))).results;
    expect(roomy!.bounce.arenaBytes).toBe(8 * (65536 + 4096));
  });

  test("a disk the cases cannot use is refused before the scratch disk is filled: nothing made, nothing left", async () => {
    const { mkdtempSync, readdirSync } = await import("node:fs");
    const { tmpdir } = await import("node:os");
    const tmp = mkdtempSync(join(tmpdir(), "bounce-bench-upfront-"));
    try {
      const result = Bun.spawnSync([process.execPath, join(ROOT, "cli/bounce-bench.ts"), "bench", "--size", "16G", "--align", "256", "--ios", "10"], { env: { ...process.env, TMPDIR: tmp } });
      expect(result.exitCode).toBe(2);
      expect(result.stderr.toString()).toContain("--align 256 is below the disk's own block");
      expect(readdirSync(tmp)).toEqual([]);
    } finally {
      const { rmSync } = await import("node:fs");
      rmSync(tmp, { recursive: true, force: true });
    }
  });

  test("a block larger than the budget is refused up front", async () => {
    await expect(runBench(options({ bs: [65536], budget: 8, modes: ["bounce"] }))).rejects.toThrow("cannot hold one 64k bounce buffer");
  });

  test("the library's options are checked where the command line's are: counts, and a sector size only for a disk with a loop device", async () => {
    await expect(runBench(options({ repeat: 0 }))).rejects.toThrow("--repeat: 0 is not a count of 1 or more");
    await expect(runBench(options({ budget: 2.5 }))).rejects.toThrow("--budget: 2.5 is not a count of 1 or more");
    await expect(runBench(options({ diskKind: "tmpfs", sector: 4096 }))).rejects.toThrow("--sector applies to a --disk-kind with a loop device, not tmpfs");
    await expect(runBench(options({ sector: 512 }))).rejects.toThrow("not file");
  });
});

describe("the command", () => {
  test("--json carries the SPEC fields, who made it with what options, and each case's runs, spread and histogram", () => {
    const result = runCliIn(dir, "bench", "--json", "--size", "2m", "--op", "read,write", "--bs", "4k", "--mem-offset", "0,100", "--mode", "auto", "--ios", "50");
    expect(result.code).toBe(0);
    const doc = JSON.parse(result.stdout);
    expect(doc).toMatchObject({ tool: "bounce-bench", version: VERSION, schemaVersion: 3, command: "bench" });
    expect(Date.parse(doc.startedAt)).toBeGreaterThan(Date.now() - 60_000);
    // Everything a rerun needs, after defaults.
    expect(doc.options).toMatchObject({ ops: ["read", "write"], bs: [4096], memOffsets: [0, 100], modes: ["auto"], ios: 50, repeat: 5, rampSeconds: 0, budget: 2048, engine: "sync", rules: "kernel", guestBacking: "memfd", bouncePages: "same" });
    expect(doc.host).toMatchObject({ guestBacking: "memfd", bounceHugePages: false, guestHugePageBytes: 0, diskKind: "file" });
    expect(Object.keys(doc.host)).toEqual(expect.arrayContaining(["kernel", "cpu", "filesystem", "alignment"]));
    expect(doc.host.alignment.source).toBe("statx");
    expect(doc.results.length).toBe(4);
    for (const r of doc.results) {
      for (const key of ["op", "bs", "memOffset", "mode", "decision", "engine", "qd", "threads", "ios", "bytes", "seconds", "mibPerSec", "iops", "latencyUs", "bounce"]) {
        expect(r).toHaveProperty(key);
      }
      expect(Object.keys(r.latencyUs)).toEqual(["p50", "p90", "p99", "p999", "max", "mean", "stdev"]);
      expect(r.latencyUs.p50).toBeLessThanOrEqual(r.latencyUs.p90);
      expect(r.latencyUs.p999).toBeLessThanOrEqual(r.latencyUs.max);
      expect(Object.keys(r.bounce)).toEqual(expect.arrayContaining(["acquired", "waits", "waitNs", "peakPages", "copyNs", "copyGiBPerSec", "hugePageBytes"]));
      // --ios is per run; five runs (the default --repeat), each with its own figures.
      expect(r.repeats).toBe(5);
      expect(r.samples.map((sample: { ios: number }) => sample.ios)).toEqual([50, 50, 50, 50, 50]);
      expect(r.ios).toBe(250);
      const rates = r.samples.map((sample: { mibPerSec: number }) => sample.mibPerSec).sort((a: number, b: number) => a - b);
      expect([r.mibPerSecMin, r.mibPerSec, r.mibPerSecMax]).toEqual([rates[0], rates[2], rates[4]]);
      expect(r.cpuNsPerIoMin).toBeLessThanOrEqual(r.cpuNsPerIo);
      expect(r.cpuNsPerIo).toBeLessThanOrEqual(r.cpuNsPerIoMax);
      expect(r.iqr).not.toBeNull(); // from 4 runs
      // The histogram holds every IO of every run, in increasing buckets.
      expect(r.histogram.counts.reduce((a: number, b: number) => a + b, 0)).toBe(250);
      // The percentiles, recomputed from the histogram here: the bucket where the count reaches
      // ceil(p% of the IOs), its middle (its lower bound below 32 ns), at most the largest, in us.
      const maxNs = Math.round(r.latencyUs.max * 1000);
      for (const [key, p] of [["p50", 50], ["p90", 90], ["p99", 99], ["p999", 99.9]] as const) {
        const rank = Math.max(1, Math.ceil((p / 100) * 250));
        let seen = 0;
        const bucket = r.histogram.counts.findIndex((count: number) => (seen += count) >= rank);
        const [low, high] = [r.histogram.lowerNs[bucket], r.histogram.upperNs[bucket]];
        const middle = low < 32 ? low : (low + high) / 2;
        expect({ key, us: r.latencyUs[key] }).toEqual({ key, us: Math.round(Math.min(middle, maxNs)) / 1000 });
      }
      for (let i = 0; i < r.histogram.lowerNs.length; i++) expect(r.histogram.lowerNs[i]).toBeLessThan(r.histogram.upperNs[i]);
      expect(r.effectiveQd).toBeGreaterThan(0.5);
      expect(r.effectiveQd).toBeLessThanOrEqual(1);
      // Only bounced cases copy.
      expect(r.bounce.copyNs > 0).toBe(r.decision === "bounce");
      expect(r.bounce.copyGiBPerSec > 0).toBe(r.decision === "bounce");
    }
    // The machine's THP mode, read here independently: the bracketed word of the sysfs file.
    let thp: string | null = null;
    try {
      thp = /\[(\w+)\]/.exec(readFileSync("/sys/kernel/mm/transparent_hugepage/enabled", "utf8"))![1]!;
    } catch {
      // no THP in this kernel: null
    }
    expect(doc.host.transparentHugePages).toBe(thp);
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
    expect(result.stdout).toContain("guest memory memfd (shmem, 4 KiB pages)\nbounce buffers on 4 KiB pages (like the guest's)");
    expect(result.stdout).toContain("cross-process write locks OFF: a scratch disk no other process can reach");
    expect(result.stdout).toMatch(/op +bs +off +mode +decision +MiB\/s +±% +p99 us +CPU us\/IO +cores +Δ MiB\/s +Δ CPU\n/);
    // The bounced case at offset 100 against direct at 0, as a number with its noise judged.
    expect(result.stdout).toMatch(/read +4k +100 +auto +bounce .* \(?[+-]\d+%\)? +\(?[+-]\d+%\)?\n/);
    expect(result.stdout).toContain("what bouncing costs, like for like");
    for (const line of result.stdout.split("\n")) expect(line.length).toBeLessThanOrEqual(110);
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
    const result = runCliIn(dir, "bench", "--json", "--size", "2m", "--op", "read", "--bs", "4k", "--mem-offset", "100", "--mode", "direct,auto", "--ios", "20", "--align", "4096", "--repeat", "1");
    expect(result.code).toBe(0);
    const [direct, auto] = JSON.parse(result.stdout).results;
    expect(direct.error.code).toBe("EINVAL");
    expect(auto).toMatchObject({ decision: "bounce", ios: 20, error: null });
  });

  const fio = Bun.which("fio");
  test.skipIf(fio === null)(`--emit-fio jobs run under fio: bounced, widened, read-modify-write, buffered and refused cases${fio === null ? " (skipped: fio is not installed)" : ""}`, () => {
    const job = join(dir, "runnable.fio");
    const disk = join(dir, "fio-disk.bin");
    writeFileSync(disk, randomBytes(2 ** 22, 17));
    const result = runCliIn(dir, "bench", "--disk", disk, "--force", "--op", "read,write", "--bs", "512,4k", "--mem-offset", "0,8", "--mode", "auto,direct,buffered", "--align", "4096", "--ios", "8", "--repeat", "1", "--emit-fio", job);
    expect(result.code).toBe(0);
    const text = readFileSync(job, "utf8");
    expect(text).toContain("ioengine=pvsync");
    for (const said of ["fio cannot copy", "read-modify-write", "widened this case to 4096-byte blocks", "refused it (EINVAL)"]) expect(text).toContain(said);
    const jobs = text.split("\n").filter((line) => /^\[case-/.test(line)).length;
    expect(jobs).toBeGreaterThan(8);
    const run = spawnSync(fio!, [job, "--output-format=json"], { cwd: dir, encoding: "utf8" });
    expect({ status: run.status, stderr: run.stderr }).toMatchObject({ status: 0 });
    const report = JSON.parse(run.stdout.slice(run.stdout.indexOf("{")));
    expect(report.jobs).toHaveLength(jobs);
    for (const j of report.jobs) expect({ job: j.jobname, error: j.error }).toEqual({ job: j.jobname, error: 0 });
  }, 60_000);

  test("--emit-fio writes the equivalent fio job, and never replaces a file without --force", () => {
    const job = join(dir, "cases.fio");
    const result = runCliIn(dir, "bench", "--size", "2m", "--op", "randread", "--bs", "64k", "--mem-offset", "512", "--mode", "auto", "--engine", "uring", "--qd", "4", "--ios", "10", "--emit-fio", job);
    expect(result.code).toBe(0);
    const text = readFileSync(job, "utf8");
    for (const line of ["ioengine=io_uring", "iodepth=4", "rw=randread", "bs=65536", "direct=1", "iomem_align=512", "number_ios=10"]) expect(text).toContain(line);
    const again = runCliIn(dir, "bench", "--size", "2m", "--op", "read", "--bs", "4k", "--ios", "10", "--emit-fio", job);
    expect(again.code).toBe(2);
    expect(readFileSync(job, "utf8")).toBe(text);
    // io_uring's options, by fio's names; what fio cannot do alike is said in a comment.
    const uringJob = join(dir, "uring.fio");
    expect(runCliIn(dir, "bench", "--size", "2m", "--op", "randread", "--bs", "4k", "--engine", "uring", "--qd", "4", "--registerfiles", "--fixedbufs", "bounce", "--sqthread_poll", "--ios", "10", "--emit-fio", uringJob).code).toBe(0);
    const uring = readFileSync(uringJob, "utf8").split("\n");
    for (const line of ["registerfiles=1", "fixedbufs=1", "sqthread_poll=1", "nonvectored=0"]) expect(uring).toContain(line);
    expect(uring.some((line) => line.startsWith("; --fixedbufs bounce: fio has no bounce buffers"))).toBe(true);
    // fio sends one buffer as READ by default: the job says which bounce-bench did.
    expect(runCliIn(dir, "bench", "--size", "2m", "--op", "randread", "--bs", "4k", "--engine", "uring", "--qd", "4", "--nonvectored", "--ios", "10", "--emit-fio", uringJob, "--force").code).toBe(0);
    expect(readFileSync(uringJob, "utf8").split("\n")).toContain("nonvectored=1");
  });

  test("bad values are exit 2 with one line", () => {
    const uringMisuse = [["--fixedbufs"], ["--engine", "uring", "--fixedbufs", "nope"], ["--engine", "null", "--fixedbufs", "bounce"], ["--engine", "uring", "--sqthread_poll", "--defer-taskrun"], ["--engine", "sync", "--nonvectored"]];
    for (const args of [["--bs", "1000"], ["--mem-offset", "5000"], ["--op", "readwrite"], ["--qd", "4"], ["--runtime", "-1"], ["--runtime", "1", "--ios", "5"], ["--threads", "0"], ...uringMisuse]) {
      const result = runCliIn(dir, "bench", "--size", "1m", ...args);
      expect(result.code).toBe(2);
      expect(result.stderr).toMatch(/^bounce-bench: [^\n]+\n$/);
    }
  });

  for (const [signal, code] of [["SIGINT", 130], ["SIGHUP", 129], ["SIGUSR1", 138]] as const) {
  test(`${signal === "SIGINT" ? "Ctrl-C" : signal} prints the partial results, removes the scratch files and exits ${code}`, async () => {
    const tmp = join(dir, `tmp-for-${signal}`);
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
    child.kill(signal);
    const exited = await child.exited;
    const stdout = await new Response(child.stdout).text();
    const stderr = await new Response(child.stderr).text();
    expect(exited).toBe(code);
    expect(stdout).toContain("interrupted");
    expect(stderr).toContain(`interrupted by ${signal}`);
    expect(readdirSync(tmp)).toEqual([]);
    expect(existsSync(tmp)).toBe(true);
  });
  }
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

describe("bench performs exactly the plan it reports", () => {
  test("widened reads and read-modify-writes, IO by IO verified, queued and from several slots at once", async () => {
    for (const engine of ["sync", "uring"] as const) {
      const report = await runBench(
        options({
          engine,
          qd: engine === "uring" ? 8 : 1,
          alignOverride: 4096,
          bs: [512, 1536, 8192],
          memOffsets: [0, 8],
          modes: ["auto"],
          ops: ["write", "randwrite", "read", "randread"],
          ios: 96,
          verify: true,
          force: true,
        }),
      );
      for (const result of report.results) {
        const label = `${engine} ${result.op} ${result.bs} +${result.memOffset}`;
        expect({ label, error: result.error }).toEqual({ label, error: null });
        expect({ label, ios: result.ios }).toEqual({ label, ios: 96 });
        const widened = result.bs % 4096 !== 0;
        expect({ label, decision: result.decision }).toEqual({ label, decision: widened ? (result.op.endsWith("write") ? "rmw" : "bounce") : result.memOffset === 0 ? "direct" : "bounce" });
        if (widened) expect(result.diskBytesPerIo).toBeGreaterThan(result.bs); // the padding moved too
      }
    }
  }, 120_000);

  test("a scatter-gather shape (--seg) at qd 8, IO by IO verified: partly bounced, read-modify-written, split", async () => {
    const shapes = [
      ["0@512+3584", "2@0+512"], // bounced around a descriptor boundary inside a 4 KiB block
      ["1@8+1000", "2-3", "0@100+50"], // unaligned everywhere: widened, rmw on writes
      ["0-2050/2"], // more iovecs than IOV_MAX: split
    ];
    for (const seg of shapes) {
      const shape = seg.map((text) => parseSegment(text, "--seg"));
      const report = await runBench(options({ engine: "uring", qd: 8, shape, alignOverride: 4096, ops: ["write", "randwrite", "read"], ios: 48, verify: true, force: true, size: 64 * 2 ** 20 }));
      for (const result of report.results) {
        expect({ seg, op: result.op, error: result.error, ios: result.ios }).toEqual({ seg, op: result.op, error: null, ios: 48 });
        expect(result.shape).not.toBeNull();
      }
    }
  }, 120_000);

  test("--fixedbufs with scatter-gather shapes: a call inside one registered buffer goes fixed (READV_FIXED where the kernel has it); one mixing guest pages and bounce memory cannot, and is counted", async () => {
    const readvFixed = vectoredFixedBuffers();
    const run = async (seg: string[], op: "read" | "write") => {
      const shape = seg.map((text) => parseSegment(text, "--seg"));
      const [result] = (await runBench(options({ engine: "uring", qd: 8, shape, alignOverride: 4096, ops: [op], ios: 48, verify: true, force: true, uring: { fixedBuffers: true } }))).results;
      expect({ seg, error: result!.error, ios: result!.ios }).toEqual({ seg, error: null, ios: 48 });
      return result!.fixedBuffers;
    };
    // Direct, three iovecs in guest memory.
    expect(await run(["3", "0-1", "7@512+1024"], "read")).toEqual(readvFixed ? { calls: 48, notFixed: 0 } : { calls: 0, notFixed: 48 });
    // Bounced in part: one call of guest pages and bounce memory.
    expect(await run(["0@512+3584", "2@0+512", "4-5"], "write")).toEqual({ calls: 0, notFixed: 48 });
    // Bounced whole: the bounce memory alone.
    expect(await run(["1@8+1000", "2-3"], "read")).toEqual({ calls: 48, notFixed: 0 });
  }, 120_000);

  test("--nonvectored: calls of one iovec go as READ/WRITE, bytes verified IO by IO; a call of several goes as READV/WRITEV, counted; with --fixedbufs, fixed calls are in neither", async () => {
    const run = async (seg: string[] | null, op: "read" | "randwrite", uring: { nonvectored: true; fixedBuffers?: true }) => {
      const shape = seg?.map((text) => parseSegment(text, "--seg"));
      const [result] = (await runBench(options({ engine: "uring", qd: 8, ...(shape ? { shape } : { bs: [65536] }), alignOverride: 4096, ops: [op], ios: 48, verify: true, force: true, uring }))).results;
      expect({ seg, op, error: result!.error, ios: result!.ios }).toEqual({ seg, op, error: null, ios: 48 });
      return { nonvectored: result!.nonvectored, fixed: result!.fixedBuffers };
    };
    expect(await run(null, "randwrite", { nonvectored: true })).toEqual({ nonvectored: { calls: 48, vectored: 0 }, fixed: null });
    expect(await run(null, "read", { nonvectored: true })).toEqual({ nonvectored: { calls: 48, vectored: 0 }, fixed: null });
    expect(await run(["3", "0-1"], "read", { nonvectored: true })).toEqual({ nonvectored: { calls: 0, vectored: 48 }, fixed: null });
    // Bounced whole into one buffer: one iovec. Under --fixedbufs it goes fixed, so in neither count.
    expect(await run(["1@8+1000", "2-3"], "read", { nonvectored: true })).toEqual({ nonvectored: { calls: 48, vectored: 0 }, fixed: null });
    expect(await run(["1@8+1000", "2-3"], "read", { nonvectored: true, fixedBuffers: true })).toEqual({ nonvectored: { calls: 0, vectored: 0 }, fixed: { calls: 48, notFixed: 0 } });
  }, 120_000);

  test("--fixedbufs where the kernel will not register the guest memory (a file on a disk filesystem): refused before any IO, with why", async () => {
    let cases = 0;
    const refused = runBench(options({ engine: "uring", qd: 4, guestBacking: "file", uring: { fixedBuffers: true }, onCase: () => cases++ }));
    await expect(refused).rejects.toMatchObject({ code: "RING_FEATURE", message: expect.stringContaining("will not pin this memory") });
    expect(cases).toBe(0);
  });

  test("--fixedbufs bounce: the bounce memory alone registered (guest memory may then be a file): bounced calls fixed, direct ones not, and said", async () => {
    const report = await runBench(
      options({ engine: "uring", qd: 8, guestBacking: "file", uring: { fixedBuffers: true, registeredMemory: "bounce" }, modes: ["direct", "bounce"], ops: ["randread", "randwrite"], ios: 64, verify: true, force: true }),
    );
    for (const result of report.results) {
      expect({ op: result.op, mode: result.mode, error: result.error, fixed: result.fixedBuffers }).toEqual({
        op: result.op,
        mode: result.mode,
        error: null,
        fixed: result.mode === "bounce" ? { calls: 64, notFixed: 0 } : { calls: 0, notFixed: 64 },
      });
    }
  });

  test("a simulated disk (--align) judges a call by how it reaches the kernel: fixed buffers by the kernel's fixed-buffer checks, iovecs by its vectored ones", async () => {
    // A 512-byte read at memory offset 1, inside one page, sent as it is: what a kernel takes of
    // it differs between the two methods on some disks (the ext4 file under /tmp here).
    const diskPath = join(dir, "simulated-fixed.bin");
    writeFileSync(diskPath, randomBytes(2 ** 20, 11));
    const checks = (() => {
      using disk = Disk.open(diskPath, { write: false, direct: false });
      return { vectored: disk.kernelChecksFor("vectored").onePageAnyAddress, fixed: disk.kernelChecksFor("fixed").onePageAnyAddress };
    })();
    const outcome = async (uring: BenchOptions["uring"]) => {
      const [result] = (await runBench(options({ engine: "uring", qd: 1, diskPath, alignOverride: 512, bs: [512], memOffsets: [1], modes: ["direct"], ops: ["read"], ios: 4, uring }))).results;
      return result!.error === null ? "taken" : result!.error.message.includes("EINVAL") ? "refused" : result!.error.message;
    };
    const expected = (takes: boolean) => (takes ? "taken" : "refused");
    expect({
      plain: await outcome(undefined),
      fixed: await outcome({ fixedBuffers: true }),
      bounceRegistered: await outcome({ fixedBuffers: true, registeredMemory: "bounce" }),
    }).toEqual({ plain: expected(checks.vectored), fixed: expected(checks.fixed), bounceRegistered: expected(checks.vectored) });
  });

  // The same request through `io --json` and through a bench case: the same calls, disk bytes and copies per IO.
  const kinds: { kind: string; op: "read" | "write"; bs: number; memOffset: number; mode: "auto" | "direct"; align?: number; decision: string; seg?: string[] }[] = [
    { kind: "direct", op: "write", bs: 65536, memOffset: 0, mode: "auto", decision: "direct" },
    { kind: "bounce", op: "read", bs: 65536, memOffset: 8, mode: "auto", decision: "bounce" },
    { kind: "bounced write", op: "write", bs: 4096, memOffset: 100, mode: "auto", decision: "bounce" },
    { kind: "widened bounce read", op: "read", bs: 512, memOffset: 0, mode: "auto", align: 4096, decision: "bounce" },
    { kind: "rmw", op: "write", bs: 512, memOffset: 0, mode: "auto", align: 4096, decision: "rmw" },
    { kind: "rmw over two blocks", op: "write", bs: 6144, memOffset: 512, mode: "auto", align: 4096, decision: "rmw" },
    { kind: "partial scatter-gather bounce", op: "write", bs: 0, memOffset: 0, mode: "auto", align: 4096, decision: "bounce", seg: ["0@512+3584", "2@0+512", "4-5"] },
    { kind: "scatter-gather read, direct", op: "read", bs: 0, memOffset: 0, mode: "auto", decision: "direct", seg: ["3", "0-1", "7@512+1024"] },
    { kind: "split beyond IOV_MAX", op: "write", bs: 0, memOffset: 0, mode: "auto", decision: "split", seg: ["0-2050/2"] },
  ];
  for (const { kind, op, bs, memOffset, mode, align, decision, seg } of kinds) {
    test(`per-IO counts equal io's: ${kind}`, async () => {
      const pages = Math.ceil((memOffset + bs) / 4096);
      const guest = join(dir, `counts-${kind.replace(/ /g, "-")}.img`);
      const disk = join(dir, `counts-${kind.replace(/ /g, "-")}.bin`);
      writeFileSync(guest, randomBytes(2100 * 4096, 1));
      writeFileSync(disk, randomBytes(16 * 2 ** 20, 2));
      const alignArgs = align === undefined ? [] : ["--align", String(align)];
      const request = seg === undefined ? ["--gpns", `0-${pages - 1}`, "--offset", String(memOffset), "--len", String(bs)] : seg.flatMap((text) => ["--seg", text]);
      const io = runCliIn(dir, "io", "--guest", guest, "--disk", disk, "--op", op, ...request, "--at", "0", "--mode", mode, ...alignArgs, "--json");
      expect(io.code).toBe(0);
      const single = JSON.parse(io.stdout);
      expect(single.decision).toBe(decision);
      const shape = seg?.map((text) => parseSegment(text, "--seg"));
      const report = await runBench(options({ ops: [op], bs: [bs], memOffsets: [memOffset], shape, modes: [mode], alignOverride: align, ios: 16, guestPath: guest, diskPath: disk, force: true }));
      const [result] = report.results;
      expect(result!.error).toBeNull();
      expect(result!.decision).toBe(decision);
      expect({ calls: result!.callsPerIo, diskBytes: result!.diskBytesPerIo, copied: result!.copiedBytesPerIo }).toEqual({
        calls: single.calls,
        diskBytes: single.diskBytes,
        copied: single.copiedBytes,
      });
    });
  }

  test("a simulated disk's refusal: EINVAL before any call, in bench as in io", async () => {
    const report = await runBench(options({ ops: ["write"], bs: [4096], memOffsets: [8], modes: ["direct"], alignOverride: 4096, ios: 4, force: true }));
    const [result] = report.results;
    expect(result!.error?.code).toBe("EINVAL");
    expect(result!.error?.message).toContain("simulated disk (--align): 4096-byte blocks, memory alignment 512");
    expect(result!.ios).toBe(0);
    expect(result!.callsPerIo).toBe(0);
  });

  const strace = Bun.which("strace");
  test.skipIf(strace === null)(`the kernel sees the plan's calls: strace counts preadv and pwritev of bench --align 4096 --bs 512${strace === null ? " (skipped: strace is not installed)" : ""}`, () => {
    const counts = join(dir, "strace.txt");
    const run = Bun.spawnSync(
      [strace!, "-f", "-qq", "-c", "-o", counts, "-e", "trace=preadv,pwritev,pwritev2", process.execPath, join(ROOT, "cli/bounce-bench.ts"), "bench", "--align", "4096", "--bs", "512", "--op", "read,write", "--ios", "400", "--repeat", "1", "--mem-offset", "0", "--mode", "auto", "--json"],
      { cwd: dir },
    );
    expect(run.exitCode).toBe(0);
    const doc = JSON.parse(run.stdout.toString());
    const results = doc.results;
    expect(results.map((r: { decision: string }) => r.decision)).toEqual(["bounce", "rmw"]);
    // strace -c rows: % time, seconds, usecs/call, calls, [errors], syscall.
    const rows = readFileSync(counts, "utf8").split("\n").map((line) => line.trim().split(/\s+/));
    const calls = (name: string) => Number(rows.find((row) => row[row.length - 1] === name)?.[3] ?? 0);
    // 400 widened reads; 400 writes, each reading its block first.
    // Besides the plan's calls, the direct reads that measured the real disk's checks, which the
    // simulated disk answers by (host.kernelChecks.reads; at least the one aligned read).
    const measuring = doc.host.kernelChecks.reads;
    expect(measuring).toBeGreaterThan(0);
    expect({ preadv: calls("preadv"), pwritev: calls("pwritev") + calls("pwritev2") }).toEqual({ preadv: 800 + measuring, pwritev: 400 });
  });

  test.skipIf(strace === null)(`--sqthread_poll: the kernel's thread takes the submissions, so io_uring_enter is called only to wait, fewer times than there are IOs${strace === null ? " (skipped: strace is not installed)" : ""}`, () => {
    const enters = (...flags: string[]) => {
      const counts = join(dir, `strace-uring${flags.join("")}.txt`);
      const run = Bun.spawnSync(
        [strace!, "-f", "-qq", "-c", "-o", counts, "-e", "trace=io_uring_enter", process.execPath, join(ROOT, "cli/bounce-bench.ts"), "bench", "--engine", "uring", "--qd", "8", ...flags, "--bs", "4k", "--op", "randread", "--ios", "2000", "--repeat", "1", "--mem-offset", "0", "--mode", "auto", "--json"],
        { cwd: dir },
      );
      expect(run.exitCode).toBe(0);
      const doc = JSON.parse(run.stdout.toString());
      expect(doc.results[0].ios).toBe(2000);
      const rows = readFileSync(counts, "utf8").split("\n").map((line) => line.trim().split(/\s+/));
      return { calls: Number(rows.find((row) => row[row.length - 1] === "io_uring_enter")?.[3] ?? 0), options: doc.options.uring ?? null };
    };
    // Without it, one call per submission (and more to wait); with it, none to submit.
    const plain = enters();
    expect(plain.options).toBeNull();
    expect(plain.calls).toBeGreaterThanOrEqual(2000);
    const polled = enters("--sqthread_poll");
    expect(polled.options).toEqual({ sqpoll: true });
    expect(polled.calls).toBeLessThan(2000);
  });

  test.skipIf(strace === null)(`--ramp warms up on the measured run's own ring: as many rings are set up with a warm-up as without${strace === null ? " (skipped: strace is not installed)" : ""}`, () => {
    const setups = (ramp: string) => {
      const counts = join(dir, `strace-setup-${ramp}.txt`);
      const run = Bun.spawnSync(
        [strace!, "-f", "-qq", "-c", "-o", counts, "-e", "trace=io_uring_setup", process.execPath, join(ROOT, "cli/bounce-bench.ts"), "bench", "--engine", "uring", "--qd", "4", "--ramp", ramp, "--bs", "4k", "--op", "randread", "--ios", "200", "--repeat", "2", "--mem-offset", "0", "--mode", "auto", "--json"],
        { cwd: dir },
      );
      expect(run.exitCode).toBe(0);
      expect(JSON.parse(run.stdout.toString()).results[0].ios).toBe(400); // two runs of 200
      const rows = readFileSync(counts, "utf8").split("\n").map((line) => line.trim().split(/\s+/));
      return Number(rows.find((row) => row[row.length - 1] === "io_uring_setup")?.[3] ?? 0);
    };
    const cold = setups("0");
    expect(cold).toBeGreaterThanOrEqual(2); // a ring per run, besides any the host checks make
    expect(setups("50ms")).toBe(cold);
  });
});

test.skipIf(Bun.which("strace") === null)(`the disk's path is opened once for a whole run, by every thread together${Bun.which("strace") === null ? " (skipped: strace is not installed)" : ""}`, () => {
  const disk = join(dir, "opened-once.bin");
  writeFileSync(disk, randomBytes(8 * 2 ** 20, 9));
  const trace = join(dir, "opens.txt");
  const run = Bun.spawnSync(
    [Bun.which("strace")!, "-f", "-qq", "-o", trace, "-e", "trace=open,openat,openat2", process.execPath, join(ROOT, "cli/bounce-bench.ts"), "bench", "--disk", disk, "--force", "--op", "read,write", "--bs", "4k", "--mem-offset", "0,8", "--mode", "auto,buffered", "--threads", "2", "--ios", "40"],
    { cwd: dir },
  );
  expect(run.exitCode).toBe(0);
  const opens = readFileSync(trace, "utf8").split("\n").filter((line) => line.includes(`"${disk}"`));
  expect(opens).toHaveLength(1); // 8 cases x 2 threads, alignment discovery and the probe: one open
});

/** A job for `runJob` on this thread (as a bench Worker runs it): over the first MiB of `disk`, 4 IOs of 4 KiB by default. */
function jobSpec(guest: string, disk: string, opened: Disk, tracker: { shared: SharedArrayBuffer }, spec: Partial<JobSpec>): JobSpec {
  return {
    guest: { path: guest },
    diskPath: disk,
    disk: opened.shared(),
    op: "read",
    bs: 4096,
    memOffset: 0,
    mode: "auto",
    rules: "kernel",
    engine: "sync",
    qd: 1,
    thread: 0,
    trackerShared: tracker.shared,
    regionStart: 0,
    regionBytes: 2 ** 20,
    firstGpn: 0,
    runtimeNs: null,
    ios: 4,
    hugePages: false,
    seed: 1,
    stop: new Int32Array(new SharedArrayBuffer(4)),
    ...spec,
  };
}

/** A job's files in the test directory: a guest image of zeros (64 pages), and a disk (1 MiB, random with `seed`, else zeros). */
function jobFiles(name: string, seed?: number, sizes = { guest: 64 * 4096, disk: 2 ** 20 }): { guest: string; disk: string } {
  const guest = join(dir, `${name}-guest.img`);
  const disk = join(dir, `${name}-disk.bin`);
  writeFileSync(guest, new Uint8Array(sizes.guest));
  writeFileSync(disk, seed === undefined ? new Uint8Array(sizes.disk) : randomBytes(sizes.disk, seed));
  return { guest, disk };
}

describe("where a job's IOs land in guest memory", () => {
  // The ladder in measure/run.ts gives fio the same file as its buffers (fio puts buffer i at
  // i x bs from the start of its mapping), so that both tools read into the same pages.
  test("queue slot i's reads land at i x bs from the guest's start, and nowhere past the last slot", async () => {
    const { guest, disk } = jobFiles("slots", 29, { guest: 4 * 2 ** 20, disk: 4 * 2 ** 20 });
    const bs = 65536;
    const qd = 4;
    const report = await runBench(options({ guestPath: guest, diskPath: disk, size: 4 * 2 ** 20, engine: "uring", qd, ops: ["randread"], bs: [bs], ios: 64, force: true }));
    expect(report.results.map((result) => result.error ?? null)).toEqual([null]);
    const bytes = fileBytes(guest);
    const pageWritten = (page: number) => bytes.subarray(page * 4096, (page + 1) * 4096).some((byte) => byte !== 0);
    const pages = bytes.length / 4096;
    const written = Array.from({ length: pages }, (_, page) => page).filter(pageWritten);
    expect(written).toEqual(Array.from({ length: (qd * bs) / 4096 }, (_, page) => page));
  });
});

describe("how each ring was entered", () => {
  test("by its registered index with uring, in the notes and each case's JSON; null with sync", () => {
    const run = (...flags: string[]) => runCliIn(dir, "bench", ...flags, "--ios", "40", "--bs", "4k", "--op", "randread", "--mem-offset", "0", "--mode", "auto", "--repeat", "2");
    const uring = run("--engine", "uring", "--qd", "4", "--json");
    expect(uring.code).toBe(0);
    expect(JSON.parse(uring.stdout).results.map((r: { registeredRing: boolean | null }) => r.registeredRing)).toEqual([true]);
    expect(run("--engine", "uring", "--qd", "4").stdout.replace(/\s+/g, " ")).toContain("every ring was entered by its index among its thread's registered rings (IORING_REGISTER_RING_FDS)");
    const sync = run("--engine", "sync", "--json");
    expect(JSON.parse(sync.stdout).results.map((r: { registeredRing: boolean | null }) => r.registeredRing)).toEqual([null]);
    expect(run("--engine", "sync").stdout).not.toContain("registered rings");
  });

  test("by its descriptor where the thread's 16 registered rings are taken, and the job says so: its IOs verified all the same", async () => {
    const { runJob } = await import("../src/bench/job");
    const { BounceBufferTracker } = await import("../src/bounce/bounce-tracker");
    const { IoUring } = await import("../src/native");
    const { guest, disk } = jobFiles("ring", 21);
    const tracker = new BounceBufferTracker(64, 1);
    using opened = Disk.open(disk, { write: false, direct: true });
    const job = () => runJob(jobSpec(guest, disk, opened, tracker, { op: "randread", engine: "uring", qd: 4, ios: 32, verify: true }));
    const free = await job();
    expect({ error: free.error, ios: free.ios, registeredRing: free.registeredRing }).toEqual({ error: null, ios: 32, registeredRing: true });
    const held = Array.from({ length: 16 }, () => new IoUring(2)); // this thread's every slot
    try {
      expect(held.every((ring) => ring.registeredRing)).toBe(true);
      const taken = await job();
      expect({ error: taken.error, ios: taken.ios, registeredRing: taken.registeredRing }).toEqual({ error: null, ios: 32, registeredRing: false });
    } finally {
      for (const ring of held) ring.close();
    }
  });
});

describe("bench's page acquisition", () => {
  test("a request larger than the thread's whole budget fails at once, naming both, instead of waiting forever", async () => {
    const { runJob } = await import("../src/bench/job");
    const { BounceBufferTracker } = await import("../src/bounce/bounce-tracker");
    const { guest, disk } = jobFiles("budget");
    const tracker = new BounceBufferTracker(4, 1);
    using opened = Disk.open(disk, { write: false, direct: true });
    const result = await runJob(jobSpec(guest, disk, opened, tracker, { bs: 65536, memOffset: 8 }));
    expect(result.error?.code).toBe("BUDGET_EXCEEDED");
    expect(result.error?.message).toContain("per-thread budget of 4 pages");
    expect(result.ios).toBe(0);
    expect(tracker.stats(0).inUsePages).toBe(0);
  });

  test("a job whose pages someone else holds waits for them asleep: the holder, a timer on the job's own thread, gets to let go, and the IOs complete", async () => {
    const { runJob } = await import("../src/bench/job");
    const { BounceBufferTracker } = await import("../src/bounce/bounce-tracker");
    const { guest, disk } = jobFiles("asleep", 23);
    const tracker = new BounceBufferTracker(4, 1);
    using opened = Disk.open(disk, { write: false, direct: true });
    // The job's thread's whole budget, held here: its first bounced IO must wait. A job that
    // polled instead of awaiting would never let this thread run the timer, and hang.
    const held = await tracker.acquire(4 * 4096, 0);
    setTimeout(() => held.release(), 20);
    const result = await runJob(jobSpec(guest, disk, opened, tracker, { mode: "bounce", ios: 8, verify: true }));
    expect({ error: result.error, ios: result.ios }).toEqual({ error: null, ios: 8 });
    expect(tracker.stats(0).waits).toBeGreaterThan(0);
    expect(tracker.stats(0).inUsePages).toBe(0);
  });
});

describe("bench --seg on the command line", () => {
  test("the copy rate is the bytes copied over the copy time: auto copies one segment of two, bounce both", () => {
    const run = runCliIn(dir, "bench", "--seg", "0@0+4096", "--seg", "1-2@8+4096", "--op", "read", "--mode", "auto,bounce", "--ios", "2000", "--repeat", "1", "--json");
    expect(run.code).toBe(0);
    const results = JSON.parse(run.stdout).results as { mode: string; ios: number; copiedBytesPerIo: number; bounce: { copyNs: number; copyGiBPerSec: number } }[];
    expect(results.map((r) => [r.mode, r.copiedBytesPerIo])).toEqual([["auto", 4096], ["bounce", 8192]]);
    for (const r of results) {
      const expected = (r.copiedBytesPerIo * r.ios) / 2 ** 30 / (r.bounce.copyNs / 1e9);
      expect(Math.abs(r.bounce.copyGiBPerSec - expected)).toBeLessThanOrEqual(0.005 + 1e-9);
    }
  });

  test("runs the shape and says so; --seg with --bs or --mem-offset is exit 2 and nothing runs", () => {
    const ok = runCliIn(dir, "bench", "--seg", "0@512+3584", "--seg", "2@0+512", "--align", "4096", "--op", "write", "--ios", "20", "--repeat", "1", "--mode", "auto", "--json");
    expect(ok.code).toBe(0);
    const [result] = JSON.parse(ok.stdout).results;
    expect(result).toMatchObject({ bs: 4096, shape: "0@512+3584 2@0+512", decision: "bounce", ios: 20, callsPerIo: 1, copiedBytesPerIo: 4096 });
    for (const extra of [["--bs", "4k"], ["--mem-offset", "8"]]) {
      const bad = runCliIn(dir, "bench", "--seg", "0", ...extra, "--ios", "20");
      expect(bad.code).toBe(2);
      expect(bad.stderr).toContain("--seg gives the request's shape");
      expect(bad.stderr.trim().split("\n")).toHaveLength(1);
    }
    expect(runCliIn(dir, "bench", "--seg", "0@4000+200", "--ios", "20").code).toBe(2); // does not fit its one page
  });
});

describe("bench on a real disk kind it makes (root only)", () => {
  const unavailable = scratchDiskUnavailable("loop");
  const why = unavailable === null ? "" : ` (skipped: disk kind loop ${unavailable})`;
  test.skipIf(unavailable !== null)(`--disk-kind loop --sector 4096: a real 4Kn disk, planned by the kernel's rule, torn down afterwards${why}`, () => {
    // The runs' scratch goes in a directory of this test's own, so that what is left is judged
    // by its own resources, not the machine's list (other runs may share the machine).
    const tmp = join(dir, "tmp-loop-4096");
    mkdirSync(tmp);
    const inTmp = (...args: string[]) => {
      const run = spawnSync(process.execPath, [join(ROOT, "cli/bounce-bench.ts"), ...args], { cwd: dir, env: { ...process.env, TMPDIR: tmp }, encoding: "utf8" });
      return { code: run.status, stdout: run.stdout };
    };
    const args = ["bench", "--disk-kind", "loop", "--sector", "4096", "--size", "16M", "--bs", "64k", "--mem-offset", "0,512", "--op", "write", "--mode", "auto", "--ios", "40", "--json"];
    const kernel = inTmp(...args);
    expect(kernel.code).toBe(0);
    const doc = JSON.parse(kernel.stdout);
    expect(doc.host).toMatchObject({ diskKind: "loop", sector: 4096, scratch: true, alignment: { memAlign: 512, offsetAlign: 4096, source: "statx", mem: 512, offset: 4096 } });
    expect(doc.host.disk).toStartWith("/dev/loop");
    expect(doc.results.map((r: { memOffset: number; decision: string }) => [r.memOffset, r.decision])).toEqual([
      [0, "direct"],
      [512, "direct"],
    ]);
    const seed = JSON.parse(inTmp(...args, "--rules", "seed").stdout);
    expect(seed.results.map((r: { decision: string }) => r.decision)).toEqual(["direct", "bounce"]);
    // Nothing made is left: no loop device over a file of its scratch, no mount, no directory.
    expect(spawnSync("losetup", ["--list", "--noheadings", "--output", "BACK-FILE"], { encoding: "utf8" }).stdout).not.toContain(tmp);
    expect(readFileSync("/proc/self/mountinfo", "utf8")).not.toContain(tmp);
    expect(readdirSync(tmp)).toEqual([]);
  });

  test("--disk-kind with --disk, or --sector on a file, is refused before anything is made", () => {
    expect(runCliIn(dir, "bench", "--disk-kind", "loop", "--disk", join(dir, "x.bin"), "--ios", "1").stderr).toContain("cannot be combined with --disk");
    const sector = runCliIn(dir, "bench", "--sector", "4096", "--ios", "1");
    expect([sector.code, sector.stderr.trim()]).toEqual([2, "bounce-bench: --sector applies to --disk-kind loop, ext4, xfs or btrfs, not file"]);
  });
});

const traceable = PageCacheTrace.unavailable() === null;
test.skipIf(!traceable)(`what a second signal runs removes everything the run made outside its memory: the scratch disk and the tracing mount${traceable ? "" : " (skipped: tracing needs root)"}`, async () => {
  const removers: (() => void)[] = [];
  let checked = false;
  let seen: { traces: number; left: string[] } | null = null;
  const tracesMounted = () => mountsUnder(tmpdir()).filter((point) => /\/bounce-bench-trace-[^/]+\/tracefs$/.test(point));
  const before = new Set(tracesMounted());
  const stop = new Int32Array(new SharedArrayBuffer(4));
  // After the removers the process would exit; here the run goes on without its trace, and may fail for it.
  await runBench(
    options({
      stop,
      ios: null,
      runtimeSeconds: 30,
      onScratch: (remove) => removers.push(remove),
      // The cases are running, with their tracing mounted: do what the second signal does, then stop.
      onProgress: () => {
        if (checked) return;
        checked = true;
        const ours = tracesMounted().filter((point) => !before.has(point));
        for (const remove of removers) remove();
        seen = { traces: ours.length, left: ours.flatMap((point) => [...mountsUnder(point), ...(existsSync(dirname(point)) ? [dirname(point)] : [])]) };
        Atomics.store(stop, 0, 1);
      },
    }),
  ).catch(() => null);
  expect(seen as unknown).toEqual({ traces: 1, left: [] });
}, 60_000);

const loopWhy = scratchDiskUnavailable("loop");
test.skipIf(loopWhy !== null)(`bench reads a block device named by path: its size from the device (BLKGETSIZE64), every IO verified${loopWhy === null ? "" : ` (skipped: ${loopWhy})`}`, async () => {
  const { ScratchDisk } = await import("../src/host/scratch-disks");
  using loop = ScratchDisk.make({ kind: "loop", sector: 512, size: 8 * 2 ** 20 });
  writeFileSync(loop.path, randomBytes(8 * 2 ** 20, 17));
  const before = fileBytes(loop.path);
  const run = runCliIn(dir, "bench", "--disk", loop.path, "--op", "read,randread", "--bs", "4k,64k", "--ios", "200", "--repeat", "1", "--json");
  expect(run.stderr).toBe("");
  expect(run.code).toBe(0);
  const doc = JSON.parse(run.stdout);
  expect(doc.host.diskSize).toBe(8 * 2 ** 20);
  expect(doc.results.length).toBeGreaterThanOrEqual(4);
  expect(doc.results.map((r: { ios: number; error: unknown }) => [r.ios, r.error])).toEqual(Array(doc.results.length).fill([200, null]));
  // The same through the library, each IO's bytes checked against the device by an independent read.
  const verified = await runBench(options({ diskPath: loop.path, ops: ["read", "randread"], bs: [4096, 65536], memOffsets: [0, 8], ios: 100, verify: true }));
  expect(verified.results.map((r) => [r.ios, r.error])).toEqual(Array(8).fill([100, null]));
  expect(fileBytes(loop.path)).toEqual(before); // read only
});
