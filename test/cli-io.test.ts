/**
 * `probe`, `plan` and `io` through the real executable on scratch files: JSON fields of the
 * contract, bytes on disk and in the guest image afterwards (read with plain node:fs), and bad
 * input that gets exit 2 with one line and leaves every file as it was.
 */
import { Disk } from "../src/disk/disk";
import { beforeEach, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { release } from "node:os";
import { join } from "node:path";
import { fileBytes, PAGE, randomBytes, runCliIn, scratchDir } from "./helpers";

const dir = scratchDir("cli-io");
const guestPath = join(dir, "guest.img");
const diskPath = join(dir, "disk.bin");
const run = (...args: string[]) => runCliIn(dir, ...args);
const json = (...args: string[]) => {
  const result = run(...args, "--json");
  return { ...result, doc: JSON.parse(result.stdout) };
};
let guest: Uint8Array<ArrayBuffer>;
let disk: Uint8Array<ArrayBuffer>;

beforeEach(() => {
  guest = randomBytes(32 * PAGE, 5);
  disk = randomBytes(64 * PAGE, 6);
  writeFileSync(guestPath, guest);
  writeFileSync(diskPath, disk);
});

function expectUnchanged(): void {
  expect(fileBytes(guestPath)).toEqual(guest);
  expect(fileBytes(diskPath)).toEqual(disk);
}

describe("probe", () => {
  test("reports how the kernel treats direct IO, with its source", () => {
    const { code, doc } = json("probe", diskPath);
    expect(code).toBe(0);
    expect(Object.keys(doc)).toEqual(expect.arrayContaining(["path", "directIo", "memAlign", "offsetAlign", "readOffsetAlign", "source"]));
    expect(doc.directIo).toBe(true);
    expect(doc.source).toBe("statx");
    expect(doc.offsetAlign).toBeGreaterThanOrEqual(512);
    expect(typeof doc.fsType).toBe("string");
    const empirical = json("probe", diskPath, "--empirical").doc;
    expect(empirical.source).toBe("statx"); // the kernel's word about this file stands
    expect(empirical.empirical.read.offsetAlign).toBe(doc.readOffsetAlign); // and the measurement agrees here
    expect(empirical.empirical.read.differsFromStatx).toBeNull();
  });

  test("reports the rule of each direction, the block layer's limits from sysfs and the kernel", () => {
    const { doc } = json("probe", diskPath);
    expect(doc.rules.read).toMatchObject({ memAlign: doc.memAlign, offsetAlign: doc.readOffsetAlign, lengthMultiple: doc.readOffsetAlign });
    expect(doc.rules.write).toMatchObject({ memAlign: doc.memAlign, offsetAlign: doc.offsetAlign, lengthMultiple: doc.offsetAlign });
    // Each value names where it came from: this file's statx.
    expect(doc.rules.write.sources).toMatchObject({ memAlign: doc.sources.memAlign, offsetAlign: doc.sources.offsetAlign });
    expect(doc.rules.read.sources.offsetAlign).toBe(doc.sources.readOffsetAlign);
    expect(doc.sources.memAlign).toContain("STATX_DIOALIGN");
    expect(doc.rules.write.lengthMultipleTaken).toBeLessThanOrEqual(doc.rules.write.lengthMultiple);
    // Measured on this disk, each with how: beyond statx, what this kernel takes here.
    expect(doc.kernelChecks).toMatchObject({ lengthsByMemory: expect.any(Boolean), onePageAnyAddress: expect.any(Boolean) });
    expect(doc.kernelChecks.sources.lengthsByMemory).toMatch(/^(took|refused|not observable|not measured)/);
    expect(doc.rules.write.lengthMultipleTaken).toBe(doc.kernelChecks.lengthsByMemory ? Math.min(doc.memAlign, doc.offsetAlign) : doc.offsetAlign);
    expect(doc.pageCache).toBeNull(); // measured only with --empirical
    expect(doc.kernel).toBe(release());
    if (doc.blockLimits !== null) {
      // The filesystem's block is a multiple of the device's, and memory alignment covers DMA's.
      expect(doc.offsetAlign % doc.blockLimits.logicalBlockSize).toBe(0);
      expect(doc.blockLimits.maxSegments).toBeGreaterThan(0);
      if (doc.blockLimits.dmaAlignment !== null) expect(doc.memAlign % doc.blockLimits.dmaAlignment).toBe(0);
    }
  });

  test("a missing path or a directory is exit 2", () => {
    expect(run("probe", join(dir, "missing")).code).toBe(2);
    expect(run("probe", dir).code).toBe(2);
  });
});

describe("plan", () => {
  test("the SPEC example: a descriptor boundary inside a 4096-byte sector bounces", () => {
    const { code, doc } = json("plan", "--seg", "0@512+3584", "--seg", "2@0+512", "--align", "4096");
    expect(code).toBe(0);
    expect(doc).toMatchObject({
      rules: "kernel",
      alignment: 512,
      aligned: false,
      decision: "bounce",
      iovecs: [
        { gpa: 512, len: 3584 },
        { gpa: 8192, len: 512 },
      ],
      bouncePages: 1,
      segments: [
        { offset: 512, len: 3584, gpns: [0] },
        { offset: 0, len: 512, gpns: [2] },
      ],
    });
    expect(doc.reasons).toEqual(["iovec 0: length 3584 is not a multiple of the 4096-byte block", "iovec 1: length 512 is not a multiple of the 4096-byte block"]);
    expect(doc.audit).toEqual({ rules: "seed", decision: "bounce", copiedBytes: 4096 });
  });

  test("without --disk, a 4 KiB-sector disk with 512-byte memory alignment; with --disk, the disk's own", () => {
    expect(json("plan", "--gpns", "0-1", "--offset", "512", "--len", "1024").doc).toMatchObject({
      alignment: 512,
      blockSize: 4096,
      decision: "rmw",
      diskAlignment: { mem: 512, offset: 4096, source: "default" },
    });
    expect(json("plan", "--gpns", "0-1", "--offset", "512", "--len", "1024", "--disk", diskPath).doc).toMatchObject({
      alignment: 512,
      decision: "direct",
      reasons: [],
      diskAlignment: { source: "statx" },
    });
  });

  test("the table for people names the decision and the reasons", () => {
    const result = run("plan", "--seg", "0@512+3584", "--seg", "2@0+512", "--align", "4096");
    expect(result.stdout).toContain("decision   bounce");
    expect(result.stdout).toContain("iovec 0: length 3584 is not a multiple of the 4096-byte block");
    const seed = run("plan", "--seg", "0@512+3584", "--seg", "2@0+512", "--align", "4096", "--rules", "seed");
    expect(seed.stdout).toContain("segment 0: memory offset 512 is not a multiple of 4096");
  });
});

describe("io", () => {
  const io = (...args: string[]) => json("io", "--guest", guestPath, "--disk", diskPath, ...args);

  test("write: the JSON carries the documented fields and the disk holds the guest bytes", () => {
    const { code, doc } = io("--op", "write", "--seg", "3@100+1000", "--seg", "5-6", "--at", "777");
    expect(code).toBe(0);
    for (const key of ["op", "mode", "decision", "reasons", "bytes", "at", "elapsedNs", "diskAlignment", "callCount"]) expect(doc).toHaveProperty(key);
    expect(doc).toMatchObject({ op: "write", mode: "auto", decision: "rmw", bytes: 1000 + 2 * PAGE, at: 777, verified: true });
    expect(doc.diskAlignment).toEqual({ memAlign: 512, offsetAlign: 512, readOffsetAlign: 512, source: "statx", mem: 512, offset: 512, readOffset: 512 });
    // Schema 1's names, kept for one version, carry the same values.
    expect(doc.alignment).toEqual(doc.diskAlignment);
    expect(doc.calls).toBe(doc.callCount);
    disk.set(guest.subarray(3 * PAGE + 100, 3 * PAGE + 1100), 777);
    disk.set(guest.subarray(5 * PAGE, 7 * PAGE), 777 + 1000);
    expectUnchanged();
  });

  test("read: the guest pages hold the disk bytes", () => {
    const { code, doc } = io("--op", "read", "--gpns", "9,4", "--offset", "7", "--len", "5000", "--at", "4096");
    expect(code).toBe(0);
    expect(doc.decision).toBe("bounce");
    guest.set(disk.subarray(PAGE, PAGE + 4089), 9 * PAGE + 7);
    guest.set(disk.subarray(PAGE + 4089, PAGE + 5000), 4 * PAGE);
    expectUnchanged();
  });

  for (const mode of ["auto", "direct", "bounce", "buffered"]) {
    test(`an aligned write and read back in mode ${mode}`, () => {
      expect(io("--op", "write", "--gpns", "1-2", "--at", "8192", "--mode", mode).code).toBe(0);
      disk.set(guest.subarray(PAGE, 3 * PAGE), 8192);
      expect(io("--op", "read", "--gpns", "20-21", "--at", "8192", "--mode", mode).code).toBe(0);
      guest.set(disk.subarray(8192, 8192 + 2 * PAGE), 20 * PAGE);
      expectUnchanged();
    });
  }

  test("a forced direct IO the kernel refuses: exit 1 naming EINVAL and the call, nothing changed", () => {
    for (const op of ["read", "write"]) {
      const result = run("io", "--guest", guestPath, "--disk", diskPath, "--op", op, "--gpns", "1", "--at", "100", "--mode", "direct");
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(/^bounce-bench: p(read|write)v\(.*\): EINVAL \(Invalid argument\); the kernel refused/);
      expectUnchanged();
    }
  });

  test("a forced direct write says whether the disk changed before the kernel refused it, and it is true", () => {
    // Refused at once (an unaligned disk offset): nothing written, and it says so.
    const untouched = io("--op", "write", "--gpns", "1", "--at", "100", "--mode", "direct");
    expect(untouched.code).toBe(1);
    expect(untouched.doc.error).toMatchObject({ code: "EINVAL", diskChanged: false });
    expect(untouched.doc.error.message).toContain("nothing on the disk changed");
    expectUnchanged();
    // Refused part way (many requests, the last one misaligned): what it wrote, it says it wrote.
    const big = join(dir, "big-guest.img");
    writeFileSync(big, randomBytes(1100 * PAGE, 9));
    const bigDisk = join(dir, "big-disk.bin");
    writeFileSync(bigDisk, new Uint8Array(1100 * PAGE));
    const partial = JSON.parse(run("io", "--guest", big, "--disk", bigDisk, "--op", "write", "--mode", "direct", "--at", "0", "--seg", "0-512/2", "--seg", "600@8+512", "--json").stdout);
    expect(partial.error.code).toBe("EINVAL");
    const changed = !fileBytes(bigDisk).every((byte) => byte === 0);
    expect(partial.error.diskChanged).toBe(changed);
    if (changed) expect(partial.error.message).toContain("the disk DID change before the refusal");
  });

  test("a forced direct read says whether guest memory changed before the kernel refused it, and how many bytes: the truth", () => {
    // Refused at once: nothing read, and it says so.
    const untouched = io("--op", "read", "--gpns", "1", "--at", "100", "--mode", "direct");
    expect(untouched.doc.error).toMatchObject({ code: "EINVAL", diskChanged: false, guestChanged: false, guestBytesChanged: 0 });
    expect(untouched.doc.error.message).toContain("no guest byte changed");
    expectUnchanged();
    // Refused part way: the requests before the refused one were read into guest memory.
    const big = join(dir, "big-guest-read.img");
    const before = new Uint8Array(1100 * PAGE);
    writeFileSync(big, before);
    const bigDisk = join(dir, "big-disk-read.bin");
    const diskBytes = randomBytes(1100 * PAGE, 11);
    writeFileSync(bigDisk, diskBytes);
    const partial = JSON.parse(run("io", "--guest", big, "--disk", bigDisk, "--op", "read", "--mode", "direct", "--at", "0", "--seg", "0-512/2", "--seg", "600-601@8+4096", "--json").stdout);
    expect(partial.error.code).toBe("EINVAL");
    const after = fileBytes(big);
    let changed = 0;
    for (let i = 0; i < after.length; i++) if (after[i] !== before[i]) changed++;
    expect(partial.error).toMatchObject({ guestChanged: changed > 0, guestBytesChanged: changed, diskChanged: false });
    if (changed > 0) expect(partial.error.message).toContain(`guest memory DID change before the refusal (${changed} bytes)`);
    expect(fileBytes(bigDisk)).toEqual(diskBytes);
  });

  test("a simulated 4096-byte disk refuses what a 512-byte disk would take; auto goes read-modify-write", () => {
    const args = ["--op", "write", "--gpns", "1", "--at", "512", "--align", "4096"];
    const refused = io(...args, "--mode", "direct");
    expect(refused.code).toBe(1);
    expect(refused.doc.error.code).toBe("EINVAL");
    expect(refused.doc.error.message).toContain("disk range 512+4096 is not whole 4096-byte blocks");
    expectUnchanged();
    expect(io(...args).doc).toMatchObject({ decision: "rmw", alignment: { source: "override", offset: 4096, mem: 512 } });
    disk.set(guest.subarray(PAGE, 2 * PAGE), 512);
    expectUnchanged();
  });

  test("a descriptor boundary inside a simulated 4096-byte sector: auto bounces (the documented rule); direct does what this kernel was measured to do on this disk", () => {
    const args = ["--op", "write", "--seg", "0@512+3584", "--seg", "2@0+512", "--at", "0", "--align", "4096"];
    // Iovecs of 3584 and 512 bytes, each at a 512-aligned address: taken where the kernel checks
    // lengths against the memory alignment on this disk, refused where it wants whole blocks.
    using real = Disk.open(diskPath, { write: false, direct: true });
    const lax = real.kernelChecks.lengthsByMemory;
    const direct = io(...args, "--mode", "direct");
    if (lax) {
      expect(direct.code).toBe(0);
    } else {
      expect([direct.code, direct.doc.error.code]).toEqual([1, "EINVAL"]);
      expect(direct.doc.error.message).toContain("iovec 0 (3584 bytes at memory offset 512 in its page): the length is not a multiple of 4096");
      expectUnchanged();
    }
    expect(io(...args).doc).toMatchObject({ decision: "bounce", alignment: { source: "override", offset: 4096 } });
    disk.set(guest.subarray(512, PAGE), 0);
    disk.set(guest.subarray(2 * PAGE, 2 * PAGE + 512), 3584);
    expectUnchanged();
  });

  test("--fua writes land", () => {
    expect(io("--op", "write", "--gpns", "1", "--at", "0", "--fua").code).toBe(0);
    disk.set(guest.subarray(PAGE, 2 * PAGE), 0);
    expectUnchanged();
  });
});

test("plan --disk on a file without direct IO (procfs here; ext4 data=journal alike) is exit 2 pointing at --mode buffered, as io is", () => {
  const refused = run("plan", "--disk", "/proc/self/status", "--gpns", "0");
  expect(refused.code).toBe(2);
  expect(refused.stderr).toContain("its filesystem does no direct IO");
  expect(refused.stderr).toContain("--mode buffered");
  expect(run("plan", "--disk", "/proc/self/status", "--gpns", "0", "--mode", "buffered").code).toBe(0);
});

test("plan's text for a long scatter-gather list shows its head and says how many there are (--json has every one)", () => {
  const segs = Array.from({ length: 2000 }, (_, i) => ["--seg", `${i * 2}@8+100`]).flat();
  const text = run("plan", ...segs);
  expect(text.code).toBe(0);
  expect(text.stdout).toContain("... 2000 segments in all (--json lists every one)");
  expect(text.stdout.split("\n").length).toBeLessThan(400);
  expect(json("plan", ...segs).doc.segments).toHaveLength(2000);
});

describe("bad input: exit 2, one line, nothing read or written", () => {
  const base = () => ["io", "--guest", guestPath, "--disk", diskPath];
  const cases: [string, string[], string][] = [
    ["GPN past the guest's end", [...base(), "--op", "write", "--gpns", "32", "--at", "0"], "GPN 32 is past the end of guest memory"],
    ["length beyond the range", [...base(), "--op", "write", "--gpns", "1", "--len", "5000", "--at", "0"], "do not fit in 1 page"],
    ["non-power-of-two alignment", [...base(), "--op", "write", "--gpns", "1", "--at", "0", "--align", "3000"], "not a power of two"],
    ["offset past the disk's end", [...base(), "--op", "read", "--gpns", "1", "--at", String(64 * PAGE)], "past the end of disk"],
    ["malformed segment", [...base(), "--op", "write", "--seg", "1@@2", "--at", "0"], "--seg"],
    ["backwards GPN range", [...base(), "--op", "write", "--gpns", "5-2", "--at", "0"], "runs backwards"],
    ["bad size", [...base(), "--op", "write", "--gpns", "1", "--at", "-5"], "--at"],
    ["huge value", [...base(), "--op", "write", "--gpns", "1", "--at", "0x20000000000000"], "is 2^53 or more"],
    ["unknown mode", [...base(), "--op", "write", "--gpns", "1", "--at", "0", "--mode", "fast"], "--mode"],
    ["missing --op", [...base(), "--gpns", "1", "--at", "0"], "--op"],
    ["no buffers", [...base(), "--op", "write", "--at", "0"], "no buffers given"],
    ["--seg with --gpns", [...base(), "--op", "write", "--seg", "1", "--gpns", "2", "--at", "0"], "cannot be combined"],
    ["--fua on a read", [...base(), "--op", "read", "--gpns", "1", "--at", "0", "--fua"], "--fua applies to writes only"],
    ["missing guest image", ["io", "--guest", join(dir, "none.img"), "--disk", diskPath, "--op", "write", "--gpns", "1", "--at", "0"], "ENOENT"],
    ["a directory as disk", ["io", "--guest", guestPath, "--disk", dir, "--op", "write", "--gpns", "1", "--at", "0"], "not a regular file"],
    ["plan: non-power-of-two alignment", ["plan", "--gpns", "1", "--align", "12"], "not a power of two"],
    ["plan: empty IO", ["plan", "--gpns", "1", "--len", "0"], "the IO is empty"],
    ["plan: lists that add up past the command's page cap", ["plan", ...Array.from({ length: 10 }, () => ["--seg", "0-8388606/2"]).flat()], "more pages than the 4194304 one command may name in all"],
    // A simulated disk may only be stricter than the real one (ext4 here: 512, or more).
    ...[1, 8, 256].flatMap((align): [string, string[], string][] => [
      [`--align ${align} below the disk's own`, [...base(), "--op", "write", "--gpns", "1", "--at", "0", "--mode", "auto", "--align", String(align)], `--align ${align} is below the disk's own block (offset alignment`],
      [`plan --disk --align ${align}`, ["plan", "--gpns", "1", "--disk", diskPath, "--align", String(align)], "a simulated disk may only be stricter"],
    ]),
  ];
  for (const [name, args, fragment] of cases) {
    test(name, () => {
      const result = run(...args);
      expect(result.code).toBe(2);
      expect(result.stderr).toMatch(/^bounce-bench: [^\n]+\n$/);
      expect(result.stderr).toContain(fragment);
      expectUnchanged();
    });
  }

  test("a guest image that is not a page multiple, or empty", () => {
    const odd = join(dir, "odd.img");
    writeFileSync(odd, new Uint8Array(PAGE + 3));
    expect(run("io", "--guest", odd, "--disk", diskPath, "--op", "write", "--gpns", "0", "--at", "0").stderr).toContain("whole number of 4096-byte pages");
    writeFileSync(odd, "");
    expect(run("io", "--guest", odd, "--disk", diskPath, "--op", "write", "--gpns", "0", "--at", "0").code).toBe(2);
    expectUnchanged();
  });

  test("no command creates a file it was not asked to create", () => {
    const sub = join(dir, "empty-dir");
    mkdirSync(sub, { recursive: true });
    run("io", "--guest", join(sub, "g.img"), "--disk", join(sub, "d.bin"), "--op", "write", "--gpns", "0", "--at", "0");
    expect(existsSync(join(sub, "g.img")) || existsSync(join(sub, "d.bin"))).toBe(false);
  });
});
