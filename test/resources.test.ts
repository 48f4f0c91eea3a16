/**
 * The host is not exhausted: a run whose disk or guest memory would not fit in what the host has
 * free is refused before anything is made or filled, naming the figures and the flag that
 * overrides (a 1 TiB --size filled the shared root filesystem at 6.6 GB a minute, before; a 64
 * GiB tmpfs on a 24 GiB machine started filling).
 */
import { expect, test } from "bun:test";
import { mkdirSync, readdirSync, statfsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { availableMemory, checkResources } from "../src/host/resources";
import { scratchDiskUnavailable } from "../src/host/scratch-disks";
import { ROOT, scratchDir } from "./helpers";

const dir = scratchDir("resources");
const bench = (tmp: string, ...args: string[]) => {
  const result = Bun.spawnSync([process.execPath, join(ROOT, "cli/bounce-bench.ts"), "bench", "--op", "read", "--bs", "4k", "--ios", "8", ...args], { env: { ...process.env, TMPDIR: tmp } });
  return { code: result.exitCode, stderr: result.stderr.toString() };
};
const gib = (bytes: number) => `${Math.ceil(bytes / 2 ** 30)}g`;

test("a disk larger than the free space of its filesystem: exit 2 with the figures, nothing made", () => {
  const tmp = join(dir, "tmp-space");
  mkdirSync(tmp);
  const free = statfsSync(tmp).bavail * statfsSync(tmp).bsize;
  const refused = bench(tmp, "--size", gib(free + 2 ** 40));
  expect(refused.code).toBe(2);
  expect(refused.stderr).toMatch(/the run needs [\d.]+ GiB on the filesystem of .* \(the disk it fills: [\d.]+ GiB\); [\d.]+ GiB is free there: .*--no-resource-check/);
  expect(readdirSync(tmp)).toEqual([]);
});

test("memory needs together against MemAvailable, space needs per filesystem", () => {
  const available = availableMemory();
  expect(available).toBeGreaterThan(0);
  expect(() => checkResources([{ what: "guest memory", bytes: available! + 2 ** 30 }])).toThrow("of memory (guest memory:");
  expect(() => checkResources([{ what: "a", bytes: available! / 2 + 2 ** 30 }, { what: "b", bytes: available! / 2 + 2 ** 30 }])).toThrow("of memory (a: ");
  expect(() => checkResources([{ what: "guest memory", bytes: 2 ** 20 }, { what: "the disk it fills", bytes: 2 ** 20, where: dir }])).not.toThrow();
});

const why = scratchDiskUnavailable("tmpfs");
test.skipIf(why !== null)(`a tmpfs disk larger than the memory available: exit 2 before anything is mounted${why === null ? "" : ` (skipped: ${why})`}`, () => {
  const tmp = join(dir, "tmp-memory");
  mkdirSync(tmp);
  const refused = bench(tmp, "--disk-kind", "tmpfs", "--size", gib(availableMemory()! + 2 ** 32));
  expect(refused.code).toBe(2);
  expect(refused.stderr).toContain("of memory (a tmpfs disk:");
  expect(readdirSync(tmp)).toEqual([]);
});

const root = process.getuid?.() === 0;
test.skipIf(!root)(`repro: a scenario whose disk does not fit in the temporary directory's free space is exit 2 before anything runs${root ? "" : " (skipped: mounting a small tmpfs needs root)"}`, () => {
  const tmp = join(dir, "tmp-small");
  mkdirSync(tmp);
  const mounted = Bun.spawnSync(["mount", "-t", "tmpfs", "-o", "size=64m,mode=0700", "tmpfs", tmp]);
  expect(mounted.exitCode).toBe(0);
  try {
    const scenario = join(dir, "big-disk.json");
    writeFileSync(scenario, JSON.stringify({ name: "big", expected: "e", buggy: "b", guest: { size: "64k" }, disk: { size: "512M" }, steps: [{ fill: "disk", pattern: "zero" }] }));
    const repro = (...flags: string[]) => Bun.spawnSync([process.execPath, join(ROOT, "cli/bounce-bench.ts"), "repro", scenario, ...flags], { env: { ...process.env, TMPDIR: tmp } });
    const refused = repro();
    expect(refused.exitCode).toBe(2);
    expect(refused.stderr.toString()).toMatch(/^bounce-bench: .*big-disk\.json: the run needs 512\.1 MiB on the filesystem of .* \(the scenario's guest image: 0\.1 MiB, its disk: 512\.0 MiB\); 64\.0 MiB is free there: .*--no-resource-check to try anyway\n$/);
    expect(readdirSync(tmp)).toEqual([]);
  } finally {
    Bun.spawnSync(["umount", tmp]);
  }
});

test.skipIf(!root)(`a read-only temporary directory: bench and repro say so in one line, exit 1, nothing made${root ? "" : " (skipped: mounting a read-only tmpfs needs root)"}`, () => {
  const tmp = join(dir, "tmp-read-only");
  mkdirSync(tmp);
  expect(Bun.spawnSync(["mount", "-t", "tmpfs", "-o", "size=1m,ro", "tmpfs", tmp]).exitCode).toBe(0);
  try {
    const cli = (...args: string[]) => Bun.spawnSync([process.execPath, join(ROOT, "cli/bounce-bench.ts"), ...args], { env: { ...process.env, TMPDIR: tmp } });
    for (const run of [cli("bench", "--engine", "null", "--bs", "4k", "--ios", "8"), cli("repro", join(ROOT, "scenarios/rmw-unaligned-write.json"))]) {
      expect(run.exitCode).toBe(1);
      expect(run.stderr.toString()).toBe(`bounce-bench: cannot make a scratch directory in ${tmp}: EROFS (read-only file system); point TMPDIR at a directory it can write\n`);
    }
    expect(readdirSync(tmp)).toEqual([]);
  } finally {
    Bun.spawnSync(["umount", tmp]);
  }
});

test("out of file descriptors (ulimit -n) is one line naming the limit, exit 1: never bad input, a stack or a failed expectation", () => {
  const guest = join(dir, "fd-guest.img");
  const disk = join(dir, "fd-disk.img");
  writeFileSync(guest, new Uint8Array(2 ** 20));
  writeFileSync(disk, new Uint8Array(2 ** 20));
  const ours = /^bounce-bench: EMFILE: out of file descriptors, at this process's limit of (\d+) open files \(ulimit -n\); raise it \(for example ulimit -n 4096\)\n$/;
  let named = 0;
  // repro's Worker and Bun's own streams take descriptors too: near the limit where the run
  // would just fit, Bun's stream layer can give up first (it exits 141 without a word), so
  // repro is held to the limits where its own calls meet it.
  const commands: [string[], number, number][] = [
    [["io", "--guest", guest, "--disk", disk, "--op", "write", "--gpns", "0", "--at", "0"], 8, 16],
    [["repro", join(ROOT, "scenarios/rmw-unaligned-write.json")], 10, 12],
  ];
  for (const [args, lowest, highest] of commands) {
    for (let limit = lowest; limit <= highest; limit++) {
      const run = Bun.spawnSync(["sh", "-c", `ulimit -n ${limit} && exec "$@"`, "sh", process.execPath, join(ROOT, "cli/bounce-bench.ts"), ...args], { env: { ...process.env, TMPDIR: dir } });
      const stderr = run.stderr.toString();
      const label = `${args[0]} at ulimit -n ${limit}`;
      // Bun itself may run out first (starting a Worker), and says so in its own words.
      if (run.exitCode === 0 || stderr.includes("bun ran out of file descriptors")) continue;
      expect({ label, code: run.exitCode, stderr }).toEqual({ label, code: 1, stderr: expect.stringMatching(ours) });
      expect(ours.exec(stderr)![1]).toBe(String(limit));
      named++;
    }
  }
  expect(named).toBeGreaterThan(0);
  // Nothing is left: not even an empty scratch directory whose marker could not be made.
  expect(readdirSync(dir).filter((name) => name.startsWith("bounce-bench-"))).toEqual([]);
});
