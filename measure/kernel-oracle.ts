/**
 * The kernel as judge of the planner: random IOs are planned under each rule set, and the same
 * iovecs are handed to the kernel in forced `direct` mode on a real disk. Each plan is then one
 * cell of a confusion matrix, planner decision x kernel verdict:
 *
 *                      kernel takes it        kernel refuses (EINVAL)
 *   planner: direct    sound                  UNSOUND (never, under kernel and seed)
 *   planner: copies    needless copy          needed copy
 *
 * with the guest bytes each rule set copies needlessly. The VMM policies (`qemu`,
 * `cloud-hypervisor`, `openvmm`) may be unsound: that is what the oracle exists to find. A copy
 * can be refused too (a policy that pads to a block smaller than the disk's), judged by the
 * measured model, which the same run holds to the kernel on every IO. Two more verdicts are kept per IO: the
 * kernel's documented rule (statx(2); what `--rules kernel` follows) and the simulated disk's
 * model of the running kernel (`simulatedDiskProblem`, what `--align` answers), each compared
 * with the kernel. Every IO the kernel took is verified byte for byte.
 *
 * Each IO goes to the kernel twice, once per submission method: as user iovecs (preadv/pwritev)
 * and as io_uring fixed buffers (guest memory, a memfd, registered with the ring: READ_FIXED or
 * READV_FIXED), which the kernel checks differently. Both are held to the planner (no unsound
 * decision) and to the simulated disk's model with that method's measured checks. An IO of one
 * iovec goes a third time, as io_uring READ/WRITE of that buffer (`--nonvectored`), which the
 * simulated disk judges by preadv's checks: the kernel must judge it as it judged preadv.
 *
 *   npm run oracle                                  2000 IOs on every disk kind this machine can make
 *   npm run oracle -- --ios 500 --seed 7 --kinds file,loop:4096
 *
 * `test/kernel-oracle.test.ts` runs a smaller sweep and requires zero unsound decisions.
 */
import { numberFlag, scriptOptions } from "./script-options";
import { closeSync, fsyncSync, openSync, writeSync } from "node:fs";
import { blockSize, iovecProblem, RULE_SETS, simulatedDiskProblem, type RuleSet } from "../src/base/alignment-rules";
import type { MeasuredKernelChecks } from "../src/disk/direct-io-probe";
import { kernelProblem } from "../src/base/kernel-rules";
import { kernelCalls } from "../src/io/kernel-verdicts";
import { PageCacheTrace } from "../src/host/page-cache-trace";
import { PageCacheWatch } from "../src/io/page-cache-watch";
import type { DiskKind, SectorSize } from "../src/base/disk-kinds";
import { Disk } from "../src/disk/disk";
import { ScratchDisk, scratchDiskUnavailable } from "../src/host/scratch-disks";
import { executePlan, IoQueue } from "../src/io/executor";
import { plan, type IoOp, type Plan } from "../src/io/planner";
import { compareDiskWithGuest, guestBytes } from "../src/io/verify";
import { patternBytes } from "../src/base/patterns";
import { GuestMemory } from "../src/memory/guest-memory";
import { PagedRange } from "../src/memory/paged-range";
import { closeFd, createMemfd, OsError, EINVAL, truncateFd } from "../src/native";

const PAGE = 4096;
const GUEST_PAGES = 64;
const DISK_BYTES = 16 * 2 ** 20;

export interface DiskUnderTest {
  kind: DiskKind;
  sector?: SectorSize;
}

/** One cell count per rule set, and the IOs where each verdict disagrees with the kernel. */
export interface OracleReport {
  disk: string;
  /** The disk's alignment as discovered (`memory M, offset O, read offset R (source)`). */
  alignment: string;
  /** What the running kernel was measured to check on this disk, beyond the documented rule. */
  kernelChecks: MeasuredKernelChecks;
  ios: number;
  kernelTook: number;
  rules: Record<
    RuleSet,
    {
      sound: number;
      /** Plans the kernel refuses: sent directly and refused, or copied and the copy refused (`copyRefused` of them). */
      unsound: number;
      copyRefused: number;
      needlessCopy: number;
      neededCopy: number;
      needlessBytes: number;
      copiedBytes: number;
      copiedWhereDocumentedTakes: number;
    }
  >;
  /** IOs the documented rule refuses that the kernel took (beyond the documentation), and the reverse. */
  documented: { stricterThanKernel: number; looserThanKernel: number };
  /** IOs where the simulated disk's model of this kernel (the measured checks) disagrees with it. */
  model: { refusedButKernelTook: number; tookButKernelRefused: number };
  /**
   * The same IOs as io_uring fixed buffers: how many the kernel took, the plans it refused that
   * each rule set sends directly, where the model with the fixed-buffer checks disagrees, the
   * IOs it judged otherwise than the vectored calls, and the calls that went fixed (all should).
   */
  fixed: {
    kernelChecks: MeasuredKernelChecks;
    kernelTook: number;
    unsound: { kernel: number; seed: number };
    model: { refusedButKernelTook: number; tookButKernelRefused: number };
    differsFromVectored: number;
    calls: number;
    notFixed: number;
  };
  /**
   * The IOs of one iovec again as io_uring READ/WRITE of that buffer (`nonvectored`), which the
   * simulated disk judges by preadv's checks: how many, how many the kernel took, those it
   * judged otherwise than preadv/pwritev (none should be), and the calls that went as READ/WRITE.
   */
  nonvectored: { ios: number; kernelTook: number; differsFromVectored: number; calls: number };
  /** A few IOs behind the nonzero counts above, for a reader to replay (`bounce-bench io --mode direct ...`). */
  examples: string[];
  /** Of the IOs the kernel took, those served through the page cache after all (not true direct IO), and those nothing could tell. */
  pageCache: { through: number; unknown: number; judgedBy: string };
}

/** xorshift32: the same IOs for the same seed. */
function generator(seed: number): (n: number) => number {
  let x = seed >>> 0 || 0x9e3779b9;
  return (n: number) => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return Math.floor(((x >>> 0) / 2 ** 32) * n);
  };
}

/**
 * A random IO: 1 to 4 segments over random pages, consecutive or not, sometimes touching the
 * segment before in guest memory; offsets and lengths aligned or not, at an aligned disk offset
 * more often than not. No guest byte is in two segments (a read into both would lose one).
 */
function randomIo(below: (n: number) => number, block: number): { op: IoOp; at: number; segments: PagedRange[] } {
  const offsets = [0, 0, 0, 8, 100, 512, 1024, 2048, 3584];
  const used = new Set<number>();
  const freePage = (): number | null => {
    for (let tries = 0; tries < 16; tries++) {
      const gpn = below(GUEST_PAGES);
      if (!used.has(gpn)) return gpn;
    }
    return null;
  };
  const segments: PagedRange[] = [];
  let previousEnd = -1;
  const count = 1 + below(4);
  for (let i = 0; i < count; i++) {
    const touch = previousEnd >= 0 && previousEnd % PAGE !== 0 && below(3) === 0;
    const firstPage = touch ? Math.floor(previousEnd / PAGE) : freePage();
    if (firstPage === null) break;
    const offset = touch ? previousEnd % PAGE : offsets[below(offsets.length)]!;
    const lenKind = below(4);
    const len = lenKind === 0 ? 1 + below(3 * PAGE) : lenKind === 1 ? 512 * (1 + below(12)) : lenKind === 2 ? PAGE * (1 + below(3)) - offset : block * (1 + below(2));
    if (len <= 0) continue;
    const pages = Math.ceil((offset + len) / PAGE);
    const consecutive = below(2) === 0;
    const gpns = [firstPage];
    for (let p = 1; p < pages; p++) {
      const next = consecutive ? gpns[p - 1]! + 1 : freePage();
      if (next === null || next >= GUEST_PAGES || used.has(next) || gpns.includes(next)) break;
      gpns.push(next);
    }
    if (gpns.length < pages) continue;
    for (const gpn of gpns) used.add(gpn);
    segments.push(new PagedRange(offset, len, gpns));
    previousEnd = gpns[pages - 1]! * PAGE + ((offset + len - 1) % PAGE) + 1;
  }
  if (segments.length === 0) segments.push(new PagedRange(0, PAGE, [1]));
  const atKind = below(4);
  const at = atKind === 0 ? below(DISK_BYTES / 2) : atKind === 1 ? 512 * below(DISK_BYTES / 1024) : block * below(DISK_BYTES / (2 * block));
  return { op: below(2) === 0 ? "read" : "write", at, segments };
}

function copies(decided: Plan): boolean {
  return decided.copiedBytes > 0 || decided.decision === "bounce" || decided.decision === "rmw";
}

/** Runs `ios` random IOs against a scratch disk of `under`'s kind and returns the matrix. */
export async function runOracle(under: DiskUnderTest, ios: number, seed: number): Promise<OracleReport> {
  const below = generator(seed);
  const name = under.kind === "file" || under.kind === "tmpfs" ? under.kind : `${under.kind} (${under.sector ?? 512}-byte sectors)`;
  using scratch = ScratchDisk.make({ kind: under.kind, sector: under.sector, size: DISK_BYTES });
  // Data everywhere: reading a hole involves no device IO, so it would accept anything.
  const fd = openSync(scratch.path, "r+");
  try {
    for (let at = 0; at < DISK_BYTES; at += 2 ** 20) writeSync(fd, patternBytes("random", seed, at, 2 ** 20), 0, 2 ** 20, at);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  using memory = memfdGuest(GUEST_PAGES * PAGE);
  using fixedQueue = new IoQueue(1, "uring", { fixedBuffers: true });
  fixedQueue.registerMemory([{ address: memory.hostAddress(0) as number, length: GUEST_PAGES * PAGE }]);
  using nonvectoredQueue = new IoQueue(1, "uring", { nonvectored: true });
  for (let gpn = 0; gpn < GUEST_PAGES; gpn++) memory.write(gpn * PAGE, new Uint8Array(PAGE).fill(gpn + 1));
  using disk = Disk.open(scratch.path, { write: true, direct: true });
  // Whether each IO the kernel took really bypassed the page cache (tracing: root, files).
  using trace = disk.type === "file" ? PageCacheTrace.tryStart(disk.fd) : null;
  const alignment = disk.alignment;
  const kernelChecks = disk.kernelChecks;
  const fixedChecks = disk.kernelChecksFor("fixed");
  // The generator's "aligned" lengths and offsets: the larger direction's block, at least a sector.
  const block = Math.max(alignment.offsetAlign, alignment.readOffsetAlign, 512);
  const empty = () => ({ sound: 0, unsound: 0, copyRefused: 0, needlessCopy: 0, neededCopy: 0, needlessBytes: 0, copiedBytes: 0, copiedWhereDocumentedTakes: 0 });
  const report: OracleReport = {
    disk: name,
    alignment: `memory ${alignment.memAlign}, offset ${alignment.offsetAlign}, read offset ${alignment.readOffsetAlign} (${alignment.source})`,
    kernelChecks,
    ios: 0,
    kernelTook: 0,
    rules: Object.fromEntries(RULE_SETS.map((rules) => [rules, empty()])) as OracleReport["rules"],
    documented: { stricterThanKernel: 0, looserThanKernel: 0 },
    model: { refusedButKernelTook: 0, tookButKernelRefused: 0 },
    fixed: { kernelChecks: fixedChecks, kernelTook: 0, unsound: { kernel: 0, seed: 0 }, model: { refusedButKernelTook: 0, tookButKernelRefused: 0 }, differsFromVectored: 0, calls: 0, notFixed: 0 },
    nonvectored: { ios: 0, kernelTook: 0, differsFromVectored: 0, calls: 0 },
    examples: [],
    pageCache: { through: 0, unknown: 0, judgedBy: trace !== null ? "the kernel's filemap and writeback tracepoints" : "cachestat (writes it cannot see count as unknown)" },
  };
  const example = (why: string, io: { op: IoOp; at: number; segments: PagedRange[] }) => {
    if (report.examples.length >= 8) return;
    const segs = io.segments.map((s) => `--seg ${s.gpns().join(",")}@${s.offset}+${s.len}`).join(" ");
    report.examples.push(`${why}: --op ${io.op} --at ${io.at} ${segs}`);
  };
  for (let n = 0; n < ios; n++) {
    const io = randomIo(below, block);
    const len = io.segments.reduce((sum, s) => sum + s.len, 0);
    if (io.at + len + block > DISK_BYTES) continue;
    const direct = plan({ op: io.op, mode: "direct", at: io.at, segments: io.segments, alignment });
    if (direct.calls.length !== 1) continue; // more than IOV_MAX iovecs: the kernel's EINVAL would say nothing about alignment
    const before = io.op === "read" ? guestBytes(memory, io.segments) : null;
    let took: boolean;
    try {
      const watch = new PageCacheWatch(disk, io.op, direct.diskStart, direct.diskEnd - direct.diskStart, trace);
      await executePlan(direct, memory, disk);
      const cache = watch.finish();
      if (cache.used === true) report.pageCache.through++;
      else if (cache.used === null) report.pageCache.unknown++;
      took = true;
    } catch (error) {
      if (!(error instanceof OsError && error.errno === EINVAL)) throw error;
      took = false;
    }
    report.ios++;
    if (took) {
      report.kernelTook++;
      // What the kernel took, it moved: every byte where it belongs.
      const mismatch = compareDiskWithGuest(scratch.path, io.at, memory, io.segments);
      if (mismatch !== null) throw new Error(`${name}: the kernel took a direct ${io.op} and the bytes differ at byte ${mismatch.offset} of the IO`);
    } else if (before !== null) {
      restoreGuest(memory, io.segments, before);
    }
    // The same IO again through another queue: whether the kernel took it, its bytes checked
    // where it did, the guest put back where a refused read may have half-written it.
    const tookThrough = async (queue: IoQueue, as: string): Promise<boolean> => {
      try {
        await executePlan(direct, memory, disk, { queue });
      } catch (error) {
        if (!(error instanceof OsError && error.errno === EINVAL)) throw error;
        if (before !== null) restoreGuest(memory, io.segments, before);
        return false;
      }
      const mismatch = compareDiskWithGuest(scratch.path, io.at, memory, io.segments);
      if (mismatch !== null) throw new Error(`${name}: the kernel took a direct ${io.op} as ${as} and the bytes differ at byte ${mismatch.offset} of the IO`);
      return true;
    };
    const tookFixed = await tookThrough(fixedQueue, "fixed buffers");
    if (tookFixed) report.fixed.kernelTook++;
    if (tookFixed !== took) {
      report.fixed.differsFromVectored++;
      example(`${took ? "preadv/pwritev took it, fixed buffers refused" : "fixed buffers took it, preadv/pwritev refused"}`, io);
    }
    // An IO of one iovec once more, as READ/WRITE of its buffer.
    if (direct.guestIovecs.length === 1) {
      report.nonvectored.ios++;
      const tookNonvectored = await tookThrough(nonvectoredQueue, `io_uring ${io.op === "read" ? "READ" : "WRITE"}`);
      if (tookNonvectored) report.nonvectored.kernelTook++;
      if (tookNonvectored !== took) {
        report.nonvectored.differsFromVectored++;
        example(`${took ? "preadv/pwritev took it, io_uring READ/WRITE refused" : "io_uring READ/WRITE took it, preadv/pwritev refused"}`, io);
      }
    }
    const opBlock = blockSize(alignment, io.op);
    const diskAligned = io.at % opBlock === 0 && len % opBlock === 0;
    const documentedTakes = diskAligned && direct.guestIovecs.every((iovec) => iovecProblem(iovec.gpa, iovec.len, alignment, io.op) === null);
    for (const rules of RULE_SETS) {
      const decided = plan({ op: io.op, mode: "auto", at: io.at, segments: io.segments, alignment, rules });
      const cell = report.rules[rules];
      cell.copiedBytes += decided.copiedBytes;
      if (!copies(decided) && !tookFixed && (rules === "kernel" || rules === "seed")) {
        report.fixed.unsound[rules]++;
        example(`UNSOUND under ${rules} as fixed buffers`, io);
      }
      if (!copies(decided)) {
        if (took) cell.sound++;
        else {
          cell.unsound++;
          example(`UNSOUND under ${rules}`, io);
        }
      } else if (kernelProblem(kernelCalls(decided), alignment, io.op, kernelChecks) !== null) {
        // A copy that is itself refused: a VMM policy padding to a block smaller than the
        // disk's. Judged by the measured model, which the counts below hold to the kernel.
        cell.unsound++;
        cell.copyRefused++;
        example(`UNSOUND under ${rules} (its copy)`, io);
      } else if (took) {
        if (documentedTakes) cell.copiedWhereDocumentedTakes++;
        cell.needlessCopy++;
        cell.needlessBytes += decided.copiedBytes;
      } else {
        cell.neededCopy++;
      }
    }
    if (!documentedTakes && took) report.documented.stricterThanKernel++;
    if (documentedTakes && !took) {
      report.documented.looserThanKernel++;
      example("documented rule takes it, kernel refused", io);
    }
    const hostIovecs = direct.guestIovecs.map((iovec) => ({ base: memory.hostAddressOfRange(iovec.gpa, iovec.len, "oracle"), len: iovec.len }));
    const view = { count: hostIovecs.length, base: (i: number) => hostIovecs[i]!.base, length: (i: number) => hostIovecs[i]!.len };
    const modelTakes = simulatedDiskProblem(io.at, len, view, 0, alignment, io.op, kernelChecks) === null;
    if (!modelTakes && took) {
      report.model.refusedButKernelTook++;
      example("model refuses, kernel took", io);
    }
    if (modelTakes && !took) {
      report.model.tookButKernelRefused++;
      example("model takes, kernel refused", io);
    }
    const fixedModelTakes = simulatedDiskProblem(io.at, len, view, 0, alignment, io.op, fixedChecks) === null;
    if (!fixedModelTakes && tookFixed) {
      report.fixed.model.refusedButKernelTook++;
      example("model (fixed) refuses, kernel took as fixed buffers", io);
    }
    if (fixedModelTakes && !tookFixed) {
      report.fixed.model.tookButKernelRefused++;
      example("model (fixed) takes, kernel refused as fixed buffers", io);
    }
  }
  report.fixed.calls = fixedQueue.engine.fixedCalls;
  report.fixed.notFixed = fixedQueue.engine.unfixedCalls;
  report.nonvectored.calls = nonvectoredQueue.engine.nonvectoredCalls;
  return report;
}

/** Guest memory as VMMs back it (a memfd: shmem), which the kernel registers for fixed buffers. */
function memfdGuest(bytes: number): GuestMemory {
  const memfd = createMemfd("bounce-bench-oracle-guest");
  try {
    truncateFd(memfd, bytes);
    return GuestMemory.open(`/proc/self/fd/${memfd}`);
  } finally {
    closeFd(memfd); // the mapping keeps the memory
  }
}

/** Puts back guest bytes a refused read may have half-written (the refused IO's earlier requests land). */
function restoreGuest(memory: GuestMemory, segments: PagedRange[], bytes: Uint8Array): void {
  let at = 0;
  for (const segment of segments) {
    segment.forEachRun(0, segment.len, (gpn, offset, len) => {
      memory.write(gpn * PAGE + offset, bytes.subarray(at, at + len));
      at += len;
    });
  }
}

/** Every disk kind this machine can make, with the reason for each it cannot. */
export function availableDisks(): { disks: DiskUnderTest[]; skipped: string[] } {
  const wanted: DiskUnderTest[] = [
    { kind: "file" },
    { kind: "loop", sector: 512 },
    { kind: "loop", sector: 4096 },
    { kind: "ext4", sector: 512 },
    { kind: "ext4", sector: 4096 },
    { kind: "xfs", sector: 512 },
    { kind: "xfs", sector: 4096 },
    { kind: "btrfs", sector: 512 },
    { kind: "btrfs", sector: 4096 },
    { kind: "tmpfs" },
  ];
  const disks: DiskUnderTest[] = [];
  const skipped: string[] = [];
  for (const disk of wanted) {
    const why = scratchDiskUnavailable(disk.kind);
    if (why === null) disks.push(disk);
    else skipped.push(`${disk.kind}${disk.sector === undefined ? "" : `:${disk.sector}`}: ${why}`);
  }
  return { disks, skipped };
}

export function formatReport(report: OracleReport): string {
  const lines = [`${report.disk}: ${report.ios} IOs, the kernel took ${report.kernelTook} in direct mode; alignment ${report.alignment}`];
  const cache = report.pageCache;
  lines.push(`  of those, through the page cache: ${cache.through}${cache.unknown > 0 ? ` (${cache.unknown} unknown)` : ""}, judged by ${cache.judgedBy}`);
  for (const rules of RULE_SETS) {
    const c = report.rules[rules];
    lines.push(
      `  --rules ${rules.padEnd(16)}  direct+took ${String(c.sound).padStart(5)}  REFUSED ${String(c.unsound).padStart(4)} (copies ${c.copyRefused})  copy+took ${String(c.needlessCopy).padStart(5)}  copy+refused ${String(c.neededCopy).padStart(5)}  needless copy ${c.needlessBytes} of ${c.copiedBytes} bytes copied`,
    );
  }
  lines.push(`  --rules kernel copied ${report.rules.kernel.copiedWhereDocumentedTakes} IOs the documented rule takes directly`);
  lines.push(`  documented rule: refuses ${report.documented.stricterThanKernel} the kernel took, takes ${report.documented.looserThanKernel} it refused`);
  const checks = report.kernelChecks;
  lines.push(`  measured checks: iovec lengths by ${checks.lengthsByMemory ? "the memory alignment" : "the block"} (${checks.sources.lengthsByMemory}); one page ${checks.onePageAnyAddress ? "at any address" : "checked"} (${checks.sources.onePageAnyAddress})`);
  lines.push(`  simulated disk (the measured checks): refuses ${report.model.refusedButKernelTook} the kernel took, takes ${report.model.tookButKernelRefused} it refused`);
  const fixed = report.fixed;
  lines.push(
    `  as fixed buffers: the kernel took ${fixed.kernelTook} (${fixed.differsFromVectored} judged otherwise than preadv/pwritev); REFUSED what --rules kernel sends directly ${fixed.unsound.kernel}, seed ${fixed.unsound.seed}; ` +
      `${fixed.calls} calls fixed, ${fixed.notFixed} not`,
  );
  lines.push(`  fixed-buffer checks: iovec lengths by ${fixed.kernelChecks.lengthsByMemory ? "the memory alignment" : "the block"}; one page ${fixed.kernelChecks.onePageAnyAddress ? "at any address" : "checked"} (${fixed.kernelChecks.sources.onePageAnyAddress})`);
  lines.push(`  simulated disk (fixed-buffer checks): refuses ${fixed.model.refusedButKernelTook} the kernel took, takes ${fixed.model.tookButKernelRefused} it refused`);
  const single = report.nonvectored;
  lines.push(`  one iovec as io_uring READ/WRITE: ${single.ios} IOs (${single.calls} calls), the kernel took ${single.kernelTook}, ${single.differsFromVectored} judged otherwise than preadv/pwritev`);
  for (const line of report.examples) lines.push(`    ${line}`);
  return lines.join("\n");
}

if (import.meta.main) {
  const values = scriptOptions("oracle", { ios: { type: "string", default: "2000" }, seed: { type: "string", default: "1" }, kinds: { type: "string" }, json: { type: "boolean", default: false } });
  const ios = Math.floor(numberFlag("oracle", "ios", values.ios, 1));
  const seed = Math.floor(numberFlag("oracle", "seed", values.seed, 0));
  const { disks: available, skipped } = availableDisks();
  const disks =
    values.kinds === undefined
      ? available
      : values.kinds.split(",").map((item) => {
          const [kind, sector] = item.split(":");
          return { kind: kind as DiskKind, sector: sector === undefined ? undefined : (Number(sector) as SectorSize) };
        });
  for (const line of skipped) if (values.kinds === undefined) console.error(`oracle: skipped ${line}`);
  const reports: OracleReport[] = [];
  for (const disk of disks) {
    const report = await runOracle(disk, ios, seed);
    reports.push(report);
    if (!values.json) console.log(formatReport(report));
  }
  if (values.json) console.log(JSON.stringify({ seed, reports }));
  process.exit(reports.some((r) => r.rules.kernel.unsound > 0) ? 1 : 0);
}
