/**
 * Alignment discovery on the kinds of disk a plain ext4 file does not exercise: a filesystem
 * without direct IO (ramfs, mounted for the test when the machine allows it) and a block device
 * (opened read-only: its block size is read, nothing is ever written under /dev). Each test
 * skips with a printed reason when the machine lacks what it needs.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { discoverAlignment, probeAlignment } from "../src/disk/alignment";
import { statx } from "../src/native";
import { fileBytes, PAGE, randomBytes, runCliIn } from "./helpers";

describe("a filesystem without direct IO (ramfs)", () => {
  const dir = mkdtempSync(join(tmpdir(), "bounce-bench-ramfs-"));
  const mounted = spawnSync("mount", ["-t", "ramfs", "none", dir]).status === 0;
  afterAll(() => {
    if (mounted) spawnSync("umount", [dir]);
    rmSync(dir, { recursive: true, force: true });
  });
  const guestPath = join(dir, "guest.img");
  const diskPath = join(dir, "disk.bin");

  test("probe says no direct IO; io explains and points at --mode buffered, which works", () => {
    if (!mounted) {
      console.log("skipped: cannot mount ramfs here (needs root and CAP_SYS_ADMIN)");
      return;
    }
    const guest = randomBytes(4 * PAGE, 1);
    writeFileSync(guestPath, guest);
    writeFileSync(diskPath, new Uint8Array(4 * PAGE));
    expect(discoverAlignment(diskPath)).toMatchObject({ directIo: false, source: "probe", note: "O_DIRECT refused: EINVAL" });
    const probe = JSON.parse(runCliIn(dir, "probe", diskPath, "--json").stdout);
    expect(probe).toMatchObject({ directIo: false, fsType: "ramfs" });

    const refused = runCliIn(dir, "io", "--guest", guestPath, "--disk", diskPath, "--op", "write", "--gpns", "1", "--at", "0");
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain("does not do direct IO");
    expect(refused.stderr).toContain("--mode buffered");
    expect(fileBytes(diskPath).every((b) => b === 0)).toBe(true);

    const buffered = runCliIn(dir, "io", "--guest", guestPath, "--disk", diskPath, "--op", "write", "--gpns", "1", "--at", "100", "--mode", "buffered");
    expect(buffered.code).toBe(0);
    expect(fileBytes(diskPath).subarray(100, 100 + PAGE)).toEqual(guest.subarray(PAGE, 2 * PAGE));
  });
});

describe("a block device (read-only)", () => {
  /** A block device node that opens for reading, with its logical block size from sysfs. */
  function findBlockDevice(): { path: string; blockSize: number } | null {
    let names: string[] = [];
    try {
      names = readdirSync("/sys/block");
    } catch {
      return null;
    }
    for (const name of names) {
      const path = `/dev/${name}`;
      const sizeFile = `/sys/block/${name}/size`;
      if (!existsSync(path) || !existsSync(sizeFile) || Number(readFileSync(sizeFile, "utf8")) === 0) continue;
      try {
        if (statx(path).type !== "block-device") continue;
        return { path, blockSize: Number(readFileSync(`/sys/block/${name}/queue/logical_block_size`, "utf8")) };
      } catch {
        continue;
      }
    }
    return null;
  }

  test("BLKSSZGET gives the logical block size when statx says nothing", () => {
    const device = findBlockDevice();
    if (device === null) {
      console.log("skipped: no readable block device");
      return;
    }
    const status = statx(device.path);
    try {
      expect(discoverAlignment(device.path, { ...status, dio: null })).toEqual({
        directIo: true,
        memAlign: device.blockSize,
        offsetAlign: device.blockSize,
        readOffsetAlign: device.blockSize,
        source: "blksszget",
      });
    } catch (error) {
      const code = (error as { code?: string }).code;
      if (code === "EACCES" || code === "EPERM") {
        console.log(`skipped: ${device.path} is not readable here (${code})`);
        return;
      }
      throw error;
    }
    // Where statx does report it (Linux 6.1+), the device's own answer agrees on the block size.
    if (status.dio !== null) expect(status.dio.offsetAlign).toBe(device.blockSize);
  });

  test("the empirical probe of a regular file agrees with statx on the block size", () => {
    const dir = mkdtempSync(join(tmpdir(), "bounce-bench-probe-"));
    try {
      const path = join(dir, "data.bin");
      writeFileSync(path, randomBytes(64 * 1024, 3));
      const reported = discoverAlignment(path);
      const probed = probeAlignment(path);
      expect(probed.source).toBe("probe");
      if (reported.source === "statx" && reported.directIo) expect(probed.offsetAlign).toBe(reported.offsetAlign);
      writeFileSync(path, new Uint8Array(0));
      spawnSync("truncate", ["-s", "1M", path]); // all hole: the probe cannot tell, and says so
      expect(probeAlignment(path)).toMatchObject({ offsetAlign: 4096, note: "the file holds no data (only holes): cannot tell, assuming 4096" });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
