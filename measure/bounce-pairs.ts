/**
 * `npm run bench:pairs`: what bouncing adds to an IO beyond its copy, measured IO by IO. Not a
 * test: it prints numbers, it asserts nothing.
 *
 * One thread runs three kinds of IO of the same guest buffer through the executor every command
 * uses (queue depth 1), and charges each IO's thread CPU time (clock read around it) to its kind:
 *
 *   direct   the guest buffer straight to the disk
 *   bounced  through a bounce buffer, as the bench runs it (budget taken, copies timed)
 *   beside   the direct IO, with the bounced IO's copy made next to it by this script, the same
 *            bytes between the same two buffers, run the other way so that the IO's buffer is
 *            the one the copy touches as in a bounced IO: before a write, into the guest buffer
 *            it then writes from (a bounced write sends bytes just copied); after a read, out of
 *            the guest buffer it has just read into. The IO never sees the bounce buffer. What
 *            the copy costs next to an IO that is otherwise unchanged: the floor under any
 *            bounce that copies this way. (Copied the bounced way, a write would send bytes
 *            that were only read, which cost 0.5-1.2 us less per 64 KiB here.)
 *
 * So the extra (bounced - direct) splits into the floor (beside - direct) and what bouncing
 * costs beyond it (bounced - beside). The goal compares the extra with the copy's own cost, its
 * timed copies (one in seven, as in every run): extra / copy at most 1.1.
 *
 * The kinds run in cycles, each kind `RUN_LENGTH` IOs in a row, in an order shuffled every
 * cycle. A run's first IO is not counted: it pays for the kind before it (caches full of other
 * bytes), and a fixed order would charge that to one kind. Each cycle gives one difference per
 * pair of kinds, so whatever drifts on the machine (a VM's host most of all) drifts under all
 * three alike; standard errors come from the spread of those differences across cycles. The
 * first second is dropped (a young process's IO costs more, docs/performance.md).
 *
 * Guest memory is a memfd on 4 KiB pages; the bounce buffer is laid out physically like the guest
 * buffer (as root), so the device sees as many segments either way. The disk (`--disk`):
 *
 *   file        a 256 MiB file in the temporary directory
 *   loop        a scratch loop device over such a file (root)
 *   tmpfs-loop  a scratch loop device over a file on a scratch tmpfs (root): a real block
 *               device whose IO never leaves the guest's memory, no device or hypervisor under it
 *
 *   npm run bench:pairs
 *   npm run bench:pairs -- --seconds 30 --bs 64k --op write --disk tmpfs-loop --json
 *   npm run bench:pairs -- --engine null      (no device at all: the bounce path's own cost)
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { table } from "../cli/format";
import { parseSize } from "../src/base/value-parsers";
import { requestAlignment } from "../src/base/alignment-rules";
import { BounceBufferTracker } from "../src/bounce/bounce-tracker";
import { BounceSlots } from "../src/bench/bounce-slots";
import { createFilledDisk, fillDisk } from "../src/bench/workspace";
import { Disk } from "../src/disk/disk";
import { ScratchDisk, scratchDiskUnavailable } from "../src/host/scratch-disks";
import { Executor } from "../src/io/executor";
import { plan, type IoOp } from "../src/io/planner";
import { PreparedIo } from "../src/io/prepared-io";
import { GuestMemory } from "../src/memory/guest-memory";
import { PagedRange } from "../src/memory/paged-range";
import { closeFd, createMemfd, threadCpuNs, truncateFd } from "../src/native";
import { loopOverTmpfs } from "./scratch-devices";
import { numberFlag, scriptOptions, usage } from "./script-options";

const DISKS = ["file", "loop", "tmpfs-loop"] as const;
type DiskChoice = (typeof DISKS)[number];

const flags = scriptOptions("bench:pairs", {
  seconds: { type: "string", default: "15" },
  bs: { type: "string", default: "64k,1m" },
  op: { type: "string", default: "read,write" },
  engine: { type: "string", default: "sync" },
  disk: { type: "string", default: "file" },
  json: { type: "boolean", default: false },
});
const fail = (message: string): never => usage("bench:pairs", message);
const seconds = numberFlag("bench:pairs", "seconds", flags.seconds, 1.5);
const sizes = flags.bs.split(",").map((text) => {
  try {
    return parseSize(text, "--bs");
  } catch (error) {
    return fail((error as Error).message);
  }
});
const ops = flags.op.split(",") as IoOp[];
if (!ops.every((op) => op === "read" || op === "write")) fail(`--op ${flags.op}: read, write or both`);
if (flags.engine !== "sync" && flags.engine !== "null") fail(`--engine ${flags.engine}: sync or null`);
const engine = flags.engine as "sync" | "null";
if (!(DISKS as readonly string[]).includes(flags.disk)) fail(`--disk ${flags.disk}: one of ${DISKS.join(", ")}`);
const diskChoice = flags.disk as DiskChoice;
if (engine === "null" && diskChoice !== "file") fail(`--disk ${diskChoice}: the null engine does no IO, so there is no disk to choose`);
if (diskChoice !== "file") {
  const unavailable = scratchDiskUnavailable(diskChoice === "loop" ? "loop" : "tmpfs") ?? scratchDiskUnavailable("loop");
  if (unavailable !== null) fail(`--disk ${diskChoice}: ${unavailable}`);
}

const WARM_UP_MS = 1000;
/**
 * IOs of one kind in a row. Long enough that a run's first IO, which carries the kind before
 * it, can be left out, and short enough (a cycle is a few milliseconds) that drift hits all
 * three kinds of a cycle alike.
 */
const RUN_LENGTH = 32;
const DISK_BYTES = 256 * 2 ** 20;

const DIRECT = 0;
const BOUNCED = 1;
const BESIDE = 2;
const KINDS = 3;

/** Running sums of one quantity, one value per cycle or per IO. */
class Tally {
  count = 0;
  sum = 0;
  squares = 0;
  add(value: number): void {
    this.count++;
    this.sum += value;
    this.squares += value * value;
  }
  get mean(): number {
    return this.sum / this.count;
  }
  /** Standard error of the mean. */
  get standardError(): number {
    return Math.sqrt(Math.max(0, this.squares / this.count - this.mean ** 2) / this.count);
  }
}

interface PairResult {
  op: IoOp;
  bs: number;
  engine: string;
  disk: DiskChoice;
  /** Cycles measured; each counted `RUN_LENGTH - 1` IOs of every kind. */
  cycles: number;
  ios: number;
  directUs: number;
  bouncedUs: number;
  besideUs: number;
  /** bounced - direct */
  extraUs: number;
  extraStandardErrorUs: number;
  /** The copy's own cost: its timed copies. */
  copyUs: number;
  /** extra / copy: the goal is at most 1.1. */
  ratio: number;
  /** beside - direct: the copy next to an otherwise unchanged IO. */
  floorUs: number;
  floorStandardErrorUs: number;
  floorRatio: number;
  /** bounced - beside: what bouncing costs beyond the floor. */
  beyondFloorUs: number;
  beyondFloorStandardErrorUs: number;
  guestSegments: number | null;
  layoutMatched: boolean | null;
}

/** A fixed sequence of shuffles, so that every run of the script sees the same orders. */
function shuffler(): (order: number[]) => void {
  let x = 0x9e3779b9;
  return (order) => {
    for (let i = order.length - 1; i > 0; i--) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      const j = (x >>> 0) % (i + 1);
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
  };
}

/** Runs the three kinds of IO of one guest buffer in shuffled cycles for `seconds`, after the warm-up. */
async function measure(diskPath: string, op: IoOp, bs: number): Promise<PairResult> {
  const pages = Math.ceil(bs / 4096);
  const fd = createMemfd("bounce-bench-pairs");
  try {
    truncateFd(fd, pages * 4096);
    using memory = GuestMemory.open(`/proc/self/fd/${fd}`);
    using disk = Disk.open(diskPath, { write: op === "write", direct: true });
    const request = [new PagedRange(0, bs, Array.from({ length: pages }, (_, gpn) => gpn))];
    const direct = plan({ op, mode: "auto", at: 0, segments: request, alignment: disk.alignment });
    const bounced = plan({ op, mode: "bounce", at: 0, segments: request, alignment: disk.alignment });
    // The bench's own bounce memory: laid out in the guest buffer's physical runs (as root).
    const guestRuns = memory.physicalRunsOf(request);
    using bounce = new BounceSlots(bounced.bounceBytes, 1, requestAlignment(disk.alignment, op), false, [guestRuns]);
    const tracker = new BounceBufferTracker(2048, 1);
    using directIo = PreparedIo.prepare(direct, memory, disk);
    using bouncedIo = PreparedIo.prepare(bounced, memory, disk, { bounce: bounce.slot(0), budget: { tracker, thread: 0 } });
    // The bounced IO's own copies, for `beside` to make the same ones the other way.
    const guestViews = bouncedIo.guestViews;
    const bounceViews = bouncedIo.bounceViews;
    const write = op === "write";
    let failure: Error | null = null;
    using executor = new Executor(engine, 1, (_slot, error) => void (failure ??= error));

    const perIo = [new Tally(), new Tally(), new Tally()];
    const extra = new Tally();
    const floor = new Tally();
    const beyondFloor = new Tally();
    const cycleSums = new Float64Array(KINDS);
    const order = [DIRECT, BOUNCED, BESIDE];
    const shuffle = shuffler();
    const blocks = Math.floor(disk.size / bs);
    const cycleLength = KINDS * RUN_LENGTH;
    const warmUntil = performance.now() + WARM_UP_MS;
    const end = warmUntil + seconds * 1000;
    // Everything counts from the first cycle after the warm-up, the copies' own cost too.
    let measuring = false;
    let copiesBefore = 0;
    let copyNsBefore = 0;
    for (let i = 0; ; i++) {
      const inCycle = i % cycleLength;
      if (inCycle === 0) {
        if (measuring) {
          const perKind = RUN_LENGTH - 1;
          extra.add((cycleSums[BOUNCED]! - cycleSums[DIRECT]!) / perKind);
          floor.add((cycleSums[BESIDE]! - cycleSums[DIRECT]!) / perKind);
          beyondFloor.add((cycleSums[BOUNCED]! - cycleSums[BESIDE]!) / perKind);
        }
        const now = performance.now();
        if (now >= end) break;
        if (!measuring && now >= warmUntil) {
          measuring = true;
          copiesBefore = executor.copies;
          copyNsBefore = executor.copyNs;
        }
        cycleSums.fill(0);
        shuffle(order);
      }
      const kind = order[Math.floor(inCycle / RUN_LENGTH)]!;
      const started = threadCpuNs();
      if (kind === BESIDE && write) for (let j = 0; j < guestViews.length; j++) guestViews[j]!.set(bounceViews[j]!);
      executor.start(0, kind === BOUNCED ? bouncedIo : directIo, (i % blocks) * bs);
      while (executor.active > 0) if (!executor.poll()) await executor.wake();
      if (kind === BESIDE && !write) for (let j = 0; j < guestViews.length; j++) bounceViews[j]!.set(guestViews[j]!);
      const cpuNs = threadCpuNs() - started;
      if (failure !== null) throw failure;
      if (measuring && inCycle % RUN_LENGTH !== 0) {
        perIo[kind]!.add(cpuNs);
        cycleSums[kind]! += cpuNs;
      }
    }
    const copyNs = (executor.copyNs - copyNsBefore) / (executor.copies - copiesBefore);
    const us = (ns: number) => ns / 1e3;
    return {
      op,
      bs,
      engine,
      disk: diskChoice,
      cycles: extra.count,
      ios: perIo.reduce((sum, tally) => sum + tally.count, 0),
      directUs: us(perIo[DIRECT]!.mean),
      bouncedUs: us(perIo[BOUNCED]!.mean),
      besideUs: us(perIo[BESIDE]!.mean),
      extraUs: us(extra.mean),
      extraStandardErrorUs: us(extra.standardError),
      copyUs: us(copyNs),
      ratio: extra.mean / copyNs,
      floorUs: us(floor.mean),
      floorStandardErrorUs: us(floor.standardError),
      floorRatio: floor.mean / copyNs,
      beyondFloorUs: us(beyondFloor.mean),
      beyondFloorStandardErrorUs: us(beyondFloor.standardError),
      guestSegments: guestRuns?.length ?? null,
      layoutMatched: bounce.layoutMatched,
    };
  } finally {
    closeFd(fd);
  }
}

/** Scratch things made for the disk, removed last made first. */
const made: { remove(): void }[] = [];
const removeMade = () => {
  while (made.length > 0) made.pop()!.remove();
};
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    removeMade();
    process.exit(130);
  });
}

/** The disk of `--disk`, filled with data; what was made for it is in `made`. */
async function makeDisk(): Promise<{ path: string; what: string }> {
  if (diskChoice === "file") {
    const dir = mkdtempSync(join(tmpdir(), "bounce-bench-pairs-"));
    made.push({ remove: () => rmSync(dir, { recursive: true, force: true }) });
    const path = join(dir, "disk.bin");
    // The null engine never touches the disk: a small one will do.
    await createFilledDisk(path, engine === "sync" ? DISK_BYTES : 16 * 2 ** 20);
    return { path, what: `a file in ${tmpdir()}` };
  }
  if (diskChoice === "tmpfs-loop") {
    const device = await loopOverTmpfs(DISK_BYTES);
    made.push(device);
    return { path: device.path, what: `a loop device (${device.path}) over a file on tmpfs` };
  }
  const loop = ScratchDisk.make({ kind: "loop", size: DISK_BYTES });
  made.push(loop);
  await fillDisk(loop.path, DISK_BYTES);
  return { path: loop.path, what: `a loop device (${loop.path}) over a file in ${tmpdir()}` };
}

const results: PairResult[] = [];
let diskWhat = "";
try {
  if (engine === "sync") process.stderr.write(`filling a ${DISK_BYTES >> 20} MiB disk (${diskChoice}) ...\n`);
  const disk = await makeDisk();
  diskWhat = disk.what;
  for (const op of ops) {
    for (const bs of sizes) {
      process.stderr.write(`${op} ${bs} bytes: ${seconds} s after a ${WARM_UP_MS / 1000} s warm-up ...\n`);
      results.push(await measure(disk.path, op, bs));
    }
  }
} finally {
  removeMade();
}

if (flags.json) {
  console.log(JSON.stringify(results, null, 2));
} else {
  const rows: string[][] = [];
  for (const r of results) {
    rows.push([
      r.op,
      String(r.bs),
      String(r.cycles),
      r.directUs.toFixed(2),
      r.bouncedUs.toFixed(2),
      `${r.extraUs.toFixed(2)} (${r.extraStandardErrorUs.toFixed(2)})`,
      r.copyUs.toFixed(2),
      r.ratio.toFixed(2),
      r.floorRatio.toFixed(2),
      `${r.beyondFloorUs.toFixed(2)} (${r.beyondFloorStandardErrorUs.toFixed(2)})`,
      r.guestSegments === null ? "-" : String(r.guestSegments),
    ]);
  }
  const where = engine === "null" ? "null engine (no IO)" : `sync engine on ${diskWhat}`;
  const layouts = new Set(results.map((r) => (r.layoutMatched === null ? "not laid out like the guest's (frames are visible to root only)" : r.layoutMatched ? "laid out physically like the guest's" : "not laid out like the guest's (no huge page to take runs from)")));
  console.log(`direct, bounced and beside IOs in shuffled runs of ${RUN_LENGTH}, ${where}, qd 1: thread CPU per IO`);
  console.log(`bounce buffers ${[...layouts].join("; ")}`);
  console.log(
    table(
      ["op", "bs", "cycles", "direct us", "bounced us", "extra us (se)", "copy us", "extra/copy", "floor/copy", "beyond us (se)", "gsegs"],
      rows,
      ["left", "right", "right", "right", "right", "right", "right", "right", "right", "right", "right"],
    ).trimEnd(),
  );
  console.log("extra = bounced - direct (the goal: extra/copy at most 1.1); floor = beside - direct, where beside is the direct IO with");
  console.log("the bounced IO's copy made next to it, into or out of the IO's own buffer; beyond = bounced - beside. Standard errors");
  console.log("from the spread across cycles.");
}
