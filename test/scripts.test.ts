/**
 * The measuring scripts (`npm run bench:pairs`, and the flag parsing every script shares): bad
 * flags are one line and exit 2, and a short pairs run measures both kinds of IO and the copy.
 */
import { describe, expect, test } from "bun:test";
import { join } from "node:path";

const run = (script: string, ...args: string[]) => {
  const result = Bun.spawnSync([process.execPath, join(import.meta.dir, "../bench", script), ...args]);
  return { code: result.exitCode, stdout: result.stdout.toString(), stderr: result.stderr.toString() };
};

describe("scripts", () => {
  test("a bad flag or value is one line on stderr and exit 2, before anything is made", () => {
    for (const args of [["--nonsense"], ["--seconds", "0"], ["--op", "trim"], ["--engine", "uring"], ["--bs", "64q"]]) {
      const bad = run("bounce-pairs.ts", ...args);
      expect(bad.code).toBe(2);
      expect(bad.stderr.trim().split("\n")).toHaveLength(1);
      expect(bad.stderr).toStartWith("bench:pairs: ");
      expect(bad.stdout).toBe("");
    }
  });

  test(
    "bench:pairs alternates direct and bounced IOs and reports both, the extra and the copy",
    () => {
      const pairs = run("bounce-pairs.ts", "--engine", "null", "--seconds", "1.5", "--bs", "64k", "--op", "read", "--json");
      expect(pairs.code).toBe(0);
      const [result, ...rest] = JSON.parse(pairs.stdout);
      expect(rest).toHaveLength(0);
      expect(result).toMatchObject({ op: "read", bs: 65536, engine: "null" });
      expect(result.ios).toBeGreaterThan(1000);
      // Both kinds cost something; the bounced one at least its copy, which is measured.
      expect(result.directUs).toBeGreaterThan(0);
      expect(result.copyUs).toBeGreaterThan(0);
      expect(result.bouncedUs).toBeGreaterThan(result.directUs);
      expect(result.extraUs).toBeCloseTo(result.bouncedUs - result.directUs, 6);
      expect(result.ratio).toBeCloseTo(result.extraUs / result.copyUs, 6);
    },
    30_000,
  );
});
