/**
 * `probe --empirical` on every disk kind this machine can make: the rules it measures for
 * reads and for writes are the kernel's own word where the kernel gives one (statx), the
 * page-cache fallback it reports is what each filesystem does (btrfs buffers misaligned direct
 * IO, tmpfs is the page cache, the others do neither), and the disk it probes is never written:
 * its bytes, its modification time and its directory stay as they were, and on a block device
 * no write call is made at all. Kinds that need root or a missing program skip, saying why.
 */
import { describe, expect, test } from "bun:test";
import { closeSync, openSync, readdirSync, statSync, writeSync } from "node:fs";
import { dirname, join } from "node:path";
import { availableDisks } from "../measure/kernel-oracle";
import { discoverAlignment } from "../src/disk/alignment";
import { probeDirectIo, wasProbed, type DirectionRules, type PageCacheUse } from "../src/disk/direct-io-probe";
import { ScratchDisk, scratchDiskUnavailable } from "../src/host/scratch-disks";
import { PageCacheTrace } from "../src/host/page-cache-trace";
import { closeFd, IO_PWRITEV, ioCounters, O_RDONLY, openFile, statx } from "../src/native";
import { fileBytes, randomBytes, runCliIn, scratchDir } from "./helpers";

/** What each kind does with direct IO that is not block-aligned (measured on Linux 6.18). */
const PAGE_CACHE: Record<string, PageCacheUse> = { file: "never", loop: "never", ext4: "never", xfs: "never", btrfs: "misaligned", tmpfs: "always" };
/**
 * Writes alike, but btrfs buffers every write to a file with data checksums, aligned or not:
 * only the writeback tracepoint (root) sees it, and without it the probe can only tell that the
 * misaligned ones are.
 */
const WRITE_PAGE_CACHE: Record<string, PageCacheUse> = { ...PAGE_CACHE, btrfs: PageCacheTrace.unavailable() === null ? "always" : "misaligned" };

const { disks, skipped } = availableDisks();

describe("probe --empirical on every disk kind", () => {
  for (const kind of disks) {
    const name = `${kind.kind}${kind.sector === undefined ? "" : ` (${kind.sector}-byte sectors)`}`;
    test(`${name}: the kernel's rules per direction, its page-cache fallback, and the disk never written`, () => {
      using scratch = ScratchDisk.make({ kind: kind.kind, sector: kind.sector, size: 2 ** 20 });
      const data = randomBytes(2 ** 20, 7 + (kind.sector ?? 0));
      // Buffered, so the probe meets dirty pages as it would after any writer (a loop device
      // made here is the only device written).
      const writer = openSync(scratch.path, "r+");
      writeSync(writer, data, 0, data.length, 0);
      closeSync(writer);
      const before = { bytes: fileBytes(scratch.path), mtime: statSync(scratch.path).mtimeMs, listing: readdirSync(dirname(scratch.path)).sort() };
      const writesBefore = ioCounters[IO_PWRITEV]!;
      const fd = openFile(scratch.path, O_RDONLY);
      const status = statx(fd);
      const statxSays = discoverAlignment(fd, status);
      const probed = probeDirectIo(scratch.path, fd, status);
      closeFd(fd);

      expect(wasProbed(probed.read)).toBe(true);
      const read = probed.read as DirectionRules;
      expect(read.subject).toContain(status.type === "block-device" ? "the device's blocks" : "the file's data");
      if (PAGE_CACHE[kind.kind] === "never") {
        // Where the kernel really checks, what it takes is what statx says it takes; the memory
        // alignment is probed with two iovecs, because one inside a page passes unchecked.
        expect({ offsetAlign: read.offsetAlign, memAlign: read.memAlign }).toEqual({ offsetAlign: statxSays.readOffsetAlign, memAlign: statxSays.memAlign });
      }
      expect({ read: read.pageCache, evidence: read.pageCacheEvidence }).toMatchObject({ read: PAGE_CACHE[kind.kind] });

      if (status.type === "block-device") {
        expect(probed.write).toEqual({ unavailable: expect.stringContaining("writes no block device it did not make") });
        expect(ioCounters[IO_PWRITEV]).toBe(writesBefore); // not one write call
      } else {
        const write = probed.write as DirectionRules;
        expect(wasProbed(write)).toBe(true);
        expect(write.subject).toBe(`an unnamed scratch file in ${dirname(scratch.path)}`);
        if (PAGE_CACHE[kind.kind] === "never") expect({ offsetAlign: write.offsetAlign, memAlign: write.memAlign }).toEqual({ offsetAlign: statxSays.offsetAlign, memAlign: statxSays.memAlign });
        expect({ write: write.pageCache, evidence: write.pageCacheEvidence }).toMatchObject({ write: WRITE_PAGE_CACHE[kind.kind] });
        expect(ioCounters[IO_PWRITEV]).toBeGreaterThan(writesBefore); // the writes went somewhere: the scratch file
      }
      expect(fileBytes(scratch.path)).toEqual(before.bytes);
      expect(statSync(scratch.path).mtimeMs).toBe(before.mtime);
      expect(readdirSync(dirname(scratch.path)).sort()).toEqual(before.listing); // the scratch file left no name
    });
  }
  for (const line of skipped) test.skip(`${line} (skipped)`, () => {});
});

describe("probe --empirical on the command line", () => {
  const dir = scratchDir("direct-io-probe");
  const hole = join(dir, "hole.img");

  test("a file of holes is probed on a scratch file with data; JSON names each value's source and the page cache", () => {
    expect(runCliIn(dir, "image", "create", hole, "--size", "1M").code).toBe(0);
    const { code, stdout } = runCliIn(dir, "probe", hole, "--empirical", "--json");
    expect(code).toBe(0);
    const doc = JSON.parse(stdout);
    // What statx says of this file stands; the measurements of another file are shown beside it.
    expect(doc.source).toBe("statx");
    expect(doc.sources.readOffsetAlign).toContain("statx");
    expect(doc.empirical.read.subject).toBe(`an unnamed scratch file in ${dir}`); // a hole would take anything
    expect(doc.empirical.write.subject).toBe(`an unnamed scratch file in ${dir}`);
    expect(doc.empirical.write.differsFromStatx).toBeNull(); // here they agree
    expect(doc.pageCache).toEqual({ read: "never", write: "never" }); // /tmp is ext4 here
    expect(fileBytes(hole).every((b) => b === 0)).toBe(true);
    expect(readdirSync(dir)).toEqual(["hole.img"]);
  });

  test("the table says what was measured on what", () => {
    const { code, stdout } = runCliIn(dir, "probe", hole, "--empirical");
    expect(code).toBe(0);
    expect(stdout).toMatch(/measured writes +took length \d+ and memory offset \d+ on an unnamed scratch file/);
    expect(stdout).toMatch(/page cache: never/);
  });
});

describe("a measurement of another file never overrides what statx says of this one", () => {
  const why = scratchDiskUnavailable("xfs");
  test.skipIf(why !== null)(`a reflinked XFS file: statx's 4096 for writes stands, the scratch file's 512 is shown beside it, and why${why === null ? "" : ` (skipped: ${why})`}`, () => {
    using scratch = ScratchDisk.make({ kind: "xfs", sector: 512, size: 2 ** 20, reflink: true });
    const { code, stdout } = runCliIn(dirname(scratch.path), "probe", scratch.path, "--empirical", "--json");
    expect(code).toBe(0);
    const doc = JSON.parse(stdout);
    expect(doc).toMatchObject({ source: "statx", offsetAlign: 4096, readOffsetAlign: 512 });
    expect(doc.empirical.write.subject).toContain("an unnamed scratch file");
    expect(doc.empirical.write.offsetAlign).toBe(512); // the scratch file shares no extents
    expect(doc.empirical.write.differsFromStatx).toContain("which stands");
    expect(doc.empirical.read.differsFromStatx).toBeNull(); // reads measured on this file's data agree
  });
});
