/**
 * The range-lock conformance suite. Every case is named after the bug class it guards against
 * and runs with its parties in one thread and in different Workers sharing the table, and a
 * property test compares the table with a small reference model on random claims and releases.
 */
import { afterAll, describe, expect, test } from "bun:test";
import fc from "fast-check";
import { RangeLocks } from "../src/io/range-locks";

/** One user of the table: the main thread, or a Worker driven by messages. */
interface Party {
  claim(start: number, end: number): Promise<number>;
  isHeld(handle: number): Promise<boolean>;
  release(handle: number): Promise<void>;
}

function local(locks: RangeLocks): Party {
  return {
    claim: async (start, end) => locks.claim(start, end),
    isHeld: async (handle) => locks.isHeld(handle),
    release: async (handle) => locks.release(handle),
  };
}

const workers: Worker[] = [];
afterAll(() => workers.forEach((worker) => worker.terminate()));

async function remote(locks: RangeLocks): Promise<Party> {
  const worker = new Worker(new URL("./fixtures/range-lock-party.ts", import.meta.url));
  workers.push(worker);
  const pending = new Map<number, (value: unknown) => void>();
  let next = 0;
  worker.onmessage = (event: MessageEvent) => {
    pending.get(event.data.id)?.(event.data.value);
    pending.delete(event.data.id);
  };
  const ask = (message: Record<string, unknown>, id = next++) =>
    new Promise<unknown>((resolve) => {
      pending.set(id, resolve);
      worker.postMessage({ id, ...message });
    });
  await ask({ shared: locks.shared }, -1);
  return {
    claim: async (start, end) => (await ask({ op: "claim", start, end })) as number,
    isHeld: async (handle) => (await ask({ op: "isHeld", handle })) as boolean,
    release: async (handle) => void (await ask({ op: "release", handle })),
  };
}

const SETUPS: [string, (locks: RangeLocks) => Promise<[Party, Party]>][] = [
  ["in one thread", async (locks) => [local(locks), local(locks)]],
  ["shared across Workers", async (locks) => [local(locks), await remote(locks)]],
  ["both parties in Workers", async (locks) => [await remote(locks), await remote(locks)]],
];

for (const [setup, parties] of SETUPS) {
  describe(`range locks ${setup}`, () => {
    test("overlap admitted: an overlapping claim waits until the holder releases; a disjoint one does not", async () => {
      const locks = new RangeLocks(8);
      const [a, b] = await parties(locks);
      const first = await a.claim(0, 4096);
      expect(await a.isHeld(first)).toBe(true);
      const overlapping = await b.claim(4095, 8192);
      const disjoint = await b.claim(4096, 8192); // touches, does not overlap the first
      expect(await b.isHeld(overlapping)).toBe(false);
      expect(await b.isHeld(disjoint)).toBe(false); // it overlaps the earlier waiting claim: arrival order
      await b.release(overlapping);
      expect(await b.isHeld(disjoint)).toBe(true);
      const third = await b.claim(100, 200);
      expect(await b.isHeld(third)).toBe(false);
      await a.release(first);
      expect(await b.isHeld(third)).toBe(true);
      await b.release(third);
      await b.release(disjoint);
      expect(locks.size).toBe(0);
    });

    test("stale release: releasing twice, or after the entry was reused, frees nobody else's range", async () => {
      const locks = new RangeLocks(1); // one entry, so the second claim reuses it
      const [a, b] = await parties(locks);
      const old = await a.claim(0, 512);
      await a.release(old);
      const current = await b.claim(0, 512);
      expect(await b.isHeld(current)).toBe(true);
      await a.release(old); // stale: must not free `current`
      await a.release(old);
      expect(await b.isHeld(current)).toBe(true);
      expect(locks.size).toBe(1);
      expect(await a.claim(256, 768)).toBe(-1); // the table is full: nothing slipped in beside `current`
      await b.release(current);
      expect(locks.size).toBe(0);
    });

    test("waiter starved: a large waiting claim is served before later small claims that overlap it", async () => {
      const locks = new RangeLocks(16);
      const [a, b] = await parties(locks);
      const small = await a.claim(0, 512);
      const large = await b.claim(0, 65536);
      expect(await b.isHeld(large)).toBe(false);
      const later: number[] = [];
      for (let i = 1; i < 8; i++) later.push(await a.claim(i * 4096, i * 4096 + 512)); // each overlaps only the large one
      for (const handle of later) expect(await a.isHeld(handle)).toBe(false);
      await a.release(small);
      expect(await b.isHeld(large)).toBe(true);
      for (const handle of later) expect(await a.isHeld(handle)).toBe(false);
      await b.release(large);
      for (const handle of later) expect(await a.isHeld(handle)).toBe(true);
      for (const handle of later) await a.release(handle);
      expect(locks.size).toBe(0);
    });

    test("release out of order: holders released in any order promote their waiters by arrival", async () => {
      const locks = new RangeLocks(8);
      const [a, b] = await parties(locks);
      const held = [await a.claim(0, 100), await a.claim(100, 200), await a.claim(200, 300)];
      const spanning = await b.claim(50, 250); // waits for all three
      const tail = await b.claim(200, 300); // behind the spanning claim and the third holder
      await a.release(held[1]!);
      expect(await b.isHeld(spanning)).toBe(false);
      await a.release(held[2]!);
      expect(await b.isHeld(tail)).toBe(false); // the earlier spanning claim still waits and overlaps it
      await a.release(held[0]!);
      expect(await b.isHeld(spanning)).toBe(true);
      expect(await b.isHeld(tail)).toBe(false);
      await b.release(spanning);
      expect(await b.isHeld(tail)).toBe(true);
      await b.release(tail);
      expect(locks.size).toBe(0);
    });
  });
}

describe("range locks, promise-shaped", () => {
  test("acquire waits for the release (notified in the same thread) and its release is idempotent", async () => {
    const locks = new RangeLocks(4);
    const releaseFirst = await locks.acquire(0, 4096);
    let second = false;
    const waiting = locks.acquire(0, 4096).then((release) => {
      second = true;
      return release;
    });
    await Bun.sleep(20);
    expect(second).toBe(false);
    releaseFirst();
    const releaseSecond = await waiting;
    releaseFirst(); // stale: the second holder keeps its range
    expect(locks.size).toBe(1);
    releaseSecond();
    releaseSecond();
    expect(locks.size).toBe(0);
  });

  test("a full table makes acquire wait for a free entry instead of failing", async () => {
    const locks = new RangeLocks(1);
    const release = await locks.acquire(0, 10);
    const next = locks.acquire(100, 110);
    await Bun.sleep(10);
    release();
    (await next)();
    expect(locks.size).toBe(0);
  });

  test("a range that is not a non-empty range of disk bytes is refused", () => {
    const locks = new RangeLocks(2);
    expect(() => locks.claim(10, 10)).toThrow("not a non-empty range");
    expect(() => locks.claim(-1, 10)).toThrow("not a non-empty range");
    expect(() => new RangeLocks(0)).toThrow("capacity 0");
  });
});

test("property: the table agrees with a reference model of held and waiting claims", () => {
  type Command = { kind: "claim"; start: number; len: number } | { kind: "release"; pick: number } | { kind: "poll"; pick: number };
  const command = fc.oneof(
    fc.record({ kind: fc.constant("claim" as const), start: fc.integer({ min: 0, max: 60 }), len: fc.integer({ min: 1, max: 20 }) }),
    fc.record({ kind: fc.constant("release" as const), pick: fc.nat() }),
    fc.record({ kind: fc.constant("poll" as const), pick: fc.nat() }),
  );
  fc.assert(
    fc.property(fc.array(command, { maxLength: 60 }), (commands: Command[]) => {
      const locks = new RangeLocks(6);
      // Model: claims in arrival order; a claim is held once no held claim and no earlier claim overlaps it.
      const model: { handle: number; start: number; end: number; held: boolean }[] = [];
      const handles: number[] = [];
      const overlaps = (x: { start: number; end: number }, y: { start: number; end: number }) => x.start < y.end && y.start < x.end;
      const modelHeld = (claim: (typeof model)[number]) => {
        if (!claim.held) {
          const index = model.indexOf(claim);
          claim.held = model.every((other, i) => other === claim || !overlaps(other, claim) || (!other.held && i > index));
        }
        return claim.held;
      };
      for (const c of commands) {
        if (c.kind === "claim") {
          const handle = locks.claim(c.start, c.start + c.len);
          if (model.length === 6) {
            expect(handle).toBe(-1);
            continue;
          }
          expect(handle).toBeGreaterThanOrEqual(0);
          const claim = { handle, start: c.start, end: c.start + c.len, held: false };
          model.push(claim);
          handles.push(handle);
          expect(locks.isHeld(handle)).toBe(modelHeld(claim));
        } else if (handles.length > 0) {
          const handle = handles[c.pick % handles.length]!; // may be stale: released before
          const claim = model.find((m) => m.handle === handle);
          if (c.kind === "release") {
            locks.release(handle);
            if (claim !== undefined) model.splice(model.indexOf(claim), 1);
          } else {
            expect(locks.isHeld(handle)).toBe(claim === undefined ? false : modelHeld(claim));
          }
        }
        // Held claims never overlap.
        const held = model.filter((m) => m.held);
        for (const x of held) for (const y of held) if (x !== y) expect(overlaps(x, y)).toBe(false);
        expect(locks.size).toBe(model.length);
      }
    }),
    { numRuns: 300 },
  );
});
