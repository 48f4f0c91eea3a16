/**
 * `npm run soak`: random IO with verification for a set time (opt-in, not part of `npm test`).
 *
 *   npm run soak                        60 s
 *   npm run soak -- --seconds 600 --seed 7
 *
 * Each round is either a write of random segments (random GPNs, memory offsets, lengths, disk
 * offset and mode) followed by a read of the same disk bytes into other pages, or a batch of
 * overlapping unaligned writes in flight at once over io_uring. After every round the disk is
 * compared with a model of it and the guest pages read with the disk. Reports the IOs verified
 * and every mismatch (with the round's seed, to replay it); exits 1 if there was any.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Disk, executePlan, GuestMemory, PagedRange, plan, RangeLocks, IoQueue, type IoMode } from "../src";
import { numberFlag, scriptOptions } from "./script-options";

const flags = scriptOptions("soak", { seconds: { type: "string", default: "60" }, seed: { type: "string" } });
const seconds = numberFlag("soak", "seconds", flags.seconds, 1);
let seed = flags.seed === undefined ? Date.now() % 1_000_000 : numberFlag("soak", "seed", flags.seed, 1);
const GUEST_PAGES = 256;
const DISK_BYTES = 4 * 2 ** 20;
const PAGE = 4096;

function random(): number {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return (seed >>> 0) / 2 ** 32;
}
const below = (n: number) => Math.floor(random() * n);

const dir = mkdtempSync(join(tmpdir(), "bounce-bench-soak-"));
let stopping = false;
process.on("SIGINT", () => (stopping = true));
process.on("SIGTERM", () => (stopping = true));

/** Random segments over distinct pages taken from `pool` (consumed). */
function randomSegments(pool: number[], maxBytes: number): PagedRange[] {
  const segments: PagedRange[] = [];
  let total = 0;
  for (let n = 1 + below(4); n > 0 && pool.length >= 3; n--) {
    const gpns = pool.splice(below(pool.length - 2), 1 + below(2));
    if (random() < 0.5 && pool.length > 0) gpns.push(gpns[gpns.length - 1]! + 0); // a repeated page now and then
    const span = gpns.length * PAGE;
    const offset = random() < 0.5 ? below(span / 512) * 512 : below(span);
    const len = Math.min(1 + below(span - offset), maxBytes - total);
    if (len <= 0) break;
    segments.push(new PagedRange(offset, len, gpns));
    total += len;
  }
  return segments;
}

function streamAddresses(segments: PagedRange[]): number[] {
  return segments.flatMap((segment) => segment.runs().flatMap((run) => Array.from({ length: run.len }, (_, i) => run.gpn * PAGE + run.offset + i)));
}

const guestPath = join(dir, "guest.img");
const diskPath = join(dir, "disk.bin");
using memory = GuestMemory.create(guestPath, GUEST_PAGES * PAGE);
const guest = new Uint8Array(GUEST_PAGES * PAGE).map(() => below(256));
memory.write(0, guest);
const model = new Uint8Array(DISK_BYTES).map(() => below(256));
writeFileSync(diskPath, model);

let ios = 0;
let bytes = 0;
const mismatches: string[] = [];
const started = Date.now();
let lastReport = started;

try {
  while (!stopping && Date.now() - started < seconds * 1000) {
    const roundSeed = seed;
    const modes: IoMode[] = ["auto", "auto", "bounce", "buffered"];
    const mode = modes[below(modes.length)]!;
    if (random() < 0.8) {
      // Write random segments, then read the same bytes back into other pages.
      const pool = Array.from({ length: GUEST_PAGES / 2 }, (_, i) => i);
      const segments = randomSegments(pool, 64 * 1024);
      if (segments.length === 0) continue;
      const addresses = streamAddresses(segments);
      const at = random() < 0.5 ? below((DISK_BYTES - addresses.length) / 512) * 512 : below(DISK_BYTES - addresses.length);
      {
        using disk = Disk.open(diskPath, { write: true, direct: mode !== "buffered" });
        await executePlan(plan({ op: "write", mode, at, segments, alignment: disk.alignment }), memory, disk);
      }
      addresses.forEach((gpa, i) => (model[at + i] = guest[gpa]!));
      const back = randomSegments(Array.from({ length: GUEST_PAGES / 2 }, (_, i) => GUEST_PAGES / 2 + i), addresses.length);
      const backLen = back.reduce((sum, s) => sum + s.len, 0);
      {
        using disk = Disk.open(diskPath, { write: false, direct: mode !== "buffered" });
        await executePlan(plan({ op: "read", mode, at, segments: back, alignment: disk.alignment }), memory, disk);
      }
      streamAddresses(back).forEach((gpa, i) => (guest[gpa] = model[at + i]!));
      ios += 2;
      bytes += addresses.length + backLen;
    } else {
      // Overlapping unaligned writes in flight at once.
      using disk = Disk.open(diskPath, { write: true, direct: true });
      using queue = new IoQueue(16);
      const locks = new RangeLocks();
      const order: number[] = [];
      const writes = Array.from({ length: 2 + below(12) }, (_, i) => {
        const gpn = below(GUEST_PAGES - 1);
        const len = 1 + below(3000);
        const segments = [new PagedRange(below(PAGE), len, [gpn, gpn + 1])];
        const at = below(32 * 1024);
        return { segments, at, index: i };
      });
      const settled = await queue.drive(
        writes.map((w) =>
          executePlan(plan({ op: "write", mode: "auto", at: w.at, segments: w.segments, alignment: disk.alignment }), memory, disk, {
            queue,
            locks,
            onDone: () => order.push(w.index),
          }),
        ),
      );
      const failed = settled.find((s) => s.status === "rejected");
      if (failed !== undefined) throw (failed as PromiseRejectedResult).reason;
      for (const index of order) {
        const w = writes[index]!;
        streamAddresses(w.segments).forEach((gpa, i) => (model[w.at + i] = guest[gpa]!));
        bytes += w.segments[0]!.len;
      }
      ios += writes.length;
    }
    memory.sync();
    const disk = readFileSync(diskPath);
    const image = readFileSync(guestPath);
    const firstDifference = (a: Buffer, b: Uint8Array) => (a.equals(b) ? -1 : a.findIndex((byte, i) => byte !== b[i]));
    const diskDiff = firstDifference(disk, model);
    const guestDiff = firstDifference(image, guest);
    if (diskDiff >= 0 || guestDiff >= 0) {
      mismatches.push(`round seed ${roundSeed} (${mode}): ${diskDiff >= 0 ? `disk differs at ${diskDiff}` : ""} ${guestDiff >= 0 ? `guest differs at ${guestDiff}` : ""}`.trim());
      model.set(disk); // carry on from what is there
      memory.read(0, guest);
    }
    if (Date.now() - lastReport > 5000) {
      lastReport = Date.now();
      process.stderr.write(`soak: ${((lastReport - started) / 1000).toFixed(0)} s, ${ios} IOs verified, ${mismatches.length} mismatches\n`);
    }
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}

const elapsed = (Date.now() - started) / 1000;
console.log(`soak: ${elapsed.toFixed(1)} s, ${ios} IOs verified (${(bytes / 2 ** 20).toFixed(1)} MiB), ${mismatches.length} mismatches${stopping ? " (interrupted)" : ""}`);
for (const mismatch of mismatches) console.log(`  ${mismatch}`);
process.exitCode = mismatches.length > 0 ? 1 : 0;
