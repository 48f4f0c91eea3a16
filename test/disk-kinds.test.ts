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
import { closeFd, O_RDONLY, openFile, statx } from "../src/native";
import { fileBytes, PAGE, randomBytes, ROOT, runCliIn } from "./helpers";
import { ScratchDisk, scratchDiskUnavailable } from "../src/host/scratch-disks";
import { reclaimScratchDirs } from "../src/host/scratch-dir";
import { Disk } from "../src/disk/disk";

describe("a filesystem without direct IO (ramfs)", () => {
  const dir = mkdtempSync(join(tmpdir(), "bounce-bench-ramfs-"));
  const mounted = spawnSync("mount", ["-t", "ramfs", "none", dir]).status === 0;
  afterAll(() => {
    if (mounted) spawnSync("umount", [dir]);
    rmSync(dir, { recursive: true, force: true });
  });
  const guestPath = join(dir, "guest.img");
  const diskPath = join(dir, "disk.bin");

  const skipped = mounted ? "" : " (skipped: cannot mount ramfs here; needs root and CAP_SYS_ADMIN)";
  test.skipIf(!mounted)(`probe says no direct IO; io explains and points at --mode buffered, which works${skipped}`, () => {
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

  const device = findBlockDevice();
  /** Why the block device cannot be used here, or null when it can (it is only ever opened read-only). */
  const unusable = (() => {
    if (device === null) return "no block device";
    try {
      closeFd(openFile(device.path, O_RDONLY));
      return null;
    } catch (error) {
      return `${device.path} is not readable here (${(error as { code?: string }).code})`;
    }
  })();

  test.skipIf(unusable !== null)(`BLKSSZGET gives the logical block size when statx says nothing${unusable === null ? "" : ` (skipped: ${unusable})`}`, () => {
    const status = statx(device!.path);
    expect(discoverAlignment(device!.path, { ...status, dio: null })).toMatchObject({
      directIo: true,
      memAlign: device!.blockSize,
      offsetAlign: device!.blockSize,
      readOffsetAlign: device!.blockSize,
      source: "blksszget",
      sources: { offsetAlign: "BLKSSZGET (the logical block size)" },
    });
    // Where statx does report it (Linux 6.1+), the device's own answer agrees on the block size.
    if (status.dio !== null) expect(status.dio.offsetAlign).toBe(device!.blockSize);
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

describe("a real 4 KiB-sector disk: a loop device made over a scratch file (root only)", () => {
  const dir = mkdtempSync(join(tmpdir(), "bounce-bench-loop-"));
  const backing = join(dir, "backing.img");
  writeFileSync(backing, randomBytes(4 * 2 ** 20, 21));
  // Only a device made here, over this scratch file, is ever used; it is detached afterwards.
  const made = spawnSync("losetup", ["--sector-size", "4096", "--direct-io=on", "-f", "--show", backing], { encoding: "utf8" });
  const device = made.status === 0 ? made.stdout.trim() : null;
  afterAll(() => {
    if (device !== null) spawnSync("losetup", ["-d", device]);
    rmSync(dir, { recursive: true, force: true });
  });
  const why = device === null ? ` (skipped: losetup failed: ${(made.stderr ?? made.error?.message ?? "").trim() || "not available"})` : "";

  test.skipIf(device === null)(`BLKSSZGET gives its 4096-byte logical block when statx says nothing, and Disk.open its size${why}`, async () => {
    const status = statx(device!);
    expect(status.type).toBe("block-device");
    expect(discoverAlignment(device!, { ...status, dio: null })).toMatchObject({ directIo: true, memAlign: 4096, offsetAlign: 4096, readOffsetAlign: 4096, source: "blksszget" });
    const { Disk } = await import("../src/disk/disk");
    using disk = Disk.open(device!, { write: false, direct: true });
    expect(disk.size).toBe(4 * 2 ** 20);
    expect(disk.type).toBe("block-device");
    expect(disk.discovered.offsetAlign).toBe(4096);
    const { blockLimits } = await import("../src/disk/block-limits");
    expect(blockLimits(status)).toMatchObject({ logicalBlockSize: 4096, device: `${status.rdevMajor}:${status.rdevMinor}` });
  });
});

describe("alignment from statx, as the kernel reports it (made-up answers, so that equal values cannot hide a swap)", () => {
  const dir = mkdtempSync(join(tmpdir(), "bounce-bench-statx-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, "disk.bin");
  writeFileSync(path, new Uint8Array(PAGE));
  const status = statx(path);

  test("memory and offset alignment stay apart, and a read offset alignment of its own is kept", () => {
    expect(discoverAlignment(path, { ...status, dio: { memAlign: 8, offsetAlign: 512, readOffsetAlign: 2048 } })).toEqual({
      directIo: true,
      memAlign: 8,
      offsetAlign: 512,
      readOffsetAlign: 2048,
      source: "statx",
      sources: {
        memAlign: "statx STATX_DIOALIGN",
        offsetAlign: "statx STATX_DIOALIGN",
        readOffsetAlign: "statx STATX_DIO_READ_ALIGN",
      },
    });
  });

  test("no read offset alignment (STATX_DIO_READ_ALIGN absent) means reads use the offset alignment", () => {
    expect(discoverAlignment(path, { ...status, dio: { memAlign: 4, offsetAlign: 4096, readOffsetAlign: 0 } })).toMatchObject({
      memAlign: 4,
      offsetAlign: 4096,
      readOffsetAlign: 4096,
      sources: { readOffsetAlign: "statx STATX_DIOALIGN (no STATX_DIO_READ_ALIGN: as writes)" },
    });
  });

  test("zeros mean no direct IO at all", () => {
    expect(discoverAlignment(path, { ...status, dio: { memAlign: 0, offsetAlign: 0, readOffsetAlign: 0 } })).toMatchObject({ directIo: false, source: "statx" });
  });

  test("the planner takes a read's block from the read alignment and a write's from the write one", async () => {
    const { plan } = await import("../src/io/planner");
    const { PagedRange } = await import("../src/memory/paged-range");
    const alignment = discoverAlignment(path, { ...status, dio: { memAlign: 8, offsetAlign: 4096, readOffsetAlign: 512 } });
    const segments = [new PagedRange(0, 512, [0])];
    expect(plan({ op: "read", mode: "auto", at: 512, segments, alignment })).toMatchObject({ decision: "direct", blockSize: 512 });
    expect(plan({ op: "write", mode: "auto", at: 512, segments, alignment })).toMatchObject({ decision: "rmw", blockSize: 4096 });
  });
});

describe("scratch disks: made, torn down, reclaimed after a crash (root only)", () => {
  const loop = scratchDiskUnavailable("ext4");
  const why = loop === null ? "" : ` (skipped: disk kind ext4 ${loop})`;

  test.skipIf(loop !== null)(`a crashed run's loop device and mount are reclaimed by the next run, and nothing else is touched${why}`, () => {
    const parent = mkdtempSync(join(tmpdir(), "bounce-bench-reclaim-"));
    try {
      // A process makes an ext4 scratch disk (a loop device, a mount) and is killed before its teardown.
      const child = spawnSync(
        process.execPath,
        ["-e", `const { ScratchDisk } = await import(${JSON.stringify(join(ROOT, "src/host/scratch-disks.ts"))}); const d = ScratchDisk.make({ kind: "ext4", sector: 4096, size: 8 << 20, parent: ${JSON.stringify(parent)} }); console.log(d.dir, d.device); process.kill(process.pid, "SIGKILL");`],
        { encoding: "utf8" },
      );
      const [dir, device] = child.stdout.trim().split(" ");
      expect(child.signal).toBe("SIGKILL");
      expect(readFileSync("/proc/self/mountinfo", "utf8")).toContain(`${dir}/mnt`);
      expect(readFileSync(`/sys/block/${device!.slice(5)}/loop/backing_file`, "utf8")).toContain(dir!);
      // Another process's loop device over a file outside any scratch directory stays.
      const other = join(parent, "not-ours.img");
      writeFileSync(other, new Uint8Array(1 << 20));
      const made = spawnSync("losetup", ["--find", "--show", other], { encoding: "utf8" });
      const otherDevice = made.stdout.trim();
      try {
        expect(reclaimScratchDirs(parent)).toEqual([dir]);
        expect(readFileSync("/proc/self/mountinfo", "utf8")).not.toContain(`${dir}/mnt`);
        expect(existsSync(dir!)).toBe(false);
        expect(spawnSync("losetup", ["--list", "--noheadings", "--output", "BACK-FILE", device!], { encoding: "utf8" }).stdout).not.toContain(dir!);
        expect(spawnSync("losetup", ["--list", "--noheadings", "--output", "BACK-FILE", otherDevice], { encoding: "utf8" }).stdout).toContain(other);
        // The tool writes only its own loop devices: this one is refused, before any IO.
        expect(() => Disk.open(otherDevice, { write: true, direct: true })).toThrow("a block device bounce-bench did not make");
      } finally {
        spawnSync("losetup", ["-d", otherDevice]);
      }
    } finally {
      rmSync(parent, { recursive: true, force: true });
    }
  });

  test.skipIf(loop !== null)(`a scratch disk's remove() unmounts, detaches and deletes${why}`, () => {
    const disk = ScratchDisk.make({ kind: "ext4", sector: 4096, size: 8 << 20 });
    expect(statx(disk.path).dio).toMatchObject({ offsetAlign: 4096 });
    disk.remove();
    expect(existsSync(disk.dir)).toBe(false);
    expect(readFileSync("/proc/self/mountinfo", "utf8")).not.toContain(disk.dir);
    disk.remove(); // idempotent
  });
});
