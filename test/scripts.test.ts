/**
 * The measuring scripts (`npm run bench:pairs`, and the flag parsing every script shares): bad
 * flags are one line and exit 2, a short pairs run measures its three kinds of IO and the copy,
 * and one on a scratch loop device over tmpfs leaves nothing behind.
 */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";

const run = (script: string, ...args: string[]) => {
  const result = Bun.spawnSync([process.execPath, join(import.meta.dir, "../measure", script), ...args]);
  return { code: result.exitCode, stdout: result.stdout.toString(), stderr: result.stderr.toString() };
};

describe("scripts", () => {
  test("a bad flag or value is one line on stderr and exit 2, before anything is made", () => {
    const refused = [["--nonsense"], ["--seconds", "0"], ["--op", "trim"], ["--engine", "uring"], ["--bs", "64q"], ["--disk", "nvme"], ["--engine", "null", "--disk", "loop"]];
    for (const args of refused) {
      const bad = run("bounce-pairs.ts", ...args);
      expect(bad.code).toBe(2);
      expect(bad.stderr.trim().split("\n")).toHaveLength(1);
      expect(bad.stderr).toStartWith("bench:pairs: ");
      expect(bad.stdout).toBe("");
    }
    for (const args of [["--runs", "1"], ["--seconds", "x"], ["--nonsense"]]) {
      const bad = run("false-findings.ts", ...args);
      expect({ args, code: bad.code, stderr: bad.stderr.trim().split("\n").length, stdout: bad.stdout }).toEqual({ args, code: 2, stderr: 1, stdout: "" });
      expect(bad.stderr).toStartWith("bench:aa: ");
    }
  });

  test(
    "bench:pairs runs direct, bounced and beside IOs in cycles and splits the extra into the floor and what lies beyond it",
    () => {
      const pairs = run("bounce-pairs.ts", "--engine", "null", "--seconds", "1.5", "--bs", "64k", "--op", "read", "--json");
      expect(pairs.code).toBe(0);
      const [result, ...rest] = JSON.parse(pairs.stdout);
      expect(rest).toHaveLength(0);
      expect(result).toMatchObject({ op: "read", bs: 65536, engine: "null", disk: "file" });
      expect(result.cycles).toBeGreaterThanOrEqual(2); // standard errors need two; how many more fit is the machine's business
      // Every cycle counts a run of each kind but its first IO.
      expect(result.ios).toBe(result.cycles * 3 * 31);
      // All three kinds and the copy are measured (which costs more is a measurement, not a test:
      // on a busy machine any order can come out).
      for (const us of [result.directUs, result.copyUs, result.bouncedUs, result.besideUs]) expect(us).toBeGreaterThan(0);
      // Every cycle counts the same number of IOs of each kind, so the cycles' mean differences are the kinds' mean differences.
      expect(result.extraUs).toBeCloseTo(result.bouncedUs - result.directUs, 6);
      expect(result.floorUs).toBeCloseTo(result.besideUs - result.directUs, 6);
      expect(result.beyondFloorUs).toBeCloseTo(result.extraUs - result.floorUs, 6);
      expect(result.ratio).toBeCloseTo(result.extraUs / result.copyUs, 6);
      expect(result.floorRatio).toBeCloseTo(result.floorUs / result.copyUs, 6);
      for (const se of [result.extraStandardErrorUs, result.floorStandardErrorUs, result.beyondFloorStandardErrorUs]) expect(se).toBeGreaterThan(0);
    },
    30_000,
  );

  const notRoot = process.getuid?.() !== 0;
  if (notRoot) console.log("skipped: bench:pairs --disk tmpfs-loop needs root (loop devices and mounts)");
  test.skipIf(notRoot)(
    "bench:pairs --disk tmpfs-loop measures on a scratch loop device over tmpfs and leaves no device or mount behind",
    () => {
      const scratchLoops = () => Bun.spawnSync(["losetup", "--list", "--noheadings", "--output", "BACK-FILE"]).stdout.toString().split("\n").filter((line) => line.includes("bounce-bench-disk-"));
      const scratchMounts = () => readFileSync("/proc/self/mountinfo", "utf8").split("\n").filter((line) => line.includes("bounce-bench-disk-"));
      const loopsBefore = scratchLoops();
      const mountsBefore = scratchMounts();
      const pairs = run("bounce-pairs.ts", "--disk", "tmpfs-loop", "--seconds", "1.5", "--bs", "64k", "--op", "write", "--json");
      expect(pairs.stderr).not.toContain("error");
      expect(pairs.code).toBe(0);
      const [result] = JSON.parse(pairs.stdout);
      expect(result).toMatchObject({ op: "write", bs: 65536, engine: "sync", disk: "tmpfs-loop" });
      expect(result.cycles).toBeGreaterThanOrEqual(2);
      for (const us of [result.directUs, result.bouncedUs]) expect(us).toBeGreaterThan(0);
      expect(scratchLoops()).toEqual(loopsBefore);
      expect(scratchMounts()).toEqual(mountsBefore);
    },
    60_000,
  );
});
