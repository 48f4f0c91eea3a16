/**
 * Writing a block device the user names: refused without `--overwrite-device` (and `--force`
 * is not it, nor is it suggested), done with it, and refused even with it when the device is in
 * use: the backing file of a loop device, or mounted. The devices are loop devices this test
 * makes over its own scratch files, detached afterwards; their bytes are checked after every
 * refusal and every write.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileBytes, randomBytes, ROOT, scratchDir } from "./helpers";

const root = process.getuid?.() === 0 && Bun.which("losetup") !== null;
const why = root ? "" : " (skipped: making a loop device needs root and losetup)";
const made: string[] = [];
const mounted: string[] = [];
// Registered before the scratch directory's removal, so that it runs first: nothing mounted or
// attached is left over the directory when it goes.
afterAll(() => {
  for (const point of mounted) spawnSync("umount", [point]);
  for (const device of made) spawnSync("losetup", ["-d", device]); // newest first: a device over another goes before it
});
const dir = scratchDir("device-writes");

/** A loop device over `backing` (a scratch file of ours, or another device), detached after the file's tests. */
function loopOver(backing: string): string {
  const result = spawnSync("losetup", ["--direct-io=on", "--find", "--show", backing], { encoding: "utf8" });
  if (result.status !== 0) throw new Error(`losetup: ${result.stderr}`);
  const device = result.stdout.trim();
  made.unshift(device);
  return device;
}

const cli = (...args: string[]) => {
  const run = spawnSync(process.execPath, [join(ROOT, "cli/bounce-bench.ts"), ...args], { cwd: dir, encoding: "utf8", env: { ...process.env, TMPDIR: dir } });
  return { code: run.status, stdout: run.stdout, stderr: run.stderr };
};

describe("a block device named for writing", () => {
  test.skipIf(!root)(`is refused without --overwrite-device (--force is not it); with it, bench and io write it${why}`, () => {
    const backing = join(dir, "device.img");
    writeFileSync(backing, randomBytes(8 * 2 ** 20, 31));
    const device = loopOver(backing);
    const guest = join(dir, "guest.img");
    writeFileSync(guest, randomBytes(2 ** 20, 32));
    const before = fileBytes(device);
    for (const args of [
      ["bench", "--disk", device, "--op", "write", "--bs", "4k", "--ios", "20", "--repeat", "1"],
      ["bench", "--disk", device, "--op", "write", "--bs", "4k", "--ios", "20", "--repeat", "1", "--force"],
      ["io", "--guest", guest, "--disk", device, "--op", "write", "--gpns", "0", "--at", "0"],
    ]) {
      const refused = cli(...args);
      expect({ args, code: refused.code }).toEqual({ args, code: 2 });
      expect(refused.stderr).toMatch(/^bounce-bench: [^\n]*--overwrite-device allows it \(--force does not\)[^\n]*\n$/);
      expect(refused.stderr).not.toContain("use --force");
    }
    expect(fileBytes(device)).toEqual(before);

    const bench = cli("bench", "--disk", device, "--op", "write", "--bs", "4k", "--ios", "20", "--repeat", "1", "--overwrite-device");
    expect(bench.code).toBe(0);
    expect(bench.stdout).toContain(`OVERWRITES the block device ${device}: what it held is lost (--overwrite-device)`);
    expect(fileBytes(device)).not.toEqual(before);

    const io = cli("io", "--guest", guest, "--disk", device, "--op", "write", "--gpns", "2-3", "--at", "65536", "--overwrite-device");
    expect(io.code).toBe(0);
    expect(fileBytes(device).subarray(65536, 65536 + 8192)).toEqual(fileBytes(guest).subarray(8192, 16384));
  }, 60_000);

  test.skipIf(!root)(`in use is refused even with --overwrite-device: under a loop device, or mounted${why}`, () => {
    const backing = join(dir, "held.img");
    writeFileSync(backing, randomBytes(8 * 2 ** 20, 33));
    const device = loopOver(backing);
    const upper = loopOver(device); // a loop device over the first: it holds it
    const before = fileBytes(device);
    const held = cli("bench", "--disk", device, "--op", "write", "--bs", "4k", "--ios", "20", "--repeat", "1", "--overwrite-device");
    expect(held.code).toBe(2);
    expect(held.stderr).toBe(`bounce-bench: disk ${device}: not overwritten, even with --overwrite-device: it backs ${upper.replace("/dev/", "")} (a loop device over it)\n`);
    expect(fileBytes(device)).toEqual(before);
    spawnSync("losetup", ["-d", upper]);
    made.splice(made.indexOf(upper), 1);

    if (Bun.which("mkfs.ext4") === null) return;
    expect(spawnSync("mkfs.ext4", ["-q", "-F", device]).status).toBe(0);
    const point = join(dir, "mnt");
    mkdirSync(point);
    expect(spawnSync("mount", [device, point]).status).toBe(0);
    mounted.push(point);
    const busy = cli("io", "--guest", join(dir, "guest.img"), "--disk", device, "--op", "write", "--gpns", "0", "--at", "0", "--overwrite-device");
    expect(busy.code).toBe(2);
    expect(busy.stderr).toBe(`bounce-bench: disk ${device}: not overwritten, even with --overwrite-device: it is mounted (${point})\n`);
  }, 60_000);
});
