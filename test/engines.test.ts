/**
 * The engine conformance suite: one set of cases every engine that does IO runs, each named
 * after the bug class it guards against, on a real file opened with O_DIRECT.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { BounceBuffer } from "../src/bounce/bounce-buffer";
import { createEngine, type Engine, type EngineName } from "../src/io/engines";
import { closeFd, NativeRegion, IO_SQES, ioCounters, IORING_OP_READ_FIXED, IORING_OP_READV, IORING_OP_READV_FIXED, IOSQE_FIXED_FILE, IoUring, IovecArray, O_DIRECT, O_RDWR, openFile, type RingSetup } from "../src/native";
import { GuestMemory } from "../src/memory/guest-memory";
import { mapAnonymous, movePages, reserveAddresses, unmap, type Address } from "../src/native/os";
import { fileBytes, PAGE, randomBytes, scratchDir } from "./helpers";

const dir = scratchDir("engines");
const path = join(dir, "disk.bin");
const DATA = randomBytes(64 * PAGE, 42);
writeFileSync(path, DATA);
const fd = openFile(path, O_RDWR | O_DIRECT);
afterAll(() => closeFd(fd));

interface Completion {
  slot: number;
  result: number;
}

/** An engine of `name` whose completions are collected in order. */
function engineWith(name: EngineName, qd: number) {
  const completions: Completion[] = [];
  const engine = createEngine(name, qd, (slot, result) => completions.push({ slot, result }));
  return { engine, completions };
}

/** One iovec per slot, each over its own page of `buffers`; the caller releases them. */
function pagePerSlot(buffers: BounceBuffer, qd: number): IovecArray[] {
  return Array.from({ length: qd }, (_, slot) => {
    const array = new IovecArray(1);
    array.push((buffers.address() as number) + slot * PAGE, PAGE);
    return array;
  });
}

/** Reaps until `n` completions have arrived. */
function drain(engine: { reap(): number }, completions: Completion[], n: number): void {
  while (completions.length < n) if (engine.reap() === 0) break;
}

const IO_ENGINES: [EngineName, number][] = [
  ["sync", 1],
  ["uring", 8],
];

for (const [name, qd] of IO_ENGINES) {
  describe(`engine ${name} (qd ${qd})`, () => {
    test("lost or misattributed completions: every IO completes once, under its own slot", () => {
      const { engine, completions } = engineWith(name, qd);
      using buffers = new BounceBuffer(qd * PAGE);
      const iovecs = pagePerSlot(buffers, qd);
      try {
        for (let round = 0; round < 3; round++) {
          completions.length = 0;
          for (let slot = 0; slot < qd; slot++) {
            engine.submit(slot, false, fd, iovecs[slot]!, 0, iovecs[slot]!.address(), 1, (round * qd + slot) * PAGE, 0, PAGE);
            if (name === "sync") drain(engine, completions, slot + 1);
          }
          drain(engine, completions, qd);
          expect(completions.map((c) => c.slot).sort((a, b) => a - b)).toEqual(Array.from({ length: qd }, (_, i) => i));
          expect(completions.every((c) => c.result === PAGE)).toBe(true);
          for (let slot = 0; slot < qd; slot++) {
            const at = (round * qd + slot) * PAGE;
            expect(buffers.bytes.subarray(slot * PAGE, (slot + 1) * PAGE)).toEqual(DATA.subarray(at, at + PAGE));
          }
        }
      } finally {
        engine.close();
        iovecs.forEach((array) => array.release());
      }
    });

    test("scatter-gather dropped: a vectored write lands every iovec, in order", () => {
      const { engine, completions } = engineWith(name, qd);
      using source = new BounceBuffer(3 * PAGE);
      source.bytes.set(randomBytes(3 * PAGE, 7));
      using iovecs = new IovecArray(3);
      // Pages 2, 0, 1 of the buffer, in that order.
      for (const page of [2, 0, 1]) iovecs.push((source.address() as number) + page * PAGE, PAGE);
      engine.submit(0, true, fd, iovecs, 0, iovecs.address(), 3, 40 * PAGE, 0, 3 * PAGE);
      drain(engine, completions, 1);
      engine.close();
      expect(completions).toEqual([{ slot: 0, result: 3 * PAGE }]);
      const written = fileBytes(path).subarray(40 * PAGE, 43 * PAGE);
      const expected = new Uint8Array(3 * PAGE);
      [2, 0, 1].forEach((page, i) => expected.set(source.bytes.subarray(page * PAGE, (page + 1) * PAGE), i * PAGE));
      expect(written).toEqual(expected);
    });

    test("kernel refusal turned into a crash: a misaligned direct IO completes with -EINVAL", () => {
      const { engine, completions } = engineWith(name, qd);
      using buffer = new BounceBuffer(PAGE);
      const iovecs = buffer.iovecs();
      engine.submit(0, false, fd, iovecs, 0, iovecs.address(), 1, 100, 0, PAGE); // offset 100: not a block multiple
      drain(engine, completions, 1);
      engine.close();
      expect(completions).toEqual([{ slot: 0, result: -22 }]);
    });
  });
}

const ALL_ENGINES: [EngineName, number][] = [...IO_ENGINES, ["null", 8]];

for (const [name, qd] of ALL_ENGINES) {
  describe(`engine ${name} (qd ${qd}): completions`, () => {
    test("callback throws mid-reap: no completion is delivered twice, none is lost", () => {
      const delivered: number[] = [];
      let throwOnce = true;
      const engine = createEngine(name, qd, (slot) => {
        delivered.push(slot);
        if (throwOnce) {
          throwOnce = false;
          throw new Error("the owner of this completion failed");
        }
      });
      using buffers = new BounceBuffer(qd * PAGE);
      const iovecs = pagePerSlot(buffers, qd);
      try {
        let thrown = 0;
        for (let slot = 0; slot < qd; slot++) {
          engine.submit(slot, false, fd, iovecs[slot]!, 0, iovecs[slot]!.address(), 1, slot * PAGE, 0, PAGE);
          if (name === "sync") {
            try {
              engine.reap();
            } catch {
              thrown++;
            }
          }
        }
        for (let round = 0; engine.inFlight > 0 && round < 100; round++) {
          try {
            engine.reap();
          } catch {
            thrown++;
          }
        }
        expect(thrown).toBe(1);
        expect(engine.inFlight).toBe(0);
        expect(delivered.sort((a, b) => a - b)).toEqual(Array.from({ length: qd }, (_, i) => i));
        expect(engine.reap()).toBe(0); // nothing left over to deliver again
      } finally {
        engine.close();
        iovecs.forEach((array) => array.release());
      }
    });

    test("capabilities say what the engine does", () => {
      const engine = createEngine(name, qd, () => {});
      try {
        expect(engine.name).toBe(name);
        expect(engine.capabilities.touchesDisk).toBe(name !== "null");
        expect(engine.capabilities.asynchronous).toBe(name === "uring");
        expect(engine.queueDepth).toBeLessThanOrEqual(engine.capabilities.maxQueueDepth);
      } finally {
        engine.close();
      }
    });
  });
}

describe("the io_uring ring", () => {
  test("holds no more IOs in flight than its entries: one more is refused with nothing queued, and room comes back as completions are reaped", () => {
    using ring = new IoUring(4);
    expect(ring.entries).toBe(4);
    using buffers = new BounceBuffer(5 * PAGE);
    const iovecs = pagePerSlot(buffers, 5);
    try {
      for (let tag = 0; tag < 4; tag++) ring.prepare(IORING_OP_READV, fd, iovecs[tag]!.address(), 1, tag * PAGE, 0, tag);
      const queued = ioCounters[IO_SQES]!;
      expect(() => ring.prepare(IORING_OP_READV, fd, iovecs[4]!.address(), 1, 4 * PAGE, 0, 4)).toThrow(expect.objectContaining({ code: "RING_FULL" }));
      expect({ sqes: ioCounters[IO_SQES], inFlight: ring.inFlight, unsubmitted: ring.unsubmitted }).toEqual({ sqes: queued, inFlight: 4, unsubmitted: 4 });
      // Submitted, still not reaped: still full.
      ring.submitAndWait(4);
      expect(() => ring.prepare(IORING_OP_READV, fd, iovecs[4]!.address(), 1, 4 * PAGE, 0, 4)).toThrow(expect.objectContaining({ code: "RING_FULL" }));
      const tags = new Int32Array(4);
      const results = new Int32Array(4);
      expect(ring.takeCompletions(tags, results, 1)).toBe(1);
      expect(ring.inFlight).toBe(3);
      ring.prepare(IORING_OP_READV, fd, iovecs[4]!.address(), 1, 4 * PAGE, 0, 4); // room for one again
      ring.submitAndWait(4);
      let reaped = 0;
      while (reaped < 4) reaped += ring.takeCompletions(tags, results, 4 - reaped);
      expect(ring.inFlight).toBe(0);
      expect(buffers.bytes.subarray(4 * PAGE, 5 * PAGE)).toEqual(DATA.subarray(4 * PAGE, 5 * PAGE)); // the fifth read did land
    } finally {
      // Whatever failed above, no IO may still point into the iovecs or buffers when they go.
      const tags = new Int32Array(4);
      const results = new Int32Array(4);
      while (ring.inFlight > 0) {
        ring.submitAndWait(1);
        ring.takeCompletions(tags, results, 4);
      }
      for (const array of iovecs) array.release();
    }
  });
});

/** Why this kernel refuses a ring set up so (only ever with the catalogue's code), or null. */
function ringRefuses(setup: RingSetup): string | null {
  try {
    new IoUring(2, setup).close();
    return null;
  } catch (error) {
    if ((error as { code?: string }).code !== "RING_FEATURE") throw error;
    return (error as Error).message;
  }
}

const readvFixed = (() => {
  using ring = new IoUring(2);
  return ring.supports(IORING_OP_READV_FIXED);
})();

describe("the io_uring ring's options, each with real reads", () => {
  /** Reads pages 0..count-1 of the disk with `prepare`'s arguments from `args(slot)`, reaps them all, returns the results. */
  function readAll(ring: IoUring, count: number, args: (slot: number) => Parameters<IoUring["prepare"]>): number[] {
    const results = new Int32Array(count);
    const tags = new Int32Array(count);
    for (let slot = 0; slot < count; slot++) ring.prepare(...args(slot));
    ring.submitAndWait(count);
    const got: number[] = new Array(count).fill(NaN);
    let reaped = 0;
    while (reaped < count) {
      const n = ring.takeCompletions(tags, results, count - reaped);
      for (let i = 0; i < n; i++) got[tags[i]!] = results[i]!;
      reaped += n;
      if (reaped < count) ring.submitAndWait(1);
    }
    return got;
  }

  test("registered buffers and files: READ_FIXED into the registered memory, the disk named by its index", () => {
    using ring = new IoUring(4);
    using buffers = new BounceBuffer(4 * PAGE);
    ring.registerBuffers([{ address: buffers.address() as number, length: 4 * PAGE }]);
    ring.registerFiles([fd]);
    const results = readAll(ring, 4, (slot) => [IORING_OP_READ_FIXED, 0, ((buffers.address() as number) + slot * PAGE) as never, PAGE, (8 + slot) * PAGE, 0, slot, IOSQE_FIXED_FILE, 0]);
    expect(results).toEqual([PAGE, PAGE, PAGE, PAGE]);
    expect(buffers.bytes.subarray(0, 4 * PAGE)).toEqual(DATA.subarray(8 * PAGE, 12 * PAGE));
    // Outside the registered buffer, the kernel refuses a fixed read (EFAULT), and reads nothing.
    using other = new BounceBuffer(PAGE);
    expect(readAll(ring, 1, () => [IORING_OP_READ_FIXED, 0, other.address(), PAGE, 0, 0, 0, IOSQE_FIXED_FILE, 0])).toEqual([-14]);
  });

  test("the ring's descriptor is registered with its thread, and given back at close: 20 rings one after another each get an index (a thread has 16)", () => {
    for (let n = 0; n < 20; n++) {
      using ring = new IoUring(2);
      expect({ n, registered: ring.registeredRing }).toEqual({ n, registered: true });
      using buffers = new BounceBuffer(PAGE);
      using iovecs = new IovecArray(1);
      iovecs.push(buffers.address(), PAGE);
      expect(readAll(ring, 1, () => [IORING_OP_READV, fd, iovecs.address(), 1, 12 * PAGE, 0, 0, 0, 0])).toEqual([PAGE]);
      expect(buffers.bytes.subarray(0, PAGE)).toEqual(DATA.subarray(12 * PAGE, 13 * PAGE));
    }
  });

  test("a thread's 17th ring open at once is refused a registered index and is entered by its descriptor, which works as well", () => {
    const rings: IoUring[] = [];
    try {
      for (let n = 0; n < 17; n++) rings.push(new IoUring(2));
      expect(rings.map((ring) => ring.registeredRing)).toEqual([...new Array(16).fill(true), false]);
      using buffers = new BounceBuffer(PAGE);
      using iovecs = new IovecArray(1);
      iovecs.push(buffers.address(), PAGE);
      for (const ring of [rings[16]!, rings[0]!]) {
        buffers.bytes.fill(0, 0, PAGE);
        expect(readAll(ring, 1, () => [IORING_OP_READV, fd, iovecs.address(), 1, 5 * PAGE, 0, 0, 0, 0])).toEqual([PAGE]);
        expect(buffers.bytes.subarray(0, PAGE)).toEqual(DATA.subarray(5 * PAGE, 6 * PAGE));
      }
    } finally {
      for (const ring of rings) ring.close();
    }
  });

  test("the opcode probe: READV is there, an opcode past the last is not", () => {
    using ring = new IoUring(2);
    expect(ring.supports(IORING_OP_READV)).toBe(true);
    expect(ring.supports(255)).toBe(false);
  });

  test.skipIf(!readvFixed)(`READV_FIXED: two iovecs inside one registered buffer${readvFixed ? "" : " (skipped: this kernel's io_uring has no READV_FIXED)"}`, () => {
    using ring = new IoUring(2);
    using buffers = new BounceBuffer(4 * PAGE);
    ring.registerBuffers([{ address: buffers.address() as number, length: 4 * PAGE }]);
    using iovecs = new IovecArray(2);
    iovecs.push((buffers.address() as number) + 3 * PAGE, PAGE);
    iovecs.push(buffers.address(), PAGE);
    expect(readAll(ring, 1, () => [IORING_OP_READV_FIXED, fd, iovecs.address(), 2, 20 * PAGE, 0, 0, 0, 0])).toEqual([2 * PAGE]);
    expect(buffers.bytes.subarray(3 * PAGE, 4 * PAGE)).toEqual(DATA.subarray(20 * PAGE, 21 * PAGE));
    expect(buffers.bytes.subarray(0, PAGE)).toEqual(DATA.subarray(21 * PAGE, 22 * PAGE));
  });

  test("SQPOLL with DEFER_TASKRUN is refused before the kernel is asked", () => {
    expect(() => new IoUring(4, { sqpoll: true, deferTaskrun: true })).toThrow(expect.objectContaining({ code: "RING_FEATURE", message: expect.stringContaining("cannot be combined") }));
  });

  for (const setup of [{ sqpoll: true }, { deferTaskrun: true }] as RingSetup[]) {
    const refused = ringRefuses(setup);
    test.skipIf(refused !== null)(`${JSON.stringify(setup)}: reads land, every completion reaped${refused === null ? "" : ` (skipped: ${refused})`}`, () => {
      using ring = new IoUring(4, setup);
      using buffers = new BounceBuffer(4 * PAGE);
      const iovecs = pagePerSlot(buffers, 4);
      try {
        expect(readAll(ring, 4, (slot) => [IORING_OP_READV, fd, iovecs[slot]!.address(), 1, (30 + slot) * PAGE, 0, slot, 0, 0])).toEqual([PAGE, PAGE, PAGE, PAGE]);
        expect(buffers.bytes.subarray(0, 4 * PAGE)).toEqual(DATA.subarray(30 * PAGE, 34 * PAGE));
        expect(ring.inFlight).toBe(0);
      } finally {
        for (const array of iovecs) array.release();
      }
    });
  }
});

describe("engine null", () => {
  test("does no IO at all and completes every submission with its full size", () => {
    const before = fileBytes(path);
    const { engine, completions } = engineWith("null", 4);
    for (let slot = 0; slot < 4; slot++) engine.submit(slot, true, -1, null as never, 0, 0 as never, 1, slot * PAGE, 0, PAGE);
    expect(engine.reap()).toBe(4);
    expect(completions).toEqual([0, 1, 2, 3].map((slot) => ({ slot, result: PAGE })));
    expect(fileBytes(path)).toEqual(before);
  });
});

describe("engine creation", () => {
  test("a queue depth the engine cannot have is a clear error", () => {
    expect(() => createEngine("sync", 4, () => {})).toThrow("the sync engine does one IO at a time");
    expect(() => createEngine("uring", 0, () => {})).toThrow("queue depth 0");
  });
});

describe("engine uring with fixed buffers (fio's fixedbufs)", () => {
  /**
   * Memory the kernel and this process see differently, which tells a fixed-buffer call from a
   * vectored one by where the bytes land: the first 2 pages of `registered` are registered, then
   * its first page is moved to `pinned` and a fresh page mapped in its place. A fixed call into
   * that first page writes the page the kernel pinned (seen at `pinned`); a vectored one writes
   * the fresh page (seen at `registered`). A third page, not registered, is there for calls that
   * run past the registered memory to land in memory of this test's own.
   */
  function splitView() {
    const registered = NativeRegion.anonymous(3 * PAGE, "registered");
    registered.fill(0, 3 * PAGE, 0xee);
    const base = registered.address(0) as number;
    const pinned = reserveAddresses(PAGE);
    let pinnedView: NativeRegion | null = null;
    return {
      base,
      /** Moves the first page away (to `pinned`) and maps a fresh one (zeros) in its place: after registering. */
      swap() {
        const fresh = mapAnonymous(PAGE); // before the move, or it could be mapped where the page was
        movePages(base as Address, PAGE, pinned);
        movePages(fresh, PAGE, base as Address);
        pinnedView = NativeRegion.borrow(pinned as number, PAGE, "the pinned page");
      },
      atRegistered: () => registered.view(0, PAGE),
      atPinned: () => pinnedView!.view(0, PAGE),
      secondPage: () => registered.view(PAGE, PAGE),
      bytes: (offset: number, len: number) => registered.view(offset, len),
      release() {
        pinnedView?.release();
        registered.release();
        unmap(pinned, PAGE);
      },
    };
  }

  function uringFixed(qd = 2) {
    const completions: Completion[] = [];
    const engine = createEngine("uring", qd, (slot, result) => completions.push({ slot, result }), { fixedBuffers: true });
    return { engine, completions };
  }

  /**
   * Runs `body` with a split view registered with a uring engine with fixed buffers, its first
   * page swapped after registering; the engine reaps and closes before the memory goes.
   */
  function withSplitView(body: (view: ReturnType<typeof splitView>, engine: Engine, completions: Completion[]) => void): void {
    const view = splitView();
    const { engine, completions } = uringFixed();
    try {
      engine.registerMemory([{ address: view.base, length: 2 * PAGE }]);
      view.swap();
      body(view, engine, completions);
    } finally {
      engine.close();
      view.release();
    }
  }

  test("one iovec in registered memory goes as READ_FIXED: the bytes land in the page the kernel pinned, and the call is counted fixed", () => {
    withSplitView((view, engine, completions) => {
      using iovecs = new IovecArray(1);
      iovecs.push(view.base, PAGE);
      engine.submit(0, false, fd, iovecs, 0, iovecs.address(), 1, 5 * PAGE, 0, PAGE);
      drain(engine, completions, 1);
      expect(completions).toEqual([{ slot: 0, result: PAGE }]);
      expect(view.atPinned()).toEqual(DATA.subarray(5 * PAGE, 6 * PAGE));
      expect(view.atRegistered().every((byte) => byte === 0)).toBe(true); // the fresh page: untouched zeros
      expect({ fixed: engine.fixedCalls, unfixed: engine.unfixedCalls }).toEqual({ fixed: 1, unfixed: 0 });
    });
  });

  test.skipIf(!readvFixed)(`several iovecs in one registered buffer go as READV_FIXED${readvFixed ? "" : " (skipped: this kernel's io_uring has no READV_FIXED)"}`, () => {
    withSplitView((view, engine, completions) => {
      expect(engine.vectoredFixed).toBe(true);
      using iovecs = new IovecArray(2);
      iovecs.push(view.base + PAGE, PAGE);
      iovecs.push(view.base, PAGE);
      engine.submit(0, false, fd, iovecs, 0, iovecs.address(), 2, 10 * PAGE, 0, 2 * PAGE);
      drain(engine, completions, 1);
      expect(completions).toEqual([{ slot: 0, result: 2 * PAGE }]);
      expect(view.secondPage()).toEqual(DATA.subarray(10 * PAGE, 11 * PAGE));
      expect(view.atPinned()).toEqual(DATA.subarray(11 * PAGE, 12 * PAGE));
      expect({ fixed: engine.fixedCalls, unfixed: engine.unfixedCalls }).toEqual({ fixed: 1, unfixed: 0 });
    });
  });

  test("a call with an iovec outside the registered memory goes as READV, and is counted as not fixed", () => {
    using other = new BounceBuffer(PAGE);
    withSplitView((view, engine, completions) => {
      using iovecs = new IovecArray(2);
      iovecs.push(view.base, PAGE);
      iovecs.push(other.address(), PAGE);
      engine.submit(0, false, fd, iovecs, 0, iovecs.address(), 2, 12 * PAGE, 0, 2 * PAGE);
      // An iovec reaching one byte past the registered memory: not inside it either.
      using edge = new IovecArray(1);
      edge.push(view.base + PAGE + 512, PAGE);
      engine.submit(1, false, fd, edge, 0, edge.address(), 1, 14 * PAGE, 0, PAGE);
      drain(engine, completions, 2);
      expect(completions.map((c) => c.result).sort()).toEqual([PAGE, 2 * PAGE].sort());
      expect(view.atRegistered()).toEqual(DATA.subarray(12 * PAGE, 13 * PAGE)); // the process's page: a vectored read
      expect(other.bytes.subarray(0, PAGE)).toEqual(DATA.subarray(13 * PAGE, 14 * PAGE));
      expect(view.bytes(PAGE + 512, PAGE)).toEqual(DATA.subarray(14 * PAGE, 15 * PAGE)); // into the unregistered third page
      expect({ fixed: engine.fixedCalls, unfixed: engine.unfixedCalls }).toEqual({ fixed: 0, unfixed: 2 });
    });
  });

  test("a call whose later iovec runs past the registered memory goes as READV, and is counted as not fixed", () => {
    using memory = NativeRegion.anonymous(3 * PAGE, "two pages registered of three");
    const base = memory.address(0) as number;
    const { engine, completions } = uringFixed();
    try {
      engine.registerMemory([{ address: base, length: 2 * PAGE }]);
      using iovecs = new IovecArray(2);
      iovecs.push(base, PAGE);
      iovecs.push(base + PAGE + 512, PAGE); // starts inside, ends 512 bytes past
      engine.submit(0, false, fd, iovecs, 0, iovecs.address(), 2, 16 * PAGE, 0, 2 * PAGE);
      drain(engine, completions, 1);
      expect(completions).toEqual([{ slot: 0, result: 2 * PAGE }]);
      expect(memory.view(PAGE + 512, PAGE)).toEqual(DATA.subarray(17 * PAGE, 18 * PAGE));
      expect({ fixed: engine.fixedCalls, unfixed: engine.unfixedCalls }).toEqual({ fixed: 0, unfixed: 1 });
    } finally {
      engine.close();
    }
  });

  test("a write from registered memory lands from the pinned page (WRITE_FIXED)", () => {
    withSplitView((view, engine, completions) => {
      const pinnedBytes = randomBytes(PAGE, 99);
      view.atRegistered().fill(0x11);
      view.atPinned().set(pinnedBytes);
      using iovecs = new IovecArray(1);
      iovecs.push(view.base, PAGE);
      engine.submit(0, true, fd, iovecs, 0, iovecs.address(), 1, 50 * PAGE, 0, PAGE);
      drain(engine, completions, 1);
      expect(completions).toEqual([{ slot: 0, result: PAGE }]);
      expect(fileBytes(path).subarray(50 * PAGE, 51 * PAGE)).toEqual(pinnedBytes);
    });
  });

  test("memory the kernel will not pin (a shared mapping of a file on a disk filesystem) is refused with the reason; other engines register nothing", () => {
    const { engine } = uringFixed();
    using guest = GuestMemory.create(join(dir, "guest-file.img"), 4 * PAGE);
    try {
      expect(() => engine.registerMemory([{ address: guest.hostAddress(0) as number, length: 4 * PAGE }])).toThrow(
        expect.objectContaining({ code: "RING_FEATURE", message: expect.stringContaining("will not pin this memory") }),
      );
    } finally {
      engine.close();
    }
    const sync = createEngine("sync", 1, () => {});
    expect(() => sync.registerMemory([])).toThrow("fixed buffers are an io_uring option");
    expect(() => createEngine("sync", 1, () => {}, { fixedBuffers: true })).toThrow("--fixedbufs is an io_uring option");
  });
});

describe("engine uring, non-vectored (fio's nonvectored)", () => {
  /**
   * Tells READ from READV by where the bytes land: the call's iovec (`iovecs`, entry 0) names
   * page 0 of `buffers`, while the iovec array the engine is handed as the call's address (a
   * decoy) names page 1. READ takes the buffer from the iovec itself; READV reads the array at
   * the address. (A real caller passes `iovecs.address()`: the two agree.)
   */
  function withDecoy(options: { nonvectored?: boolean; fixedBuffers?: boolean }, body: (engine: Engine, completions: Completion[], buffers: BounceBuffer, iovecs: IovecArray, decoy: IovecArray) => void): void {
    const completions: Completion[] = [];
    const engine = createEngine("uring", 2, (slot, result) => completions.push({ slot, result }), options);
    using buffers = new BounceBuffer(3 * PAGE);
    buffers.bytes.fill(0xee, 0, 3 * PAGE);
    using iovecs = new IovecArray(1);
    iovecs.push(buffers.address(), PAGE);
    using decoy = new IovecArray(1);
    decoy.push((buffers.address() as number) + PAGE, PAGE);
    try {
      body(engine, completions, buffers, iovecs, decoy);
    } finally {
      engine.close();
    }
  }

  test("a call of one iovec goes as READ: the bytes land in the iovec's buffer, not where an iovec array would say, and the call is counted", () => {
    withDecoy({ nonvectored: true }, (engine, completions, buffers, iovecs, decoy) => {
      engine.submit(0, false, fd, iovecs, 0, decoy.address(), 1, 5 * PAGE, 0, PAGE);
      drain(engine, completions, 1);
      expect(completions).toEqual([{ slot: 0, result: PAGE }]);
      expect(buffers.bytes.subarray(0, PAGE)).toEqual(DATA.subarray(5 * PAGE, 6 * PAGE));
      expect(buffers.bytes.subarray(PAGE, 2 * PAGE).every((byte) => byte === 0xee)).toBe(true);
      expect(engine.nonvectoredCalls).toBe(1);
    });
    // Without the option, the same call goes as READV: into the page the array names.
    withDecoy({}, (engine, completions, buffers, iovecs, decoy) => {
      engine.submit(0, false, fd, iovecs, 0, decoy.address(), 1, 5 * PAGE, 0, PAGE);
      drain(engine, completions, 1);
      expect(buffers.bytes.subarray(PAGE, 2 * PAGE)).toEqual(DATA.subarray(5 * PAGE, 6 * PAGE));
      expect(buffers.bytes.subarray(0, PAGE).every((byte) => byte === 0xee)).toBe(true);
      expect([engine.nonvectoredCalls, engine.vectoredCalls]).toEqual([0, 0]);
    });
  });

  test("a write of one iovec goes as WRITE, from the iovec's buffer", () => {
    withDecoy({ nonvectored: true }, (engine, completions, buffers, iovecs, decoy) => {
      const written = randomBytes(PAGE, 7);
      buffers.bytes.set(written, 0);
      engine.submit(0, true, fd, iovecs, 0, decoy.address(), 1, 52 * PAGE, 0, PAGE);
      drain(engine, completions, 1);
      expect(completions).toEqual([{ slot: 0, result: PAGE }]);
      expect(fileBytes(path).subarray(52 * PAGE, 53 * PAGE)).toEqual(written);
      expect(engine.nonvectoredCalls).toBe(1);
    });
  });

  test("a call of several iovecs still goes as READV, counted as vectored", () => {
    withDecoy({ nonvectored: true }, (engine, completions, buffers) => {
      using two = new IovecArray(2);
      two.push((buffers.address() as number) + 2 * PAGE, PAGE);
      two.push(buffers.address(), PAGE);
      engine.submit(0, false, fd, two, 0, two.address(), 2, 6 * PAGE, 0, 2 * PAGE);
      drain(engine, completions, 1);
      expect(completions).toEqual([{ slot: 0, result: 2 * PAGE }]);
      expect(buffers.bytes.subarray(2 * PAGE, 3 * PAGE)).toEqual(DATA.subarray(6 * PAGE, 7 * PAGE));
      expect(buffers.bytes.subarray(0, PAGE)).toEqual(DATA.subarray(7 * PAGE, 8 * PAGE));
      expect([engine.nonvectoredCalls, engine.vectoredCalls]).toEqual([0, 1]);
    });
  });

  test("with fixed buffers: a call in registered memory goes fixed, one outside goes as READ, counted as both not fixed and non-vectored", () => {
    withDecoy({ nonvectored: true, fixedBuffers: true }, (engine, completions, buffers, iovecs, decoy) => {
      engine.registerMemory([{ address: (buffers.address() as number) + 2 * PAGE, length: PAGE }]);
      using inside = new IovecArray(1);
      inside.push((buffers.address() as number) + 2 * PAGE, PAGE);
      engine.submit(0, false, fd, inside, 0, inside.address(), 1, 9 * PAGE, 0, PAGE);
      engine.submit(1, false, fd, iovecs, 0, decoy.address(), 1, 10 * PAGE, 0, PAGE);
      drain(engine, completions, 2);
      expect(completions.map((c) => c.result)).toEqual([PAGE, PAGE]);
      expect(buffers.bytes.subarray(2 * PAGE, 3 * PAGE)).toEqual(DATA.subarray(9 * PAGE, 10 * PAGE));
      expect(buffers.bytes.subarray(0, PAGE)).toEqual(DATA.subarray(10 * PAGE, 11 * PAGE));
      expect([engine.fixedCalls, engine.unfixedCalls, engine.nonvectoredCalls, engine.vectoredCalls]).toEqual([1, 1, 1, 0]);
    });
  });

  test("is an io_uring option: other engines refuse it", () => {
    expect(() => createEngine("sync", 1, () => {}, { nonvectored: true })).toThrow("--nonvectored is an io_uring option");
    expect(() => createEngine("null", 4, () => {}, { nonvectored: true })).toThrow("--nonvectored is an io_uring option");
  });
});
