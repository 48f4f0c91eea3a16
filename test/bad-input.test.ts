/**
 * Bad input everywhere: generated corpora of malformed values for every parser, every command
 * and the library's entry points. Each gets a typed input error (exit 2 on the command line,
 * one line, no stack), and no byte is written anywhere. Out-of-range GPNs never reach the
 * kernel: the native layer counts every vectored call and io_uring submission, and those counts
 * do not move.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { main } from "../cli/main";
import {
  BounceBenchError,
  BounceBuffer,
  BounceBufferTracker,
  Disk,
  executePlan,
  GuestMemory,
  OwnedRequestBuffers,
  PagedRange,
  plan,
  RequestBuffers,
  IoQueue,
} from "../src";
import { ioCounters } from "../src/native";
import { parseGpnList, parseSegment, parseSize } from "../src/base/value-parsers";
import { fileBytes, PAGE, randomBytes, ROOT, scratchDir } from "./helpers";

const dir = scratchDir("bad-input");
const guestPath = join(dir, "guest.img");
const diskPath = join(dir, "disk.bin");
const GUEST_PAGES = 16;
const guest = randomBytes(GUEST_PAGES * PAGE, 1);
const disk = randomBytes(64 * PAGE, 2);
let memory: GuestMemory;

beforeAll(() => {
  writeFileSync(guestPath, guest);
  writeFileSync(diskPath, disk);
  memory = GuestMemory.open(guestPath);
});
afterAll(() => memory.release());

const counters = () => Array.from(ioCounters);
const expectUntouched = () => {
  expect(fileBytes(guestPath)).toEqual(guest);
  expect(fileBytes(diskPath)).toEqual(disk);
};

/** Runs the CLI in-process and collects its output. */
async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  const code = await main(args, { stdout: (text) => void (stdout += text), stderr: (text) => void (stderr += text) });
  return { code, stdout, stderr };
}

/** Text that is certainly not a size: something bad glued to something plausible. */
const badSize = fc.oneof(
  fc.constantFrom("", "-1", "1.5", "1e3", "0x", "k", "4kb", "4 k b", "NaN", "Infinity", "9007199254740992", "0x20000000000000", "8388608g", "1,000", "--5", "0b101"),
  fc.tuple(fc.constantFrom("4", "0x10", "512", ""), fc.constantFrom("q", ".", "-", "kk", "x1", " z", "KB", "/")).map(([a, b]) => a + b),
);
const badGpns = fc.oneof(
  fc.constantFrom("", ",", "1,,2", "5-2", "a", "-1", "1-", "3/2", "0-4/0", "0-99999999", "1;2", "0x", "1 2-", "9007199254740992"),
  fc.tuple(fc.constantFrom("0", "1-3", "0x4"), fc.constantFrom(",", "-", "/", "@", "+", "x")).map(([a, b]) => a + b),
);

describe("parsers: a generated corpus of malformed values", () => {
  test("sizes", () => {
    fc.assert(
      fc.property(badSize, (text) => {
        try {
          parseSize(text, "--v");
          throw new Error(`accepted ${JSON.stringify(text)}`);
        } catch (error) {
          expect(error).toBeInstanceOf(BounceBenchError);
          expect((error as BounceBenchError).kind).toBe("input");
          expect((error as Error).message.startsWith("--v: ")).toBe(true);
        }
      }),
      { numRuns: 300 },
    );
  });

  test("any string is either a valid size or a typed input error, never a crash", () => {
    fc.assert(
      fc.property(fc.string(), (text) => {
        try {
          const value = parseSize(text, "--v");
          expect(Number.isSafeInteger(value) && value >= 0).toBe(true);
        } catch (error) {
          expect((error as BounceBenchError).kind).toBe("input");
        }
      }),
      { numRuns: 500 },
    );
  });

  test("GPN lists and segments", () => {
    fc.assert(
      fc.property(badGpns, (text) => {
        expect(() => parseGpnList(text, "--gpns")).toThrow(BounceBenchError);
        expect(() => parseSegment(`${text}@512+100`, "--seg")).toThrow(BounceBenchError);
      }),
      { numRuns: 300 },
    );
    fc.assert(
      fc.property(fc.string(), (text) => {
        for (const parse of [() => parseGpnList(text, "--gpns"), () => parseSegment(text, "--seg")]) {
          try {
            parse();
          } catch (error) {
            expect((error as BounceBenchError).kind).toBe("input");
          }
        }
      }),
      { numRuns: 500 },
    );
  });
});

describe("the command line: exit 2, one line, nothing written, nothing sent to the kernel", () => {
  const flags = fc.oneof(
    badSize.map((v) => ["--at", v]),
    badSize.map((v) => ["--len", v, "--gpns", "1"]),
    badGpns.map((v) => ["--gpns", v]),
    badGpns.map((v) => ["--seg", `${v}@0+512`]),
    fc.constantFrom(["--align", "3000"], ["--align", "0"], ["--align", "-4096"], ["--align", "12k"], ["--mode", "fast"], ["--op", "erase"]),
    fc.constantFrom(["--gpns", String(GUEST_PAGES)], ["--gpns", "0,9999999"], ["--gpns", "0", "--offset", "4096", "--len", "1"]),
    fc.constantFrom(["--at", String(64 * PAGE)], ["--at", String(64 * PAGE - 100), "--gpns", "0"], ["--at", "0x20000000000000"]),
  );

  test("io with generated bad values", async () => {
    await fc.assert(
      fc.asyncProperty(flags, fc.constantFrom("read", "write"), async (bad, op) => {
        const args = ["io", "--guest", guestPath, "--disk", diskPath, "--op", op, "--gpns", "1", "--at", "0"];
        // A later flag wins in commander, so the bad value replaces the good one.
        const before = counters();
        const result = await cli(...args, ...bad);
        expect(result.code).toBe(2);
        expect(result.stderr).toMatch(/^bounce-bench: [^\n]+\n$/);
        expect(result.stderr).not.toContain("    at ");
        expect(counters()).toEqual(before);
        expectUntouched();
      }),
      { numRuns: 120 },
    );
  });

  test("plan with generated bad values", async () => {
    await fc.assert(
      fc.asyncProperty(flags, async (bad) => {
        const result = await cli("plan", "--gpns", "1", ...bad);
        // plan has no guest memory: a GPN past the guest's end is not bad input for it.
        if (result.code === 0) return;
        expect(result.code).toBe(2);
        expect(result.stderr).toMatch(/^bounce-bench: [^\n]+\n$/);
      }),
      { numRuns: 120 },
    );
  });

  test("paths: missing, a directory, an empty or odd-sized guest image, a read-only disk", async () => {
    mkdirSync(join(dir, "a-dir"), { recursive: true });
    writeFileSync(join(dir, "empty.img"), "");
    writeFileSync(join(dir, "odd.img"), new Uint8Array(PAGE + 1));
    const cases: [string[], string][] = [
      [["--guest", join(dir, "missing.img"), "--disk", diskPath], "ENOENT"],
      [["--guest", join(dir, "a-dir"), "--disk", diskPath], "EISDIR"],
      [["--guest", join(dir, "empty.img"), "--disk", diskPath], "empty"],
      [["--guest", join(dir, "odd.img"), "--disk", diskPath], "whole number of 4096-byte pages"],
      [["--guest", guestPath, "--disk", join(dir, "missing.bin")], "ENOENT"],
      [["--guest", guestPath, "--disk", join(dir, "a-dir")], "not a regular file"],
      [["--guest", guestPath, "--disk", join(dir, "empty.img")], "past the end of disk"],
    ];
    for (const [paths, fragment] of cases) {
      const result = await cli("io", ...paths, "--op", "write", "--gpns", "0", "--at", "0");
      expect(result.code).toBe(2);
      expect(result.stderr).toContain(fragment);
    }
    expectUntouched();
  });

  /** Root ignores file modes: the test runs the command as nobody, which needs setpriv when we are root. */
  const asRoot = process.getuid?.() === 0;
  const cannotDrop = (() => {
    if (!asRoot) return null;
    const probe = Bun.spawnSync(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "true"]);
    return probe.exitCode === 0 ? null : `cannot drop privileges here (${probe.stderr.toString().trim() || "setpriv failed"})`;
  })();
  test.skipIf(cannotDrop !== null)(`a read-only disk for a write (run as an unprivileged user)${cannotDrop === null ? "" : ` (skipped: ${cannotDrop})`}`, () => {
    const sub = join(dir, "ro");
    mkdirSync(sub, { recursive: true });
    chmodSync(sub, 0o777);
    writeFileSync(join(sub, "guest.img"), guest);
    chmodSync(join(sub, "guest.img"), 0o666);
    writeFileSync(join(sub, "disk.bin"), disk);
    chmodSync(join(sub, "disk.bin"), 0o444);
    const command = [process.execPath, join(ROOT, "cli/bounce-bench.ts"), "io", "--guest", "guest.img", "--disk", "disk.bin", "--op", "write", "--gpns", "0", "--at", "0"];
    const asNobody = asRoot ? ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", ...command] : command;
    const result = Bun.spawnSync(asNobody, { cwd: sub, env: { ...process.env, HOME: sub } });
    expect(result.exitCode).toBe(2);
    expect(result.stderr.toString()).toBe("bounce-bench: disk disk.bin: EACCES (Permission denied)\n");
    expect(fileBytes(join(sub, "disk.bin"))).toEqual(disk);
  });
});

describe("out-of-range GPNs never reach the kernel", () => {
  const segmentsArbitrary = fc.array(
    fc.record({ gpns: fc.array(fc.integer({ min: 0, max: 2 * GUEST_PAGES }), { minLength: 1, maxLength: 4 }), a: fc.nat(), b: fc.nat() }),
    { minLength: 1, maxLength: 3 },
  );

  for (const engine of ["sync", "uring"] as const) {
    test(`executePlan over the ${engine} transport, random page lists`, async () => {
      using target = Disk.open(diskPath, { write: true, direct: true });
      using queue = engine === "uring" ? new IoQueue(4) : null;
      await fc.assert(
        fc.asyncProperty(segmentsArbitrary, fc.constantFrom("read", "write"), fc.constantFrom("auto", "bounce", "direct"), async (specs, op, mode) => {
          const segments = specs.map(({ gpns, a, b }) => {
            const offset = a % (gpns.length * PAGE);
            return new PagedRange(offset, 1 + (b % (gpns.length * PAGE - offset)), gpns);
          });
          const bad = segments.some((segment) => segment.gpns().some((gpn) => gpn >= GUEST_PAGES));
          const decided = plan({ op, mode, at: 0, segments, alignment: target.alignment });
          const before = counters();
          const run = executePlan(decided, memory, target, queue === null ? {} : { queue });
          if (!bad) {
            // Good pages: the IO goes ahead (the kernel may still refuse a forced direct one).
            const settled = queue === null ? await run.then(() => null, (e) => e) : (await queue.drive([run]))[0]!;
            void settled;
            return;
          }
          const error = await run.then(() => null, (e: unknown) => e as BounceBenchError);
          expect(error?.code).toBe("GUEST_ACCESS");
          expect(counters()).toEqual(before);
        }),
        { numRuns: 150 },
      );
      writeFileSync(diskPath, disk); // the good writes above changed it; restore for the other tests
      memory.write(0, guest);
      memory.sync();
    });
  }

  test("lock refuses before building any iovec; linear over absent pages fails on first touch", () => {
    const before = counters();
    expect(() => new RequestBuffers(memory, new PagedRange(0, 2 * PAGE, [0, GUEST_PAGES]), true).lock(true)).toThrow("past the end of guest memory");
    expect(() => OwnedRequestBuffers.linear(GUEST_PAGES * PAGE - 100, 200, true).buffer(memory).reader().readBytes()).toThrow("past the end");
    expect(counters()).toEqual(before);
  });
});

describe("library entry points: bad numbers are typed input errors, never a crash", () => {
  const junk = fc.constantFrom(-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 2 ** 53, 2 ** 60, -0.5);

  test("every entry point", () => {
    fc.assert(
      fc.property(junk, (n) => {
        const calls: (() => unknown)[] = [
          () => new PagedRange(n, 10, [1]),
          () => new PagedRange(0, n, [1]),
          () => new PagedRange(0, 10, [1]).subrange(n, 1),
          () => memory.read(n, new Uint8Array(4)),
          () => memory.fill(0, n, 1),
          () => memory.fill(n, 1, 1),
          () => memory.page(n),
          () => memory.view(n, 4),
          () => memory.hostAddress(n),
          () => new RequestBuffers(memory, new PagedRange(0, PAGE, [1]), true).isAligned(n),
          () => new RequestBuffers(memory, new PagedRange(0, PAGE, [1]), true).reader().skip(n),
          () => OwnedRequestBuffers.linear(n, 10, true),
          () => OwnedRequestBuffers.newUnaligned([1], n, 10),
          () => new BounceBuffer(n),
          () => new BounceBufferTracker(n, 1),
          () => new BounceBufferTracker(4, n),
          () => new BounceBufferTracker(4, 1).tryAcquire(n, 0),
          () => new BounceBufferTracker(4, 1).tryAcquire(PAGE, n),
          () => plan({ op: "read", mode: "auto", at: n, segments: [new PagedRange(0, PAGE, [1])], alignment: { directIo: true, memAlign: 512, offsetAlign: 512, readOffsetAlign: 512, source: "statx" } }),
        ];
        for (const call of calls) {
          let thrown: unknown = null;
          try {
            call();
          } catch (error) {
            thrown = error;
          }
          expect(thrown).toBeInstanceOf(BounceBenchError);
          expect((thrown as BounceBenchError).kind).toBe("input");
        }
      }),
    );
    expectUntouched();
  });
});
