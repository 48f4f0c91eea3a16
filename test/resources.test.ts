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
    expect(refused.stderr.toString()).toMatch(/^bounce-bench: .*big-disk\.json: the run needs 0\.5 GiB on the filesystem of .* \(the scenario's guest image: 0\.0 GiB, its disk: 0\.5 GiB\); 0\.1 GiB is free there: .*--no-resource-check to try anyway\n$/);
    expect(readdirSync(tmp)).toEqual([]);
  } finally {
    Bun.spawnSync(["umount", tmp]);
  }
});
