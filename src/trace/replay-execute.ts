/**
 * `replay --execute`: a trace's IOs done for real, as one rule set plans them, through the one
 * executor (`IoQueue`: io_uring at the trace's queue depth, or the sync engine), with every IO's
 * bytes checked and its cost measured.
 *
 * Guest memory holds `qd` slots; an IO in flight owns one. Its iovecs are laid out in the slot
 * as captured, page offsets and all: the distinct captured pages in address order, consecutive
 * ones on consecutive guest pages, others a page apart, so iovecs that touched still touch and
 * those that did not are not made to (the planner merges only consecutive guest pages).
 *
 * Disk offsets beyond the disk are wrapped (modulo a MiB-multiple of its size, keeping their
 * place within every block size), and counted. Writes store a pattern first (so that a byte
 * that lands in the wrong place is seen); after each IO its disk range is read back through the
 * page cache and compared with the guest's bytes (`compareDiskWithGuest`), unless another IO in
 * flight overlaps it (counted apart). `verify: false` leaves the checking out, for timing.
 */
import { PAGE_SIZE } from "../base/constants";
import { BounceBenchError } from "../base/errors";
import { patternBytes } from "../base/patterns";
import type { RuleSet } from "../base/alignment-rules";
import { monotonicNs, processCpuNs } from "../native";
import type { Disk } from "../disk/disk";
import type { EngineName } from "../io/engines";
import { IoQueue } from "../io/executor";
import { plan, type Decision } from "../io/planner";
import { RangeLocks } from "../io/range-locks";
import { compareDiskWithGuest, MismatchError } from "../io/verify";
import type { GuestMemory } from "../memory/guest-memory";
import { PagedRange } from "../memory/paged-range";
import { LatencyHistogram } from "../bench/histogram";
import type { TraceIo } from "./trace-format";

export interface ExecuteReplayOptions {
  memory: GuestMemory;
  disk: Disk;
  rules: RuleSet;
  engine: EngineName;
  qd: number;
  /** Guest pages a slot holds (the most one IO lays out: `slotPages`). */
  slotPages: number;
  /** `trace`: each IO starts no earlier than its captured time from the first; `fast`: at once. */
  pace: "fast" | "trace";
  verify: boolean;
  /** Write and read back through file locks (another process may use the disk). */
  fileLocks: boolean;
  /** [0] non-zero: stop issuing. */
  stop?: Int32Array;
  onProgress?: (done: number) => void;
}

export interface ReplayMeasurement {
  rules: RuleSet;
  engine: EngineName;
  qd: number;
  pace: "fast" | "trace";
  ios: number;
  bytes: number;
  elapsedNs: number;
  /** Process CPU (every thread, io_uring's workers included) over the run. */
  cpuNs: number;
  latency: { p50Ns: number; p99Ns: number; maxNs: number; meanNs: number };
  decisions: Record<Decision, number>;
  copiedBytes: number;
  /** Calls or SQEs the kernel was handed. */
  kernelCalls: number;
  /** IOs whose offsets were wrapped into the disk; IOs longer than the disk (not done). */
  wrapped: number;
  tooLong: number;
  /** IOs the kernel refused (as the rule set sent them), by errno. */
  failed: Record<string, number>;
  verified: number;
  /** IOs not checked: another IO in flight overlapped their disk range, or their iovecs overlap in memory (a read's bytes then depend on the order the kernel filled them). */
  unverifiedOverlap: number;
  /** Whether the timing includes the read-backs of verification. */
  timingIncludesVerify: boolean;
  stopped: boolean;
}

/** Guest pages one IO needs laid out as captured (consecutive pages kept so, a gap page between others). */
export function slotPagesFor(io: TraceIo): number {
  return layout(io).pages;
}

function layout(io: TraceIo): { gpnOf: Map<number, number>; pages: number } {
  const pages = new Set<number>();
  for (const [address, len] of io.iovecs) {
    if (len === 0) continue;
    for (let page = Math.floor(address / PAGE_SIZE); page <= Math.floor((address + len - 1) / PAGE_SIZE); page++) pages.add(page);
  }
  const gpnOf = new Map<number, number>();
  let next = 0;
  let previous = -2;
  for (const page of [...pages].sort((a, b) => a - b)) {
    if (page !== previous + 1 && previous !== -2) next++; // a gap: not contiguous in the guest either
    gpnOf.set(page, next++);
    previous = page;
  }
  return { gpnOf, pages: next };
}

/** The IO's segments over the slot starting at guest page `first`. */
function segmentsIn(io: TraceIo, first: number): PagedRange[] {
  const { gpnOf } = layout(io);
  const segments: PagedRange[] = [];
  for (const [address, len] of io.iovecs) {
    if (len === 0) continue;
    const gpns: number[] = [];
    for (let page = Math.floor(address / PAGE_SIZE); page <= Math.floor((address + len - 1) / PAGE_SIZE); page++) gpns.push(first + gpnOf.get(page)!);
    segments.push(new PagedRange(address % PAGE_SIZE, len, gpns));
  }
  return segments;
}

export async function executeReplay(ios: Iterable<TraceIo>, options: ExecuteReplayOptions): Promise<ReplayMeasurement> {
  const { memory, disk, qd } = options;
  const size = disk.size;
  const wrap = Math.floor(size / 2 ** 20) * 2 ** 20 || size;
  const histogram = new LatencyHistogram();
  const decisions: Record<Decision, number> = { direct: 0, bounce: 0, rmw: 0, split: 0, buffered: 0 };
  const failed: Record<string, number> = {};
  const locks = new RangeLocks(Math.max(64, qd * 4));
  using queue = new IoQueue(qd, options.engine);
  const freeSlots = Array.from({ length: qd }, (_, i) => qd - 1 - i);
  const waiting: (() => void)[] = [];
  const inFlight = new Map<number, { start: number; end: number }>();
  const m: ReplayMeasurement = {
    rules: options.rules,
    engine: options.engine,
    qd,
    pace: options.pace,
    ios: 0,
    bytes: 0,
    elapsedNs: 0,
    cpuNs: 0,
    latency: { p50Ns: 0, p99Ns: 0, maxNs: 0, meanNs: 0 },
    decisions,
    copiedBytes: 0,
    kernelCalls: 0,
    wrapped: 0,
    tooLong: 0,
    failed,
    verified: 0,
    unverifiedOverlap: 0,
    timingIncludesVerify: options.verify,
    stopped: false,
  };
  let firstT: number | null = null;
  let failure: unknown = null;
  const started = monotonicNs();
  const cpuStart = processCpuNs();
  const running = new Set<Promise<void>>();
  let count = 0;
  for (const io of ios) {
    if (options.stop !== undefined && Atomics.load(options.stop, 0) !== 0) {
      m.stopped = true;
      break;
    }
    if (failure !== null) break;
    const len = io.iovecs.reduce((sum, [, l]) => sum + l, 0);
    if (len === 0 || io.iovecsTotal !== undefined) continue;
    if (len > size) {
      m.tooLong++;
      continue;
    }
    let at = io.offset;
    if (at + len > size) {
      at %= wrap;
      if (at + len > size) at %= 2 ** 20; // keeps its place within any block up to a MiB
      if (at + len > size) at = 0;
      m.wrapped++;
    }
    if (options.pace === "trace") {
      firstT ??= io.t;
      const due = started + (io.t - firstT);
      const ahead = due - monotonicNs();
      if (ahead > 1e6) await Bun.sleep(ahead / 1e6);
    }
    if (freeSlots.length === 0) await new Promise<void>((resolve) => waiting.push(resolve));
    const slot = freeSlots.pop()!;
    const first = slot * options.slotPages;
    const segments = segmentsIn(io, first);
    const decided = plan({ op: io.op, mode: "auto", at, segments, alignment: disk.alignment, rules: options.rules });
    if (io.op === "write") {
      for (const segment of segments) {
        for (const run of segment.runs()) memory.write(run.gpn * PAGE_SIZE + run.offset, patternBytes("random", count + 1, run.gpn * PAGE_SIZE + run.offset, run.len));
      }
    }
    const index = count++;
    inFlight.set(index, { start: at, end: at + len });
    const work = (async () => {
      try {
        const result = await queue.execute(decided, memory, disk, { locks, fileLocks: options.fileLocks });
        histogram.record(result.elapsedNs);
        m.ios++;
        m.bytes += len;
        m.copiedBytes += result.copiedBytes;
        m.kernelCalls += result.calls;
        decisions[decided.decision]++;
        if (options.verify) {
          let overlapped = false;
          for (const [other, range] of inFlight) if (other !== index && range.start < at + len && at < range.end) overlapped = true;
          if (overlapped || sharesMemory(io)) m.unverifiedOverlap++;
          else {
            const mismatch = compareDiskWithGuest(disk.path, at, memory, segments);
            if (mismatch !== null) throw new MismatchError(mismatch);
            m.verified++;
          }
        }
      } catch (error) {
        if (error instanceof BounceBenchError && error.code.startsWith("E") && error.kind === "io") failed[error.code] = (failed[error.code] ?? 0) + 1;
        else failure ??= error;
      } finally {
        inFlight.delete(index);
        freeSlots.push(slot);
        waiting.shift()?.();
        options.onProgress?.(m.ios);
      }
    })();
    running.add(work);
    void work.then(() => running.delete(work));
  }
  await Promise.all(running);
  if (failure !== null) throw failure;
  m.elapsedNs = monotonicNs() - started;
  m.cpuNs = processCpuNs() - cpuStart;
  m.latency = { p50Ns: histogram.percentile(50), p99Ns: histogram.percentile(99), maxNs: histogram.maxNs, meanNs: histogram.count === 0 ? 0 : histogram.sumNs / histogram.count };
  return m;
}

/** Whether two of the IO's iovecs overlap in memory. */
function sharesMemory(io: TraceIo): boolean {
  const sorted = io.iovecs.filter(([, len]) => len > 0).sort((a, b) => a[0] - b[0]);
  for (let i = 1; i < sorted.length; i++) if (sorted[i]![0] < sorted[i - 1]![0] + sorted[i - 1]![1]) return true;
  return false;
}
