/**
 * Library inputs that must not change meaning silently: every public entry point named here
 * refuses a bad argument with a typed error (a BounceBenchError with a code), and a plan that is
 * not the planner's own is never executed, with no call reaching the kernel.
 */
import { describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { BounceBenchError } from "../src/base/errors";
import { BounceBufferTracker } from "../src/bounce/bounce-tracker";
import { Disk } from "../src/disk/disk";
import { executePlan } from "../src/io/executor";
import { isPlannerPlan, plan, type Plan } from "../src/io/planner";
import { GuestMemory } from "../src/memory/guest-memory";
import { PagedRange } from "../src/memory/paged-range";
import { ioCounters } from "../src/native";
import { PAGE, scratchDir } from "./helpers";

const dir = scratchDir("library-inputs");
const alignment = { directIo: true, memAlign: 512, offsetAlign: 512, readOffsetAlign: 512, source: "statx" as const };
const segments = [new PagedRange(0, PAGE, [1])];

/** The typed error `fn` throws (a raw TypeError or RangeError fails the test). */
function typedError(fn: () => unknown): BounceBenchError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(BounceBenchError);
    return error as BounceBenchError;
  }
  throw new Error("expected a typed error, but nothing was thrown");
}

describe("plan", () => {
  test("an op, mode, iovMax, segment list or alignment outside its domain is a typed error", () => {
    const bad: Record<string, unknown>[] = [
      { op: "Read" },
      { op: "READ" },
      { op: undefined },
      { mode: "fast" },
      { mode: "Auto" },
      { iovMax: 0 },
      { iovMax: -1 },
      { iovMax: 1.5 },
      { iovMax: 5000 },
      { segments: [{ offset: 0, len: 4096, gpns: [1] }] },
      { segments: "0-1" },
      { alignment: { ...alignment, offsetAlign: 3000 } },
      { alignment: null },
    ];
    for (const change of bad) {
      const error = typedError(() => plan({ op: "write", mode: "auto", at: 0, segments, alignment, ...change } as never));
      expect({ change, code: error.code }).toEqual({ change, code: "INVALID_INPUT" });
    }
  });

  test("a plan is frozen all the way down, and only the planner's own plans are plans", () => {
    const made = plan({ op: "write", mode: "bounce", at: 0, segments, alignment });
    expect(isPlannerPlan(made)).toBe(true);
    const frozen = (value: unknown): boolean =>
      typeof value !== "object" || value === null || (Object.isFrozen(value) && Object.values(value).every(frozen));
    expect(frozen(made)).toBe(true);
    expect(isPlannerPlan({ ...made })).toBe(false);
    expect(isPlannerPlan(structuredClone(made))).toBe(false);
  });
});

describe("executePlan", () => {
  const guestPath = join(dir, "guest.img");
  const diskPath = join(dir, "disk.bin");
  writeFileSync(guestPath, new Uint8Array(8 * PAGE));
  writeFileSync(diskPath, new Uint8Array(16 * PAGE));

  test("property: a changed copy of a plan is refused before any call reaches the kernel", async () => {
    using memory = GuestMemory.open(guestPath);
    using disk = Disk.open(diskPath, { write: true, direct: true });
    const made = plan({ op: "write", mode: "bounce", at: 0, segments: [new PagedRange(8, 1000, [2])], alignment: disk.alignment });
    const fields = Object.keys(made) as (keyof Plan)[];
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...fields), fc.oneof(fc.integer(), fc.constant("read"), fc.constant([]), fc.constant(null)), async (field, value) => {
        const changed = { ...made, [field]: value } as Plan;
        const before = ioCounters.slice();
        const error = await executePlan(changed, memory, disk).then(
          () => null,
          (thrown: unknown) => thrown,
        );
        expect(error).toBeInstanceOf(BounceBenchError);
        expect((error as BounceBenchError).message).toContain("not a plan made by plan()");
        expect(ioCounters).toEqual(before);
      }),
      { numRuns: 60 },
    );
  });
});

describe("other entry points", () => {
  test("releasing pages nobody took is refused, and the budget stays whole", () => {
    const tracker = new BounceBufferTracker(8, 2);
    expect(typedError(() => tracker.releasePages(100, 0)).code).toBe("BUDGET_EXCEEDED");
    expect(typedError(() => tracker.releasePages(1, 0)).code).toBe("BUDGET_EXCEEDED"); // none taken yet
    expect(typedError(() => tracker.releasePages(1, 5)).code).toBe("BAD_THREAD");
    expect(tracker.tryAcquirePages(3, 1)).toBe(true);
    expect(typedError(() => tracker.releasePages(4, 1)).code).toBe("BUDGET_EXCEEDED");
    tracker.releasePages(3, 1);
    expect([tracker.freePages(0), tracker.freePages(1)]).toEqual([8, 8]);
  });

  test("hostAddress refuses an offset that is not a byte of the page", () => {
    using memory = GuestMemory.create(join(dir, "host-address.img"), 4 * PAGE);
    for (const offset of [-1, PAGE, PAGE + 1, 0.5, Number.NaN]) expect(typedError(() => memory.hostAddress(1, offset)).code).toBe("GUEST_ACCESS");
    expect(memory.hostAddress(1, PAGE - 1) - memory.hostAddress(1, 0)).toBe(PAGE - 1);
  });

  test("Disk.open refuses an alignment override that is not a power of two up to 1 MiB", () => {
    const path = join(dir, "override.bin");
    writeFileSync(path, new Uint8Array(4 * PAGE));
    for (const alignOverride of [2 ** 40, 2 ** 21, 3000, 0, -512]) {
      expect(typedError(() => Disk.open(path, { write: false, direct: true, alignOverride })).code).toBe("INVALID_INPUT");
    }
  });
});

test("generated: every public entry point, given arguments of the wrong kind or out of domain, throws only typed errors", async () => {
  const lib = await import("../src/index");
  const guestPath = join(dir, "fuzz-guest.img");
  const diskPath = join(dir, "fuzz-disk.bin");
  writeFileSync(guestPath, new Uint8Array(16 * PAGE));
  writeFileSync(diskPath, new Uint8Array(16 * PAGE));
  using memory = lib.GuestMemory.open(guestPath);
  using disk = lib.Disk.open(diskPath, { write: true, direct: true });
  const range = new lib.PagedRange(0, PAGE, [1]);
  const request = new lib.RequestBuffers(memory, range, true);
  const tracker = new lib.BounceBufferTracker(8, 2);
  const locks = new lib.RangeLocks(4);
  const entryPoints: [string, (bad: never) => unknown][] = [
    ["new PagedRange(offset)", (bad) => new lib.PagedRange(bad, 10, [0])],
    ["new PagedRange(gpns)", (bad) => new lib.PagedRange(0, 10, bad)],
    ["range.subrange", (bad) => range.subrange(bad, 1)],
    ["memory.read(gpa)", (bad) => memory.read(bad, new Uint8Array(1))],
    ["memory.read(target)", (bad) => memory.read(0, bad)],
    ["memory.write(source)", (bad) => memory.write(0, bad)],
    ["memory.fill(len)", (bad) => memory.fill(0, bad, 1)],
    ["memory.page", (bad) => memory.page(bad)],
    ["memory.view", (bad) => memory.view(bad, 1)],
    ["memory.hostAddress", (bad) => memory.hostAddress(bad)],
    ["memory.provide", (bad) => memory.provide(bad, 1)],
    ["new RequestBuffers(range)", (bad) => new lib.RequestBuffers(memory, bad, true)],
    ["request.isAligned", (bad) => request.isAligned(bad)],
    ["request.subrange", (bad) => request.subrange(bad, 1)],
    ["reader.read", (bad) => request.reader().read(bad)],
    ["writer.write", (bad) => request.writer().write(bad)],
    ["reader.skip", (bad) => request.reader().skip(bad)],
    ["OwnedRequestBuffers.new", (bad) => lib.OwnedRequestBuffers.new(bad)],
    ["OwnedRequestBuffers.linear", (bad) => lib.OwnedRequestBuffers.linear(bad, 10, true)],
    ["new BounceBuffer(size)", (bad) => new lib.BounceBuffer(bad)],
    ["new BounceBuffer(alignment)", (bad) => new lib.BounceBuffer(PAGE, bad)],
    ["new BounceBufferTracker", (bad) => new lib.BounceBufferTracker(bad, 1)],
    ["tracker.tryAcquire(thread)", (bad) => tracker.tryAcquire(PAGE, bad)],
    ["tracker.releasePages", (bad) => tracker.releasePages(bad, 0)],
    ["tracker.stats", (bad) => tracker.stats(bad)],
    ["BounceBufferTracker.attach", (bad) => lib.BounceBufferTracker.attach(bad)],
    ["new RangeLocks", (bad) => new lib.RangeLocks(bad)],
    ["locks.claim", (bad) => locks.claim(bad, 10)],
    ["Disk.open(path)", (bad) => lib.Disk.open(bad, { write: false, direct: true })],
    ["Disk.open(options)", (bad) => lib.Disk.open(diskPath, bad)],
    ["GuestMemory.open", (bad) => lib.GuestMemory.open(bad)],
    ["GuestMemory.create(size)", (bad) => lib.GuestMemory.create(join(dir, "fuzz-new.img"), bad, { force: true })],
    ["plan", (bad) => plan(bad)],
    ["plan({ at })", (bad) => plan({ op: "read", mode: "auto", at: bad, segments: [range], alignment: disk.alignment })],
    ["parseSize", (bad) => lib.parseSize(bad, "x")],
    ["parseGpnList", (bad) => lib.parseGpnList(bad, "x")],
    ["parseSegment", (bad) => lib.parseSegment(bad, "x")],
    ["createSparseFile(size)", (bad) => lib.createSparseFile(join(dir, "fuzz-new.bin"), bad)],
    ["discoverAlignment", (bad) => lib.discoverAlignment(bad)],
    ["checkAlignment", (bad) => lib.checkAlignment(bad)],
    ["memoryAlignmentReasons", (bad) => lib.memoryAlignmentReasons(0, 0, bad)],
    ["new IoQueue", (bad) => new lib.IoQueue(bad)],
    ["createEngine(depth)", (bad) => lib.createEngine("null", bad, () => {})],
    ["parseScenarioText", (bad) => lib.parseScenarioText(bad, "x.json")],
    ["new IovecArray", (bad) => new lib.IovecArray(bad)],
  ];
  const badValues: unknown[] = [undefined, null, -1, Number.NaN, 1.5, "x", {}, [], 2 ** 60, Number.POSITIVE_INFINITY];
  const raw: string[] = [];
  for (const [name, call] of entryPoints) {
    for (const bad of badValues) {
      try {
        const result = call(bad as never);
        if (result instanceof Promise) await result.catch((error: unknown) => (error instanceof BounceBenchError ? null : raw.push(`${name}(${String(bad)}): ${String(error)}`)));
        else (result as { release?: () => void } | undefined)?.release?.();
      } catch (error) {
        if (!(error instanceof BounceBenchError)) raw.push(`${name}(${String(bad)}): ${String(error)}`);
      }
    }
  }
  expect(raw).toEqual([]);
});

describe("plan reads each input once", () => {
  test("a GPN list that changes on every read, or a subclass whose getters lie, cannot make plan loop or disagree with itself", () => {
    let reads = 0;
    const shifting = new Proxy([0, 1, 2, 3], {
      get(target, key, receiver) {
        if (typeof key === "string" && /^\d+$/.test(key)) return (Reflect.get(target, key, receiver) as number) + 16 * reads++;
        if (key === "length") return 4 + reads; // grows as it is read
        return Reflect.get(target, key, receiver);
      },
    });
    const range = new PagedRange(0, 4 * 4096, shifting as unknown as number[]);
    const decided = plan({ op: "write", mode: "auto", at: 0, segments: [range], alignment: { directIo: true, memAlign: 512, offsetAlign: 512, readOffsetAlign: 512, source: "statx" } });
    expect(decided.len).toBe(4 * 4096);
    expect(decided.segments[0]!.gpns).toHaveLength(4);
    class Lying extends PagedRange {
      #calls = 0;
      override get len(): number {
        return 4096 * ++this.#calls;
      }
    }
    const lying = plan({ op: "read", mode: "auto", at: 0, segments: [new Lying(0, 4096, [7])], alignment: { directIo: true, memAlign: 512, offsetAlign: 512, readOffsetAlign: 512, source: "statx" } });
    expect(lying.len).toBe(4096);
    expect(lying.iovecs).toEqual([{ kind: "guest", gpa: 7 * 4096, len: 4096 }]);
  });
});
