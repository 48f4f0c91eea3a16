/**
 * Faults and interruptions: a disk that fills up mid-run (RLIMIT_FSIZE makes writes past a size
 * fail with EFBIG, no special device needed; SIGXFSZ is ignored), a disk truncated under a
 * running benchmark, scratch space that runs out, and SIGINT/SIGTERM. Each time bounce-bench
 * reports the errno and the IO, keeps what it measured, removes its scratch files and exits with
 * 1 (or the signal's code).
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { scratchDiskUnavailable } from "../src/host/scratch-disks";
import { join } from "node:path";
import { fileBytes, PAGE, randomBytes, ROOT, scratchDir } from "./helpers";

const dir = scratchDir("faults");
const CLI = [process.execPath, join(ROOT, "cli/bounce-bench.ts")];

/** A fresh, empty temporary directory for the child, to see what it leaves behind. */
function childTmp(name: string): string {
  const tmp = join(dir, `tmp-${name}`);
  mkdirSync(tmp);
  return tmp;
}

/** Runs the CLI with writes limited to `limitKiB` KiB per file, SIGXFSZ ignored. */
function withFileSizeLimit(limitKiB: number, tmp: string, ...args: string[]) {
  const script = `trap "" XFSZ; ulimit -f ${limitKiB}; exec "$0" "$@"`;
  const result = Bun.spawnSync(["bash", "-c", script, ...CLI, ...args], { cwd: dir, env: { ...process.env, TMPDIR: tmp } });
  return { code: result.exitCode, stdout: result.stdout.toString(), stderr: result.stderr.toString() };
}

type Child = ReturnType<typeof Bun.spawn>;

/** Resolves once a scratch directory of the run appears in `tmp` (it has started its work). */
function scratchMade(tmp: string): (child: Child) => Promise<void> {
  return async () => {
    for (let i = 0; i < 2400 && readdirSync(tmp).length === 0; i++) await Bun.sleep(25);
  };
}

/**
 * Resolves once the run has `path` open and has made `calls` more read or write system calls
 * since (/proc/PID/io's syscr + syscw, counted over the whole process).
 */
function callsOn(path: string, calls: number): (child: Child) => Promise<void> {
  const made = (pid: number) => {
    const io = readFileSync(`/proc/${pid}/io`, "utf8");
    return Number(/^syscr: (\d+)$/m.exec(io)![1]) + Number(/^syscw: (\d+)$/m.exec(io)![1]);
  };
  const opened = (pid: number) => readdirSync(`/proc/${pid}/fd`).some((fd) => {
    try {
      return readlinkSync(`/proc/${pid}/fd/${fd}`) === path;
    } catch {
      return false;
    }
  });
  return async (child) => {
    for (let i = 0; i < 2400 && !opened(child.pid); i++) await Bun.sleep(5);
    const from = made(child.pid);
    for (let i = 0; i < 2400 && made(child.pid) < from + calls; i++) await Bun.sleep(5);
  };
}

/**
 * Starts the CLI, waits until `ready` says its run is under way and then `afterMs` more, then
 * does `interfere`; resolves with its exit and output.
 */
async function interrupted(args: string[], tmp: string, afterMs: number, interfere: (child: Child) => void | Promise<void>, ready: (child: Child) => Promise<void> = scratchMade(tmp)) {
  const child = Bun.spawn([...CLI, ...args], { cwd: dir, env: { ...process.env, TMPDIR: tmp }, stdout: "pipe", stderr: "pipe" });
  await ready(child);
  await Bun.sleep(afterMs);
  await interfere(child);
  const code = await child.exited;
  return { code, stdout: await new Response(child.stdout as ReadableStream).text(), stderr: await new Response(child.stderr as ReadableStream).text() };
}

describe("a disk that fills up (EFBIG from RLIMIT_FSIZE)", () => {
  test("bench keeps what it measured, names the errno and the IO, exits 1", () => {
    const disk = join(dir, "full.bin");
    writeFileSync(disk, randomBytes(16 * 2 ** 20, 1));
    const tmp = childTmp("bench-efbig");
    const result = withFileSizeLimit(8192, tmp, "bench", "--json", "--disk", disk, "--force", "--op", "write,read", "--bs", "64k", "--mem-offset", "0", "--mode", "auto", "--runtime", "5");
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(`bounce-bench: pwritev(sync engine, 65536 bytes at offset 8388608 of ${disk}): EFBIG (File too large)\n`);
    const doc = JSON.parse(result.stdout);
    expect(doc.results).toHaveLength(1); // the sweep stopped at the failing case
    expect(doc.results[0]).toMatchObject({ op: "write", ios: 128, bytes: 8 * 2 ** 20, error: { code: "EFBIG" } });
    expect(readdirSync(tmp)).toEqual([]);
  });

  test("io reports EFBIG with the call and offset, exit 1", () => {
    const guest = join(dir, "guest.img");
    writeFileSync(guest, randomBytes(16 * PAGE, 2));
    const disk = join(dir, "full-io.bin");
    writeFileSync(disk, new Uint8Array(2 ** 20));
    const result = withFileSizeLimit(512, childTmp("io-efbig"), "io", "--guest", guest, "--disk", disk, "--op", "write", "--gpns", "0-1", "--at", "600k");
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(`bounce-bench: pwritev(sync engine, 8192 bytes at offset 614400 of ${disk}): EFBIG (File too large)\n`);
    expect(fileBytes(disk).every((b) => b === 0)).toBe(true);
  });

  test("a scenario whose scratch space runs out: exit 1, nothing left behind", () => {
    const tmp = childTmp("repro-efbig");
    const result = withFileSizeLimit(512, tmp, "repro", join(ROOT, "scenarios/more-than-1024-discontiguous-pages.json"));
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("EFBIG (File too large)");
    expect(readdirSync(tmp)).toEqual([]);
  });
});

describe("a disk truncated under a running benchmark", () => {
  test("the short read is reported as such, the measured part is kept, exit 1", async () => {
    const disk = join(dir, "shrinking.bin");
    writeFileSync(disk, randomBytes(16 * 2 ** 20, 3));
    // Truncated once the run has the disk open and has made 5000 more read or write calls (the
    // process's, Workers loading their code included: a few hundred): its IOs have begun.
    const result = await interrupted(
      ["bench", "--json", "--disk", disk, "--op", "read", "--bs", "4k", "--mem-offset", "0", "--mode", "auto", "--runtime", "20"],
      childTmp("truncate"),
      0,
      () => truncateSync(disk, 0),
      callsOn(disk, 5000),
    );
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("the disk ended (0 bytes transferred); was it truncated?");
    const [row] = JSON.parse(result.stdout).results;
    expect(row.error.code).toBe("SHORT_READ");
    expect(row.ios).toBeGreaterThan(0);
  });
});

describe("interruption", () => {
  test("SIGTERM during bench: partial results, scratch removed, exit 143", async () => {
    const tmp = childTmp("sigterm");
    const result = await interrupted(["bench", "--size", "8m", "--op", "read,write", "--bs", "4k", "--runtime", "20"], tmp, 1500, (child) => child.kill("SIGTERM"));
    expect(result.code).toBe(143);
    expect(result.stdout).toContain("(interrupted: the last case is partial, later cases did not run)");
    expect(result.stderr).toContain("interrupted by SIGTERM");
    expect(readdirSync(tmp)).toEqual([]);
  });

  test("SIGINT during repro: the steps so far, scratch removed, exit 130", async () => {
    const steps = Array.from({ length: 20000 }, (_, i) => ({ io: i % 2 === 0 ? "write" : "read", gpns: "0-1", offset: 100, len: 5000, at: (i % 64) * 1000 }));
    const file = join(dir, "long.json");
    writeFileSync(file, JSON.stringify({ name: "long", expected: "e", buggy: "b", guest: { size: "64k" }, disk: { size: "1M" }, steps }));
    const tmp = childTmp("sigint-repro");
    const result = await interrupted(["repro", file], tmp, 300, (child) => child.kill("SIGINT"));
    expect(result.code).toBe(130);
    expect(result.stdout).toContain("STOPPED  long");
    expect(result.stdout).toMatch(/\(stopped after \d+ steps\)/);
    expect(result.stderr).toContain("interrupted by SIGINT");
    expect(readdirSync(tmp)).toEqual([]);
  }, 60_000);

  // (What the second signal runs is held to removing everything in bench.test.ts, in-process:
  // here the two signals race the run's own quick stop, so this is the whole path, end to end.)
  test("a second SIGTERM while bench runs its cases exits at once, and still leaves no scratch disk, mount or tracing behind", async () => {
    const tmp = childTmp("second-sigterm-bench");
    const result = await interrupted(["bench", "--size", "8m", "--op", "read", "--bs", "4k", "--runtime", "30"], tmp, 0, async (child) => {
      // As root the cases run with a page-cache trace mounted in a scratch directory of its own: wait for it.
      if (process.getuid?.() === 0) for (let i = 0; i < 2400 && !readdirSync(tmp).some((name) => name.startsWith("bounce-bench-trace-")); i++) await Bun.sleep(25);
      child.kill("SIGTERM");
      child.kill("SIGTERM");
    });
    expect(result.code).toBe(143);
    expect(readdirSync(tmp)).toEqual([]);
    expect(readFileSync("/proc/self/mountinfo", "utf8")).not.toContain(tmp);
  }, 120_000);

  const xfs = process.getuid?.() === 0 && scratchDiskUnavailable("xfs") === null;
  test(`a second SIGTERM while a long fill runs still removes everything before exiting 143${xfs ? " (on an xfs scratch disk: its mount and loop device too)" : " (a file disk: xfs needs root and xfsprogs)"}`, async () => {
    const file = join(dir, "long-fill.json");
    writeFileSync(file, JSON.stringify({ name: "long fill", expected: "e", buggy: "b", guest: { size: "64k" }, disk: { size: "1G" }, steps: [{ fill: "disk", pattern: "random", seed: 1 }, { check: "disk-equals-pattern", at: 0, len: 2 ** 30, pattern: "random", seed: 1 }] }));
    const tmp = childTmp("second-sigterm-repro");
    const result = await interrupted(["repro", file, ...(xfs ? ["--disk-kind", "xfs"] : [])], tmp, 300, async (child) => {
      child.kill("SIGTERM");
      await Bun.sleep(10);
      child.kill("SIGTERM");
    });
    expect(result.code).toBe(143);
    expect(result.stdout).toContain("STOPPED  long fill");
    expect(result.stderr).toContain("interrupted by SIGTERM");
    expect(readdirSync(tmp)).toEqual([]);
    expect(readFileSync("/proc/self/mountinfo", "utf8")).not.toContain(tmp);
    expect(Bun.spawnSync(["losetup", "--list", "--noheadings", "--output", "BACK-FILE"]).stdout.toString()).not.toContain(tmp);
  }, 120_000);
});

describe("a signal while bench fills its scratch disk", () => {
  test("is honoured within a second: exit 130, nothing left behind", async () => {
    const tmp = childTmp("fill-signal");
    const child = Bun.spawn([process.execPath, join(ROOT, "cli/bounce-bench.ts"), "bench", "--size", "4G", "--ios", "10"], { env: { ...process.env, TMPDIR: tmp }, stderr: "pipe", stdout: "pipe" });
    // Wait until the scratch disk exists and is being filled.
    for (let waited = 0; readdirSync(tmp).length === 0 && waited < 10_000; waited += 20) await Bun.sleep(20);
    await Bun.sleep(200);
    const sent = performance.now();
    child.kill("SIGINT");
    const code = await child.exited;
    expect(performance.now() - sent).toBeLessThan(3000);
    expect(code).toBe(130);
    expect(await new Response(child.stderr).text()).toContain("interrupted by SIGINT before any case ran; scratch files removed");
    expect(readdirSync(tmp)).toEqual([]);
  });
});

describe("guest memory on a filesystem that runs out of space (a 2 MiB tmpfs, made here)", () => {
  const mountPoint = join(dir, "small-tmpfs");
  mkdirSync(mountPoint);
  const mounted = Bun.spawnSync(["mount", "-t", "tmpfs", "-o", "size=2m", "bounce-bench-test", mountPoint]).exitCode === 0;
  afterAll(() => {
    if (mounted) Bun.spawnSync(["umount", mountPoint]);
  });
  const skipped = mounted ? "" : " (skipped: cannot mount a tmpfs here; needs root)";
  const guest = join(mountPoint, "guest.img");
  const disk = join(dir, "enospc-disk.bin");

  test.skipIf(!mounted)(`io reading into it: ENOSPC naming the image, exit 1, in every mode, never a crash${skipped}`, () => {
    writeFileSync(guest, "");
    truncateSync(guest, 64 * 2 ** 20); // a 64 MiB sparse image on a 2 MiB filesystem
    writeFileSync(disk, randomBytes(4 * 2 ** 20, 8));
    for (const mode of ["bounce", "auto", "direct", "buffered"]) {
      const result = Bun.spawnSync([...CLI, "io", "--guest", guest, "--disk", disk, "--op", "read", "--gpns", "0-1023", "--at", "0", "--mode", mode], { cwd: dir });
      expect({ mode, code: result.exitCode }).toEqual({ mode, code: 1 });
      expect(result.stderr.toString()).toMatch(new RegExp(`^bounce-bench: fallocate\\(guest image ${guest.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}, pages 0\\.\\.1023\\): ENOSPC \\(No space left on device\\)[^\\n]*\\n$`));
    }
  });

  test.skipIf(!mounted)(`bench with its --guest there: ENOSPC, exit 1, scratch removed${skipped}`, () => {
    const tmp = childTmp("enospc-bench");
    const result = Bun.spawnSync([...CLI, "bench", "--guest", guest, "--force", "--op", "read", "--bs", "1m", "--qd", "4", "--engine", "uring", "--mem-offset", "0", "--mode", "auto", "--ios", "8"], { cwd: dir, env: { ...process.env, TMPDIR: tmp } });
    expect(result.exitCode).toBe(1);
    expect(result.stderr.toString()).toContain("ENOSPC");
    expect(readdirSync(tmp)).toEqual([]);
  });

  test.skipIf(!mounted)(`a 16 TiB sparse image still opens: pages are provided only as they are used${skipped}`, async () => {
    const { GuestMemory } = await import("../src/memory/guest-memory");
    const huge = join(mountPoint, "huge.img");
    rmSync(guest, { force: true }); // the tests before filled this small filesystem
    writeFileSync(huge, "");
    truncateSync(huge, 2 ** 44);
    try {
      using memory = GuestMemory.open(huge);
      expect(memory.pageCount).toBe(2 ** 32);
      memory.write(2 ** 44 - 3, new Uint8Array([1, 2, 3])); // the last page: provided, then stored
      const back = new Uint8Array(3);
      memory.read(2 ** 44 - 3, back);
      expect([...back]).toEqual([1, 2, 3]);
    } finally {
      rmSync(huge, { force: true });
    }
  });

  test.skipIf(!mounted)(`repro whose scratch space is that filesystem: refused up front (exit 2); tried anyway, exit 1; nothing left behind${skipped}`, () => {
    const scenario = join(dir, "enospc.json");
    writeFileSync(scenario, JSON.stringify({ name: "big guest", expected: "e", buggy: "b", guest: { size: "64M" }, disk: { size: "64k" }, steps: [{ fill: "guest", gpns: "0-1023", pattern: "stamp" }] }));
    const refused = Bun.spawnSync([...CLI, "repro", scenario], { cwd: dir, env: { ...process.env, TMPDIR: mountPoint } });
    expect(refused.exitCode).toBe(2);
    expect(refused.stderr.toString()).toContain("the scenario's guest image: 64.0 MiB");
    expect(readdirSync(mountPoint).filter((name) => name.startsWith("bounce-bench-"))).toEqual([]);
    const result = Bun.spawnSync([...CLI, "repro", scenario, "--no-resource-check"], { cwd: dir, env: { ...process.env, TMPDIR: mountPoint } });
    expect(result.exitCode).toBe(1);
    expect(result.stderr.toString() + result.stdout.toString()).toContain("ENOSPC");
    expect(readdirSync(mountPoint).filter((name) => name.startsWith("bounce-bench-"))).toEqual([]);
  });
});
