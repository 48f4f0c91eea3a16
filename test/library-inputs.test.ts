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
