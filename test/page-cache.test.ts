/**
 * Page-cache fallback named: `io` says whether a "direct" IO went through the page cache after
 * all, from the kernel's own tracepoints (root) or cachestat. btrfs serves every write to a
 * file with data checksums through the page cache, and reads into guest pages not yet faulted
 * in; tmpfs files are the page cache; ext4 and xfs do true direct IO. Tracing leaves nothing
 * behind: no tracefs mount, no tracing instance, no directory.
 */
import { describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PageCacheTrace } from "../src/host/page-cache-trace";
import { reclaimScratchDirs } from "../src/host/scratch-dir";
import { ScratchDisk, scratchDiskUnavailable } from "../src/host/scratch-disks";
import { randomBytes, ROOT, runCliIn, scratchDir } from "./helpers";

const dir = scratchDir("page-cache");
const guest = join(dir, "guest.img");
writeFileSync(guest, new Uint8Array(2 ** 20));
/** The runs' own temporary directory, so that what they leave is judged by this test's resources, not the machine's. */
const runsTmp = join(dir, "tmp-runs");
mkdirSync(runsTmp);
/** The pids of the runs this file started: the tracing instances they name (`bounce-bench-PID-...`) are theirs. */
const runPids = new Set<number>();
const io = (disk: string, ...args: string[]) => {
  const result = Bun.spawnSync([process.execPath, join(ROOT, "cli/bounce-bench.ts"), "io", "--guest", guest, "--disk", disk, "--at", "0", "--gpns", "0", ...args, "--json"], { cwd: dir, env: { ...process.env, TMPDIR: runsTmp } });
  runPids.add(result.pid);
  return { code: result.exitCode, doc: JSON.parse(result.stdout.toString()) };
};
const root = PageCacheTrace.unavailable() === null;

/** What this file's runs left: mounts and directories in their temporary directory, and tracing instances they made (as root). */
function leftovers(extraPids: readonly number[] = []): string[] {
  const found = readFileSync("/proc/self/mountinfo", "utf8").split("\n").filter((line) => line.includes(runsTmp));
  found.push(...readdirSync(runsTmp));
  if (!root) return found;
  const pids = new Set([...runPids, ...extraPids]);
  withTracefs((instances) => {
    if (existsSync(instances)) found.push(...readdirSync(instances).filter((name) => pids.has(Number(/^bounce-bench-(\d+)-/.exec(name)?.[1]))));
  });
  return found;
}

/** Runs `body` with the machine's tracing instances directory, through a private tracefs mount made and removed here (root). */
function withTracefs(body: (instances: string) => void): void {
  const look = mkdtempSync(join(tmpdir(), "page-cache-test-"));
  spawnSync("mount", ["-t", "tracefs", "nodev", look]);
  try {
    body(join(look, "instances"));
  } finally {
    spawnSync("umount", [look]);
    rmdirSync(look);
  }
}

test("on the temporary directory's file: not through the page cache (traced as root; a read by cachestat otherwise)", () => {
  const disk = join(dir, "disk.img");
  writeFileSync(disk, randomBytes(2 ** 20, 3));
  const before = leftovers();
  const write = io(disk, "--op", "write");
  const read = io(disk, "--op", "read");
  expect([write.code, read.code]).toEqual([0, 0]);
  expect(read.doc.pageCache.used).toBe(false);
  if (root) {
    expect(write.doc.pageCache).toMatchObject({ used: false, traced: 0 });
    expect(write.doc.pageCache.evidence).toContain("tracepoints");
  } else {
    expect(write.doc.pageCache.used).toBeNull(); // cachestat cannot see a write written back and dropped
  }
  expect(leftovers()).toEqual(before);
});

describe("on filesystems this machine can make (root)", () => {
  const cases: { kind: "btrfs" | "ext4" | "xfs" | "tmpfs"; sector?: 512 | 4096; write: boolean; read: boolean }[] = [
    { kind: "btrfs", sector: 4096, write: true, read: true },
    { kind: "ext4", sector: 4096, write: false, read: false },
    { kind: "xfs", sector: 512, write: false, read: false },
    { kind: "tmpfs", write: true, read: true },
  ];
  for (const { kind, sector, write, read } of cases) {
    const why = scratchDiskUnavailable(kind) ?? PageCacheTrace.unavailable();
    test.skipIf(why !== null)(`${kind}: an aligned write ${write ? "goes" : "does not go"} through the page cache, a read into pages not yet faulted in ${read ? "does" : "does not"}${why === null ? "" : ` (skipped: ${why})`}`, () => {
      using scratch = ScratchDisk.make({ kind, sector, size: 2 ** 20 });
      writeFileSync(scratch.path, randomBytes(2 ** 20, 4));
      writeFileSync(guest, new Uint8Array(2 ** 20)); // fresh pages, not faulted in by this process
      const before = leftovers();
      const written = io(scratch.path, "--op", "write");
      expect(written.code).toBe(0);
      expect({ kind, used: written.doc.pageCache.used }).toEqual({ kind, used: write });
      writeFileSync(guest, new Uint8Array(2 ** 20));
      const done = io(scratch.path, "--op", "read", "--gpns", "1");
      expect(done.code).toBe(0);
      expect({ kind, used: done.doc.pageCache.used }).toEqual({ kind, used: read });
      const textRun = Bun.spawnSync([process.execPath, join(ROOT, "cli/bounce-bench.ts"), "io", "--guest", guest, "--disk", scratch.path, "--at", "0", "--gpns", "2", "--op", "write"], { cwd: dir, env: { ...process.env, TMPDIR: runsTmp } });
      runPids.add(textRun.pid);
      const text = { code: textRun.exitCode, stdout: textRun.stdout.toString() };
      expect(text.stdout).toContain(write ? "decision    direct (page-cache fallback)" : "decision    direct\n");
      expect(leftovers()).toEqual(before);
    });
  }
});

describe("plan names the fallback where the disk is measured to fall back (statx says nothing of direct IO there)", () => {
  const cases: { kind: "btrfs" | "ext4" | "tmpfs"; sector?: 512 | 4096; write: boolean | null; read: boolean | null }[] = [
    { kind: "btrfs", sector: 4096, write: true, read: null }, // reads: only misaligned ones (and into pages not faulted in)
    { kind: "tmpfs", write: true, read: true },
  ];
  for (const { kind, sector, write, read } of cases) {
    const why = scratchDiskUnavailable(kind) ?? PageCacheTrace.unavailable();
    test.skipIf(why !== null)(`${kind}: writes ${write ? "fall back" : "may"}, reads ${read ? "fall back" : "may"}${why === null ? "" : ` (skipped: ${why})`}`, () => {
      using scratch = ScratchDisk.make({ kind, sector, size: 2 ** 20 });
      const data = randomBytes(2 ** 20, 5);
      writeFileSync(scratch.path, data);
      const planned = (op: string) => JSON.parse(runCliIn(dir, "plan", "--disk", scratch.path, "--gpns", "0-1", "--op", op, "--json").stdout);
      expect({ kind, write: planned("write").pageCache.fallback, read: planned("read").pageCache.fallback }).toEqual({ kind, write, read });
      expect(runCliIn(dir, "plan", "--disk", scratch.path, "--gpns", "0-1", "--op", "write").stdout).toMatch(/^decision +direct \(the filesystem falls back to the page cache\)$/m);
      expect(readFileSync(scratch.path)).toEqual(Buffer.from(data)); // the disk itself is never written
    });
  }
  test("a disk whose statx speaks (ext4 here): nothing measured, null", () => {
    const disk = join(dir, "statx.img");
    writeFileSync(disk, randomBytes(2 ** 20, 6));
    expect(JSON.parse(runCliIn(dir, "plan", "--disk", disk, "--gpns", "0-1", "--json").stdout).pageCache).toBeNull();
  });
});

test.skipIf(!root)(`a killed run's tracing instance (it belongs to the machine, not the mount) is removed by the next run's reclaim${root ? "" : " (skipped: tracing needs root)"}`, () => {
  const parent = join(dir, "tmp-killed-trace");
  mkdirSync(parent);
  const traced = join(dir, "traced.img");
  writeFileSync(traced, new Uint8Array(4096));
  const code = `const { PageCacheTrace } = await import(${JSON.stringify(join(import.meta.dir, "../src/host/page-cache-trace.ts"))});
    const trace = PageCacheTrace.start(require("node:fs").openSync(${JSON.stringify(traced)}, "r"));
    console.log(require("node:path").basename(trace.instance));
    process.kill(process.pid, "SIGKILL");`;
  const killed = spawnSync(process.execPath, ["-e", code], { env: { ...process.env, TMPDIR: parent }, encoding: "utf8" });
  expect(killed.signal).toBe("SIGKILL");
  const instance = killed.stdout.trim();
  expect(instance).toMatch(/^bounce-bench-\d+-[a-z0-9]+$/);
  try {
    expect(leftovers([killed.pid])).toContain(instance); // still tracing, with its run gone
    reclaimScratchDirs(parent);
    expect(leftovers([killed.pid])).not.toContain(instance);
    expect(readFileSync("/proc/self/mountinfo", "utf8")).not.toContain(parent);
    expect(readdirSync(parent)).toEqual([]);
  } finally {
    // Should the reclaim fail to, this test removes the instance its own run made: it knows its name.
    withTracefs((instances) => {
      if (existsSync(join(instances, instance))) rmdirSync(join(instances, instance));
    });
  }
});
