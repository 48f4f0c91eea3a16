/**
 * Concurrency: several Workers, each with io_uring at queue depth 32, writing overlapping
 * unaligned ranges (read-modify-write through bounce buffers) into one disk region at once.
 * Over many random runs the final disk equals a sequential replay of the completed writes in
 * the order they took effect, and the shared bounce budget and range locks come back whole.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { BounceBufferTracker, GuestMemory } from "../src";
import { closeFd, createMemfd, truncateFd } from "../src/native";
import { RangeLocks } from "../src/io/range-locks";
import { PAGE, randomBytes, scratchDir } from "./helpers";

const dir = scratchDir("concurrency");
const WORKER_URL = new URL("./fixtures/rmw-writer.ts", import.meta.url);
const WORKERS = 3;
const WRITES_PER_WORKER = 40;
const QD = 32;
const REGION = 24 * 1024; // small, so that writes overlap a lot
const BUDGET_PAGES = 6;
const RUNS = 8;

const memfd = createMemfd("concurrency-guest");
const GUEST_PAGES = WORKERS * WRITES_PER_WORKER * 2;
truncateFd(memfd, GUEST_PAGES * PAGE);
const guestPath = `/proc/self/fd/${memfd}`;
afterAll(() => closeFd(memfd));

interface WriteSpec {
  gpns: number[];
  offset: number;
  len: number;
  at: number;
}

function runWorker(message: Record<string, unknown>): Promise<number[]> {
  const worker = new Worker(WORKER_URL);
  return new Promise<number[]>((resolve, reject) => {
    worker.onmessage = (event: MessageEvent) => {
      worker.terminate();
      if (event.data.error !== undefined) reject(new Error(event.data.error));
      else resolve(event.data.sequences);
    };
    worker.onerror = (event) => {
      worker.terminate();
      reject(new Error(event.message));
    };
    worker.postMessage(message);
  });
}

test(`${RUNS} random runs: ${WORKERS} Workers x ${WRITES_PER_WORKER} overlapping unaligned writes at qd ${QD} equal a sequential replay`, async () => {
  for (let run = 0; run < RUNS; run++) {
    const random = randomBytes(WORKERS * WRITES_PER_WORKER * 8, 1000 + run);
    const guest = randomBytes(GUEST_PAGES * PAGE, 2000 + run);
    {
      using memory = GuestMemory.open(guestPath);
      memory.write(0, guest);
    }
    const diskPath = join(dir, `disk-${run}.bin`);
    const initial = randomBytes(64 * 1024, 3000 + run);
    writeFileSync(diskPath, initial);

    // Each write has two guest pages of its own, an unaligned memory offset, length and disk offset.
    const plans: WriteSpec[][] = [];
    for (let w = 0; w < WORKERS; w++) {
      const writes: WriteSpec[] = [];
      for (let i = 0; i < WRITES_PER_WORKER; i++) {
        const r = (k: number) => random[(w * WRITES_PER_WORKER + i) * 8 + k]! * 256 + random[(w * WRITES_PER_WORKER + i) * 8 + k + 1]!;
        const first = (w * WRITES_PER_WORKER + i) * 2;
        const len = 1 + (r(0) % 3000);
        const offset = r(2) % PAGE;
        const at = r(4) % (REGION - len);
        writes.push({ gpns: [first, first + 1], offset, len, at });
      }
      plans.push(writes);
    }
    const locks = new RangeLocks(256);
    const tracker = new BounceBufferTracker(BUDGET_PAGES, WORKERS);
    const sequence = new SharedArrayBuffer(4);
    const sequences = await Promise.all(
      plans.map((writes, thread) =>
        runWorker({ guestPath, diskPath, locks: locks.shared, tracker: tracker.shared, sequence, thread, qd: QD, writes }),
      ),
    );

    // Replay every write, in the order they took effect, on the initial disk.
    const ordered = plans.flatMap((writes, w) => writes.map((write, i) => ({ write, order: sequences[w]![i]! })));
    expect(ordered.every((entry) => entry.order >= 0)).toBe(true);
    expect(new Set(ordered.map((entry) => entry.order)).size).toBe(ordered.length);
    ordered.sort((a, b) => a.order - b.order);
    const model = Uint8Array.from(initial);
    for (const { write } of ordered) {
      const source = write.gpns[0]! * PAGE + write.offset;
      model.set(guest.subarray(source, source + write.len), write.at);
    }
    const actual = new Uint8Array(readFileSync(diskPath));
    const difference = actual.findIndex((byte, i) => byte !== model[i]);
    expect({ run, difference }).toEqual({ run, difference: -1 });

    // Nothing leaked: every page back in every slot, every range released, the budget respected.
    for (let thread = 0; thread < WORKERS; thread++) {
      expect(tracker.freePages(thread)).toBe(BUDGET_PAGES);
      const stats = tracker.stats(thread);
      expect(stats.peakPages).toBeLessThanOrEqual(BUDGET_PAGES);
      expect(stats.acquired).toBe(WRITES_PER_WORKER);
    }
    expect(locks.size).toBe(0);
  }
});

describe("two processes, one disk", () => {
  const dir = scratchDir("two-processes");
  test("plain aligned writes and read-modify-writes of the same blocks from two processes lose no update", async () => {
    // The aligned writer writes every block whole; the read-modify-writer reads a block, changes
    // bytes 8..108 and writes it back. Unless the two are ordered, the write-back can carry the
    // block as it was before an aligned write that landed in between: that write is lost.
    const diskPath = join(dir, "overlap.bin");
    const blocks = 16;
    const rounds = 60;
    // The race is a matter of timing: each trial gives it many chances; without ordering, one in a
    // few trials loses a block (measured), so ten trials catch it.
    for (let trial = 0; trial < 10; trial++) {
      writeFileSync(diskPath, new Uint8Array(blocks * 512));
      const children = ["rmw", "aligned"].map((role) => {
        const guest = join(dir, `overlap-${role}.img`);
        writeFileSync(guest, new Uint8Array(4096));
        return Bun.spawn([process.execPath, join(import.meta.dir, "fixtures/overlap-writer.ts"), guest, diskPath, role, String(blocks), String(rounds)], { stderr: "pipe" });
      });
      const codes = await Promise.all(children.map((child) => child.exited));
      expect({ codes, stderr: await Promise.all(children.map((child) => new Response(child.stderr).text())) }).toEqual({ codes: [0, 0], stderr: ["", ""] });
      const bytes = readFileSync(diskPath);
      // Outside the read-modify-writer's bytes, only the aligned writer wrote: every byte is its last round's.
      const lost: number[] = [];
      for (let block = 0; block < blocks; block++) {
        const at = block * 512;
        const outside = [...bytes.subarray(at, at + 8), ...bytes.subarray(at + 108, at + 512)];
        if (!outside.every((byte) => byte === rounds)) lost.push(block);
      }
      expect({ trial, lost }).toEqual({ trial, lost: [] });
    }
  }, 120_000);

  test("read-modify-writes into the same blocks from two processes lose no update (open file description locks)", async () => {
    const diskPath = join(dir, "disk.bin");
    const blocks = 8;
    for (let round = 0; round < 3; round++) {
      writeFileSync(diskPath, new Uint8Array(blocks * 4096));
      const children = [0, 1].map((role) => {
        const guest = join(dir, `guest-${role}.img`);
        writeFileSync(guest, new Uint8Array(4096));
        return Bun.spawn([process.execPath, join(import.meta.dir, "fixtures/rmw-process.ts"), guest, diskPath, String(role), String(blocks), String(round * 2 + role + 1)], { stderr: "pipe" });
      });
      const codes = await Promise.all(children.map((child) => child.exited));
      expect({ round, codes, stderr: await Promise.all(children.map((child) => new Response(child.stderr).text())) }).toEqual({ round, codes: [0, 0], stderr: ["", ""] });
      const bytes = readFileSync(diskPath);
      const lost: string[] = [];
      for (let block = 0; block < blocks; block++) {
        for (let chunk = 0; chunk < 40; chunk++) {
          const at = block * 4096 + chunk * 100;
          const expected = chunk % 2 === 0 ? 0xaa : 0xbb;
          if (!bytes.subarray(at, at + 100).every((byte) => byte === expected)) lost.push(`block ${block} chunk ${chunk}`);
        }
      }
      expect({ round, lost }).toEqual({ round, lost: [] });
    }
  }, 60_000);
});

describe("bench on a disk you named orders its writes against other processes'", () => {
  const dir = scratchDir("bench-locks");
  const strace = Bun.which("strace");
  test.skipIf(strace === null)(`every write takes a lock on its range (strace counts them), and --no-file-locks takes none and says so${strace === null ? " (skipped: strace is not installed)" : ""}`, () => {
    const disk = join(dir, "named.bin");
    writeFileSync(disk, new Uint8Array(4 * 2 ** 20));
    const locks = (...extra: string[]) => {
      const trace = join(dir, "locks.txt");
      const run = Bun.spawnSync([strace!, "-f", "-qq", "-o", trace, "-e", "trace=fcntl", process.execPath, join(import.meta.dir, "../cli/bounce-bench.ts"), "bench", "--disk", disk, "--force", "--op", "write", "--bs", "4k", "--mode", "auto", "--ios", "40", "--repeat", "1", "--json", ...extra]);
      expect(run.exitCode).toBe(0);
      const doc = JSON.parse(run.stdout.toString());
      const calls = readFileSync(trace, "utf8").split("\n").filter((line) => line.includes("F_OFD_SETLK")).length;
      return { fileLocks: doc.host.fileLocks.on, calls };
    };
    const on = locks();
    const off = locks("--no-file-locks");
    expect([on.fileLocks, off.fileLocks]).toEqual([true, false]);
    // A lock and an unlock per write; without, none but the run's own scratch directory's marker.
    expect(on.calls - off.calls).toBeGreaterThanOrEqual(2 * 40);
    expect(off.calls).toBeLessThan(8);
  });
});
