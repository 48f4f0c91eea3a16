/**
 * The ladder's measuring window (`measure/steady-window.ts`): device numbers taken apart as the
 * kernel puts them together, the statistics file of the device a path is on (checked against
 * coreutils' `stat`), and a process tree's CPU time counting what a grandchild spent.
 */
import { expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { deviceNumbers, deviceStatFile, steadyWindow, treeCpuNs } from "../measure/steady-window";

test("device numbers come apart as the kernel's new_encode_dev put them together (12-bit majors, 20-bit minors)", () => {
  const encode = (major: number, minor: number) => (minor & 0xff) | (major << 8) | ((minor & ~0xff) << 12);
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 0xfff }), fc.integer({ min: 0, max: 0xfffff }), (major, minor) => {
      expect(deviceNumbers(encode(major, minor) >>> 0)).toEqual({ major, minor });
    }),
  );
});

test("a file's device statistics are those of the device coreutils' stat names; a file on tmpfs has none", () => {
  const dir = mkdtempSync(join(tmpdir(), "bounce-bench-window-"));
  try {
    const file = join(dir, "f");
    writeFileSync(file, "x");
    const coreutils = Bun.spawnSync(["stat", "-c", "%Hd:%Ld", file]).stdout.toString().trim();
    const onDevice = Bun.spawnSync(["test", "-e", `/sys/dev/block/${coreutils}/stat`]).exitCode === 0;
    expect(deviceStatFile(file)).toBe(onDevice ? `/sys/dev/block/${coreutils}/stat` : null);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  expect(deviceStatFile("/dev/shm")).toBeNull();
});

test("a process tree's CPU time counts a grandchild's: a shell whose child spins 300 ms of its own CPU time counts most of that", async () => {
  // The grandchild spins until its own CPU clock shows 300 ms, says so, and sleeps: the tree
  // is read while it still exists. A thread of it that ended before counts in its clock but
  // not in the tree's threads: hence "most".
  const spin = `const t = process.cpuUsage(); while (process.cpuUsage(t).user + process.cpuUsage(t).system < 300e3); console.log("spun"); await Bun.sleep(60000);`;
  const shell = Bun.spawn(["sh", "-c", `"${process.execPath}" -e '${spin}'; true`], { stdout: "pipe" });
  try {
    const reader = shell.stdout.getReader();
    const { value } = await reader.read();
    expect(new TextDecoder().decode(value)).toContain("spun");
    expect(treeCpuNs(shell.pid)).toBeGreaterThanOrEqual(240e6);
  } finally {
    Bun.spawnSync(["pkill", "-KILL", "-P", String(shell.pid)]);
    shell.kill();
    await shell.exited;
  }
});

test("the window lies within the measured phase: a second after the warm-up to a fifth before the end, scaled down for short runs", () => {
  expect(steadyWindow(2, 4)).toEqual({ fromSeconds: 3, toSeconds: 5.8 });
  expect(steadyWindow(2, 1)).toEqual({ fromSeconds: 2.25, toSeconds: 2.9 });
});
