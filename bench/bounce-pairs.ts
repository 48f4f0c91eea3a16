/**
 * `npm run bench:pairs`: what bouncing adds to an IO beyond its copy, measured IO by IO. Not a
 * test: it prints numbers, it asserts nothing.
 *
 * One thread runs direct and bounced IOs of the same guest buffer in alternating runs of
 * `RUN_LENGTH`, through the executor every command uses (sync engine, queue depth 1), and
 * charges each IO's thread CPU time (clock read around each IO) to its kind. Whatever drifts on
 * the machine (a VM's host most of all) drifts under both kinds alike, which whole runs, even
 * interleaved, do not achieve: their differences spread over more than a 64 KiB copy here. The first second is
 * dropped (a young process's IO costs more, docs/performance.md). Guest memory is a memfd on
 * 4 KiB pages; the bounce buffer is laid out physically like the guest buffer (as root), so the
 * device sees as many segments either way. Reported per op and block size: both kinds' mean
 * CPU per IO, the extra with its standard error, the copy's own cost (one copy in seven timed),
 * and extra / copy (the goal: at most 1.1).
 *
 *   npm run bench:pairs
 *   npm run bench:pairs -- --seconds 30 --bs 64k --op write --engine null --json
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Table from "cli-table3";
import { parseSize } from "../src/base/value-parsers";
import { BounceBuffer } from "../src/bounce/bounce-buffer";
import { BounceBufferTracker } from "../src/bounce/bounce-tracker";
import { fitRuns } from "../src/bounce/physical-layout";
import { createFilledDisk } from "../src/bench/workspace";
import { Disk } from "../src/disk/disk";
import { Executor } from "../src/io/executor";
import { plan, type IoOp } from "../src/io/planner";
import { PreparedIo } from "../src/io/prepared-io";
import { GuestMemory } from "../src/memory/guest-memory";
import { PagedRange } from "../src/memory/paged-range";
import { closeFd, createMemfd, threadCpuNs, truncateFd } from "../src/native";
import { numberFlag, scriptOptions } from "./script-options";

const flags = scriptOptions("bench:pairs", {
  seconds: { type: "string", default: "15" },
  bs: { type: "string", default: "64k,1m" },
  op: { type: "string", default: "read,write" },
  engine: { type: "string", default: "sync" },
  json: { type: "boolean", default: false },
});
const seconds = numberFlag("bench:pairs", "seconds", flags.seconds, 1.5);
const sizes = flags.bs.split(",").map((text) => {
  try {
    return parseSize(text, "--bs");
  } catch (error) {
    process.stderr.write(`bench:pairs: ${(error as Error).message}\n`);
    process.exit(2);
  }
});
const ops = flags.op.split(",") as IoOp[];
if (!ops.every((op) => op === "read" || op === "write")) {
  process.stderr.write(`bench:pairs: --op ${flags.op}: read, write or both\n`);
  process.exit(2);
}
if (flags.engine !== "sync" && flags.engine !== "null") {
  process.stderr.write(`bench:pairs: --engine ${flags.engine}: sync or null\n`);
  process.exit(2);
}
const engine = flags.engine;
const WARM_UP_MS = 1000;
/**
 * IOs of one kind in a row. A bounced IO leaves the caches full of the bytes it copied, and the
 * IO after it pays for that: alternating single IOs would charge a bounced read's after-effects
 * to the direct read that follows. In runs of 32 only the first IO of a run carries the other
 * kind's, and 64 IOs (a few milliseconds) are still short enough for drift to hit both alike.
 */
const RUN_LENGTH = 32;
const DISK_BYTES = 256 * 2 ** 20;

/** Running sums of one kind's per-IO CPU times. */
class Tally {
  count = 0;
  sum = 0;
  squares = 0;
  add(ns: number): void {
    this.count++;
    this.sum += ns;
    this.squares += ns * ns;
  }
  get mean(): number {
    return this.sum / this.count;
  }
  /** Variance of the mean. */
  get meanVariance(): number {
    return (this.squares / this.count - this.mean ** 2) / this.count;
  }
}

interface PairResult {
  op: IoOp;
  bs: number;
  engine: string;
  ios: number;
  directUs: number;
  bouncedUs: number;
  extraUs: number;
  extraStandardErrorUs: number;
  copyUs: number;
  ratio: number;
  guestSegments: number | null;
  layoutMatched: boolean | null;
}

/** Alternates direct and bounced IOs of one guest buffer for `seconds`, after the warm-up. */
async function measurePair(diskPath: string, op: IoOp, bs: number): Promise<PairResult> {
  const pages = Math.ceil(bs / 4096);
  const fd = createMemfd("bounce-bench-pairs");
  try {
    truncateFd(fd, pages * 4096);
    using memory = GuestMemory.open(`/proc/self/fd/${fd}`);
    using disk = Disk.open(diskPath, { write: op === "write", direct: true });
    const request = [new PagedRange(0, bs, Array.from({ length: pages }, (_, gpn) => gpn))];
    const direct = plan({ op, mode: "auto", at: 0, segments: request, alignment: disk.alignment });
    const bounced = plan({ op, mode: "bounce", at: 0, segments: request, alignment: disk.alignment });
    // As the bench lays its bounce slots out: a page more than the IO, in the guest buffer's runs.
    const bounceBytes = bounced.bounceBytes + 4096;
    const guestRuns = memory.physicalRunsOf(request);
    using bounce = new BounceBuffer(bounceBytes, 4096, guestRuns === null ? {} : { runs: fitRuns(guestRuns, Math.ceil(bounceBytes / 4096)) });
    const tracker = new BounceBufferTracker(2048, 1);
    using directIo = PreparedIo.prepare(direct, memory, disk);
    using bouncedIo = PreparedIo.prepare(bounced, memory, disk, { bounce: { address: bounce.address() as number, bytes: bounce.bytes }, budget: { tracker, thread: 0 } });
    let failure: Error | null = null;
    using executor = new Executor(engine, 1, (_slot, error) => void (failure ??= error));
    const tallies = [new Tally(), new Tally()];
    const blocks = Math.floor(disk.size / bs);
    const warmUntil = performance.now() + WARM_UP_MS;
    const end = warmUntil + seconds * 1000;
    // The copies' own cost counts from the end of the warm-up, like the IOs.
    let measuring = false;
    let copiesBefore = 0;
    let copyNsBefore = 0;
    for (let i = 0; ; i++) {
      const now = performance.now();
      if (now >= end) break;
      if (!measuring && now >= warmUntil && i % (2 * RUN_LENGTH) === 0) {
        measuring = true;
        copiesBefore = executor.copies;
        copyNsBefore = executor.copyNs;
      }
      const kind = Math.floor(i / RUN_LENGTH) & 1;
      const started = threadCpuNs();
      executor.start(0, kind === 0 ? directIo : bouncedIo, (i % blocks) * bs);
      while (executor.active > 0) if (!executor.poll()) await executor.wake();
      const cpuNs = threadCpuNs() - started;
      if (failure !== null) throw failure;
      if (measuring) tallies[kind]!.add(cpuNs);
    }
    const [d, b] = tallies as [Tally, Tally];
    const copyNs = (executor.copyNs - copyNsBefore) / (executor.copies - copiesBefore);
    const extra = b.mean - d.mean;
    return {
      op,
      bs,
      engine,
      ios: d.count + b.count,
      directUs: d.mean / 1e3,
      bouncedUs: b.mean / 1e3,
      extraUs: extra / 1e3,
      extraStandardErrorUs: Math.sqrt(d.meanVariance + b.meanVariance) / 1e3,
      copyUs: copyNs / 1e3,
      ratio: extra / copyNs,
      guestSegments: guestRuns?.length ?? null,
      layoutMatched: bounce.layoutMatched,
    };
  } finally {
    closeFd(fd);
  }
}

const dir = mkdtempSync(join(tmpdir(), "bounce-bench-pairs-"));
process.on("SIGINT", () => {
  rmSync(dir, { recursive: true, force: true });
  process.exit(130);
});
const results: PairResult[] = [];
try {
  const diskPath = join(dir, "disk.bin");
  if (engine === "sync") {
    process.stderr.write(`filling a ${DISK_BYTES >> 20} MiB disk file in ${dir} ...\n`);
    await createFilledDisk(diskPath, DISK_BYTES);
  } else {
    await createFilledDisk(diskPath, 16 * 2 ** 20); // the null engine never touches it
  }
  for (const op of ops) {
    for (const bs of sizes) {
      process.stderr.write(`${op} ${bs} bytes: ${seconds} s after a ${WARM_UP_MS / 1000} s warm-up ...\n`);
      results.push(await measurePair(diskPath, op, bs));
    }
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}

if (flags.json) {
  console.log(JSON.stringify(results, null, 2));
} else {
  const table = new Table({
    head: ["op", "bs", "IOs", "direct us/IO", "bounced us/IO", "extra us (se)", "copy us", "extra / copy", "guest segs", "layout"],
    colAligns: ["left", "right", "right", "right", "right", "right", "right", "right", "right", "left"],
    style: { head: [], border: [], compact: true },
  });
  for (const r of results) {
    table.push([
      r.op,
      String(r.bs),
      String(r.ios),
      r.directUs.toFixed(2),
      r.bouncedUs.toFixed(2),
      `${r.extraUs.toFixed(2)} (${r.extraStandardErrorUs.toFixed(2)})`,
      r.copyUs.toFixed(2),
      r.ratio.toFixed(2),
      r.guestSegments === null ? "-" : String(r.guestSegments),
      r.layoutMatched === null ? "any (not root)" : r.layoutMatched ? "matched" : "unmatched",
    ]);
  }
  console.log(`direct and bounced IOs in alternating runs of ${RUN_LENGTH}, ${engine} engine, qd 1: thread CPU per IO (goal: extra / copy at most 1.1)`);
  console.log(table.toString());
}
