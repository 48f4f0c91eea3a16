/**
 * One benchmark job: one thread running one case (op, block size, memory offset, mode, engine,
 * queue depth) against its own region of the disk, for a time or a number of IOs, through the
 * one executor that carries out every plan.
 *
 * Each of the `qd` in-flight slots owns guest pages (`ceil((memOffset+bs)/4096)` consecutive
 * GPNs from the job's first GPN) and a request over them at `memOffset`. Bounce memory is
 * separate: as many bounce slots (`BounceSlots`, made once) as the budget lets the thread hold
 * at once, each taken by an IO when it starts and given back when it settles, so that memory
 * stays within the budget whatever the depth. Bounce slot `i` on base pages is laid out
 * physically like queue slot `i`'s guest pages (`--bounce-layout matched`, `physical-layout.ts`),
 * so a bounced IO hands the device as many DMA segments as the direct IO it is compared with.
 * The IO at disk offset `o` performs the plan made for that request at `o`: its shape depends
 * only on where `o` sits within a disk block, so each (queue slot, bounce slot) pair prepares
 * (`PreparedIo`) one plan per such position the run meets, on first use, and runs it shifted to
 * `o`. A case therefore does exactly what `plan` and `io` say it does, whatever the decision:
 * direct, bounced, a widened read, a read-modify-write with its head and tail reads and its
 * range lock, split calls, or a simulated disk's refusal. Nothing is allocated per IO.
 *
 * The loop starts IOs while slots are free, then polls the executor (which reaps completions);
 * when every slot waits on another thread's bounce pages it awaits them.
 *
 * What the kernel was asked to do is counted at the native boundary (this thread's `ioCounters`:
 * calls or SQEs, and bytes moved), so the per-IO figures are measured, not derived from the plan.
 *
 * `stop` (a shared Int32Array) lets the main thread end the job early (Ctrl-C): issuing stops,
 * in-flight IOs complete, and the partial result is returned.
 */
import { blockSize, requestAlignment, type RuleSet } from "../base/alignment-rules";
import { PAGE_SIZE } from "../base/constants";
import { BounceBenchError } from "../base/errors";
import { patternBytes } from "../base/patterns";
import type { CopyMethod } from "../bounce/copy-placement";
import { BounceBufferTracker } from "../bounce/bounce-tracker";
import { BounceSlots } from "./bounce-slots";
import { Disk, type SharedDisk } from "../disk/disk";
import { createEngine, type EngineName, type MemoryRegion, type UringOptions } from "../io/engines";
import { Executor } from "../io/executor";
import { plan, type Decision, type IoMode } from "../io/planner";
import { PreparedIo } from "../io/prepared-io";
import { RangeLocks } from "../io/range-locks";
import { compareDiskWithGuest } from "../io/verify";
import type { SegmentSpec } from "../base/value-parsers";
import { GuestMemory } from "../memory/guest-memory";
import { PagedRange } from "../memory/paged-range";
import {
  IO_BYTES_READ,
  IO_BYTES_WRITTEN,
  IO_PREADV,
  IO_PWRITEV,
  IO_SQES,
  ioCounters,
  monotonicNs,
  physicalRuns,
  processCpuNs,
  threadCpuNs,
  type Address,
} from "../native";
import { LatencyHistogram, type HistogramData } from "./histogram";
import type { GuestSource } from "./workspace";

export type BenchOp = "read" | "write" | "randread" | "randwrite";
export type BounceLayout = "matched" | "any";
export const BOUNCE_LAYOUTS: readonly BounceLayout[] = ["matched", "any"];
export const BENCH_OPS: readonly BenchOp[] = ["read", "write", "randread", "randwrite"];

export interface JobSpec {
  /** Guest memory: a file to map, or the main thread's anonymous memory (`GuestSource`). */
  guest: GuestSource;
  /** The disk's path, for the independent read-back of `verify` only. */
  diskPath: string;
  /** The disk, opened once by the main thread, in this case's mode. */
  disk: SharedDisk;
  op: BenchOp;
  bs: number;
  memOffset: number;
  mode: IoMode;
  rules: RuleSet;
  engine: EngineName;
  /** io_uring's options (`--registerfiles`, `--fixedbufs`, `--sqthread_poll`, `--defer-taskrun`, `--nonvectored`). */
  uring?: UringOptions;
  qd: number;
  /**
   * A scatter-gather request shape instead of one segment of `bs` bytes at `memOffset`: its
   * segments' GPNs count from the slot's first page; `bs` is then their total length.
   */
  shape?: SegmentSpec[];
  /** This job's index in the bounce tracker (its IO thread). */
  thread: number;
  trackerShared: SharedArrayBuffer;
  /** Disk bytes `[regionStart, regionStart+regionBytes)` are this job's. */
  regionStart: number;
  regionBytes: number;
  /** First GPN of this job's guest pages. */
  firstGpn: number;
  runtimeNs: number | null;
  ios: number | null;
  /** A warm-up run first, for this long, whose IOs are not counted (`--ramp`); 0 for none. */
  rampNs?: number;
  fua?: boolean;
  /** Order writes against other processes' (`RunOptions.fileLocks`). */
  fileLocks?: boolean;
  /** Ask for transparent huge pages for the bounce buffers. */
  hugePages: boolean;
  /**
   * How bounce buffers on base pages are laid out physically (`--bounce-layout`): `matched`,
   * in the physical runs of the guest pages of the queue slot they are first for, so that the
   * device makes as many DMA segments either way; `any`, as anonymous memory comes.
   */
  bounceLayout?: BounceLayout;
  /** How guest bytes are copied through bounce buffers (`--copy`). */
  copy?: CopyMethod;
  seed: number;
  /** Check every IO's bytes with an independent buffered read (tests; slow). */
  verify?: boolean;
  /** [0]: stop requested. */
  stop: Int32Array;
  /** Written with the IOs completed so far, every `PROGRESS_PUBLISH_NS` or so (progress display). */
  progress?: Float64Array;
}

export interface JobResult {
  thread: number;
  decision: Decision;
  reasons: string[];
  ios: number;
  bytes: number;
  elapsedNs: number;
  /** CPU time of this IO thread over its measured run. */
  cpuNs: number;
  /**
   * The process's CPU clock (every thread, io_uring's kernel workers included) when the measured
   * run started and ended: the case's process CPU is the span over all its jobs.
   */
  processCpuStartNs: number;
  processCpuEndNs: number;
  histogram: HistogramData;
  /**
   * Budget stalls: those handled inside the job (its own in-flight IOs held the pages), to which
   * the runner adds the shared tracker's waits, acquisitions and peak (`addBudgetTotals`).
   */
  budgetStalls: number;
  budgetStallNs: number;
  bounceAcquired: number;
  bouncePeakPages: number;
  /**
   * Time spent copying between guest memory and bounce buffers (0 when nothing bounced): one
   * copy in seven is timed, and their rate scaled to every byte copied (`Executor.copyNs`).
   */
  copyNs: number;
  /** Guest bytes copied through bounce buffers. */
  copiedBytes: number;
  /**
   * Under `--fixedbufs`: calls sent with registered buffers, and calls that could not be (an
   * iovec outside the registered memory; several iovecs where the kernel has no READV_FIXED).
   */
  fixedCalls: number;
  unfixedCalls: number;
  /** Under `--nonvectored`: calls of one iovec sent as READ/WRITE, and calls of several that went as READV/WRITEV. */
  nonvectoredCalls: number;
  vectoredCalls: number;
  /** Whether the job's ring was entered by its registered index (`Engine.registeredRing`); null without a ring. */
  registeredRing: boolean | null;
  /** What the kernel was asked, counted at the native boundary: vectored calls or SQEs, and bytes moved to or from the disk. */
  kernelCalls: number;
  diskBytes: number;
  /** IOs that ran to completion or failure (`ios` counts the successful ones). */
  settled: number;
  /** Bytes of the job's bounce buffers backed by transparent huge pages at the end, and of the bounce memory it made. */
  bounceHugePageBytes: number;
  bounceArenaBytes: number;
  /** Per IO of the first slot: bytes copied at a slow `memcpy` distance, and where its bounce layout starts (`copy-placement.ts`). */
  slowCopyBytes: number;
  bounceShift: number;
  /**
   * Physically contiguous runs of the buffer the device sees in the first slot (the guest's,
   * or the bounce buffer), at the end; null when page frames cannot be read (not root).
   */
  physicalSegments: number | null;
  /** The same for the guest pages of the first slot's request, whatever the device sees. */
  guestSegments: number | null;
  /** For bounce buffers asked for a physical layout: whether every one got it; null otherwise. */
  bounceLayoutMatched: boolean | null;
  error: { code: string; message: string } | null;
}

export async function runJob(spec: JobSpec): Promise<JobResult> {
  const write = spec.op === "write" || spec.op === "randwrite";
  using memory = openGuest(spec.guest);
  using disk = Disk.adopt(spec.disk); // the main thread's descriptor, opened once for the whole run
  const tracker = BounceBufferTracker.attach(spec.trackerShared);
  const op = write ? "write" : "read";
  const block = blockSize(disk.alignment, op);
  if (spec.regionStart % block !== 0 || spec.regionBytes % block !== 0) {
    throw new BounceBenchError("BENCH_REGION", `bench: region ${spec.regionStart}+${spec.regionBytes} is not made of whole ${block}-byte blocks`);
  }
  // Each slot's request: the shape's segments (or one of `bs` bytes at `memOffset`) over the
  // slot's own pages.
  const shape = spec.shape ?? [{ gpns: pagesFrom(0, Math.ceil((spec.memOffset + spec.bs) / PAGE_SIZE)), offset: spec.memOffset, len: spec.bs }];
  const slotPages = shapePages(shape);
  const requests = Array.from({ length: spec.qd }, (_, i) => {
    const first = spec.firstGpn + i * slotPages;
    return shape.map((segment) => new PagedRange(segment.offset, segment.len, segment.gpns.map((gpn) => first + gpn)));
  });
  if (spec.verify) {
    // Slots write tellable data, so that a byte in the wrong place is seen.
    for (let i = 0; i < spec.qd; i++) {
      const gpa = (spec.firstGpn + i * slotPages) * PAGE_SIZE;
      memory.write(gpa, patternBytes("random", spec.thread * spec.qd + i + 1, gpa, slotPages * PAGE_SIZE));
    }
  }

  // The positions an IO can take within a block: offsets are regionStart + k*bs.
  const positions = spec.bs % block === 0 ? 1 : block / gcd(spec.bs, block);
  const positionUnit = block / positions;
  const planFor = (slot: number, position: number) =>
    plan({ op, mode: spec.mode, at: spec.regionStart + position * positionUnit, segments: requests[slot]!, alignment: disk.alignment, rules: spec.rules });
  // Every slot's plans have the shape of slot 0's: their bounce memory is the largest of those.
  const slotZero = Array.from({ length: positions }, (_, position) => planFor(0, position));
  const first = slotZero[0]!;
  const bounceBytes = Math.max(...slotZero.map((decided) => decided.bounceBytes));
  const locks = write ? new RangeLocks(spec.qd) : undefined;
  // Bounce memory for as many IOs as the budget lets this thread hold at once, not one per queue
  // slot: memory in use stays within the budget whatever the depth. An IO takes a free bounce
  // slot when it starts and gives it back when it settles.
  const bouncePages = Math.max(1, ...slotZero.map((decided) => decided.bouncePages));
  const bounceCount = bounceBytes > 0 ? Math.max(1, Math.min(spec.qd, Math.floor(tracker.maxPagesPerThread / bouncePages))) : 1;
  // Like for like: bounce slot i gets the physical runs of queue slot i's guest pages, so the
  // device sees as many segments as a direct IO from them would make.
  const layOut = bounceBytes > 0 && !spec.hugePages && (spec.bounceLayout ?? "matched") === "matched";
  const guestRuns = layOut ? requests.slice(0, bounceCount).map((request) => memory.physicalRunsOf(request)) : null;
  using bounceSlots = bounceBytes > 0 ? new BounceSlots(bounceBytes, bounceCount, requestAlignment(disk.alignment, op), spec.hugePages, guestRuns) : null;
  // Prepared IOs by queue slot (guest pages), bounce slot and position in the block, on first use.
  const prepared: (PreparedIo | null)[] = new Array(spec.qd * bounceCount * positions).fill(null);
  try {
    const slots: Slots = {
      positions,
      positionUnit,
      bounces: slotZero.map((decided) => decided.bounceBytes > 0),
      bounceCount,
      prepared,
      // What --fixedbufs registers: the guest pages this job's slots use (not with `bounce`), and its bounce memory.
      registered: [
        ...(spec.uring?.registeredMemory === "bounce" ? [] : [{ address: memory.hostAddress(spec.firstGpn) as number, length: spec.qd * slotPages * PAGE_SIZE }]),
        ...(bounceSlots?.regions() ?? []),
      ],
      prepare(slot, position, bounceSlot) {
        const decided = slot === 0 ? slotZero[position]! : planFor(slot, position);
        const bounce = decided.bounceBytes > 0 ? bounceSlots!.slot(bounceSlot) : undefined;
        const io = PreparedIo.prepare(decided, memory, disk, { fua: spec.fua, locks, budget: { tracker, thread: spec.thread }, bounce, copy: spec.copy, fileLocks: spec.fileLocks, fixedBuffers: spec.uring?.fixedBuffers ? (spec.uring.registeredMemory ?? "all") : undefined });
        prepared[(slot * bounceCount + bounceSlot) * positions + position] = io;
        return io;
      },
    };
    slots.prepare(0, 0, 0); // fails here, before the clock starts, on anything preparing can refuse
    const { measured, warmUpFailed } = await loop(spec, slots, memory, requests, block);
    if (warmUpFailed) {
      return { ...measured, decision: first.decision, reasons: first.reasons, bounceHugePageBytes: 0, bounceArenaBytes: 0, physicalSegments: null, guestSegments: null, bounceLayoutMatched: null, slowCopyBytes: 0, bounceShift: 0 };
    }
    // Read after the run: guest pages are faulted in by the first IOs, and the kernel may
    // collapse base pages into huge ones while it runs.
    const firstRun = requests[0]![0]!.runs()[0]!;
    const deviceBuffer = first.bounceBytes > 0 ? ((bounceSlots!.slot(0).address + prepared[0]!.bounceShift) as Address) : memory.hostAddress(firstRun.gpn, firstRun.offset);
    return {
      ...measured,
      decision: first.decision,
      reasons: first.reasons,
      bounceHugePageBytes: bounceSlots?.hugePageBytes() ?? 0,
      bounceArenaBytes: bounceSlots?.bytes() ?? 0,
      slowCopyBytes: prepared[0]!.slowCopyBytes,
      bounceShift: prepared[0]!.bounceShift,
      physicalSegments: physicalRuns(deviceBuffer, spec.bs),
      guestSegments: memory.physicalRunsOf(requests[0]!)?.length ?? null,
      // Asked for but not made (frames unreadable): not matched.
      bounceLayoutMatched: layOut ? (bounceSlots?.layoutMatched ?? false) : null,
    };
  } finally {
    for (const io of prepared) io?.release();
  }
}

function openGuest(guest: GuestSource): GuestMemory {
  return "path" in guest ? GuestMemory.open(guest.path) : GuestMemory.borrow(guest.address, guest.size, "(transparent huge pages)");
}

/**
 * Refuses `--fixedbufs` before any IO where the kernel will not register this guest memory
 * (`RING_FEATURE`, naming why): asked of the kernel itself, with the memory's first page.
 */
export function checkGuestRegistrable(guest: GuestSource): void {
  using memory = openGuest(guest);
  const engine = createEngine("uring", 1, () => {}, { fixedBuffers: true });
  try {
    engine.registerMemory([{ address: memory.hostAddress(0) as number, length: PAGE_SIZE }]);
  } finally {
    engine.close();
  }
}

/** Pages `first .. first+count-1`. */
function pagesFrom(first: number, count: number): number[] {
  return Array.from({ length: count }, (_, i) => first + i);
}

/**
 * Bytes of the disk each of `threads` jobs owns, `[thread * it, (thread + 1) * it)`: whole
 * pages and whole disk blocks for writes and reads, so that an IO widened to blocks never leaves
 * its thread's region. The one rule for the bench and the fio job it emits.
 */
export function threadRegionBytes(diskSize: number, threads: number, alignment: { offsetAlign: number; readOffsetAlign: number }): number {
  const unit = Math.max(PAGE_SIZE, alignment.offsetAlign, alignment.readOffsetAlign);
  return Math.floor(diskSize / threads / unit) * unit;
}

/** How often a job publishes its completed count for the progress line: more often than the line is redrawn. */
const PROGRESS_PUBLISH_NS = 50e6;

/** Pages a slot needs for `shape`: up to its highest (relative) GPN. */
export function shapePages(shape: readonly SegmentSpec[]): number {
  return shape.reduce((most, segment) => segment.gpns.reduce((m, gpn) => Math.max(m, gpn), most), -1) + 1;
}

function gcd(a: number, b: number): number {
  while (b !== 0) [a, b] = [b, a % b];
  return a;
}

type Measured = Omit<
  JobResult,
  "bounceHugePageBytes" | "bounceArenaBytes" | "physicalSegments" | "guestSegments" | "bounceLayoutMatched" | "decision" | "reasons" | "slowCopyBytes" | "bounceShift"
>;

/**
 * A job's prepared IOs: one per queue slot (its guest pages), bounce slot (its bounce memory)
 * and position of the IO within a disk block, made on first use by `prepare`.
 */
interface Slots {
  positions: number;
  /** Disk bytes between two positions. */
  positionUnit: number;
  /** Whether the plan at each position bounces (and so needs a bounce slot). */
  bounces: boolean[];
  bounceCount: number;
  /** Indexed `(slot * bounceCount + bounceSlot) * positions + position`. */
  prepared: (PreparedIo | null)[];
  /** Memory registered with the ring under `--fixedbufs`. */
  registered: MemoryRegion[];
  prepare(slot: number, position: number, bounceSlot: number): PreparedIo;
}

// What a pass of the job's loop leaves to do: pass again, wait for the executor to be woken, or stop.
const AGAIN = 0;
const WAIT = 1;
const DONE = 2;
type Pass = typeof AGAIN | typeof WAIT | typeof DONE;

/**
 * The job's IO loop over one executor (one ring): the warm-up (`rampNs`), whose figures are
 * dropped, then the measured run, each from the same first offset and drained to the last
 * completion before the next begins. One executor and one set of closures serve both, as fio's
 * ramp uses its one ring: a second instance of each made when the measured run began undid the
 * JIT's work on the first, which Bun then compiled again inside the measured run
 * (docs/performance.md). `warmUpFailed`: the error in the result came from the warm-up.
 */
async function loop(spec: JobSpec, slots: Slots, memory: GuestMemory, requests: PagedRange[][], block: number): Promise<{ measured: Measured; warmUpFailed: boolean }> {
  const { positions, positionUnit, bounces, bounceCount, prepared } = slots;
  // Read once: `spec` came through postMessage, and a hot loop should not look fields up in it.
  const { bs, qd, thread, stop, regionStart } = spec;
  const verify = spec.verify === true;
  const random = spec.op === "randread" || spec.op === "randwrite";
  const blocks = Math.floor(spec.regionBytes / bs);
  const histogram = new LatencyHistogram();
  const freeSlots = new Int32Array(qd);
  const slotOffset = new Float64Array(qd);
  let freeCount = qd;
  for (let i = 0; i < qd; i++) freeSlots[i] = qd - 1 - i;
  // Free bounce slots, and the one each queue slot's IO holds (-1: none).
  const freeBounce = new Int32Array(bounceCount);
  let freeBounceCount = bounceCount;
  for (let i = 0; i < bounceCount; i++) freeBounce[i] = bounceCount - 1 - i;
  const slotBounce = new Int32Array(qd).fill(-1);
  // From here to `publishAtNs`: a phase's state (warm-up or measured run), set by `phase`. Each
  // is declared with a value and set again before the first pass, so that the JIT never takes
  // one for a constant it must later throw away.
  // The next IO's block, drawn but not issued yet (it waits for a bounce slot), or -1.
  let pendingIndex = -1;
  // Since when the next IO has waited for a bounce slot (-1: it has not), and the waits so far.
  let waitingSince = -1;
  let bounceWaits = 0;
  let bounceWaitNs = 0;
  let issued = 0;
  let completed = 0;
  let cursor = 0;
  let rng = 1;
  let stopIssuing = false;
  let error: { code: string; message: string } | null = null;
  let deadline = Number.POSITIVE_INFINITY;
  let limit = Number.POSITIVE_INFINITY;
  let progress: Float64Array | undefined = undefined;
  let publishAtNs = 0;

  // Declared before the callback that reads it, so that reading it costs no initialisation check.
  let executor: Executor | undefined;
  const onSettled = (slot: number, failure: BounceBenchError | null): void => {
    freeSlots[freeCount++] = slot;
    if (slotBounce[slot]! >= 0) {
      freeBounce[freeBounceCount++] = slotBounce[slot]!;
      slotBounce[slot] = -1;
    }
    if (failure === null) {
      // Only IOs that completed have a latency to report (a refused one shows none).
      histogram.record(executor!.now() - executor!.startNs[slot]!);
      if (verify) verifyIo(spec, slotOffset[slot]!, memory, requests[slot]!);
      completed++;
      return;
    }
    stopIssuing = true;
    error ??= { code: failure.code, message: failure.message };
  };

  executor = new Executor(spec.engine, qd, onSettled, spec.uring);
  if (spec.uring?.fixedBuffers) {
    try {
      executor.engine.registerMemory(slots.registered); // once, before the clock starts
    } catch (thrown) {
      executor.close();
      throw thrown;
    }
  }
  let closed = false;
  const closeExecutor = (): void => {
    if (closed) return;
    closed = true;
    executor!.close();
  };
  // One pass of the loop: start IOs into the free slots, then reap. A function of its own, called
  // once a pass, so that the JIT optimizes it on entry, early in the warm-up; as the body of a
  // loop that never returns it could only be entered mid-loop (OSR), which Bun's JIT did seconds
  // into the measured run, compiling then on another thread (docs/performance.md).
  const pass = (): Pass => {
    // The IOs of a pass start at the time the last completions were seen (no clock reading
    // of their own: io_uring hands them to the kernel together at the next reap anyway); a
    // copy made while starting one moves the time on for the next, read only if one follows.
    let now = executor!.now();
    let copies = executor!.copies;
    // The count the progress line shows, published by time (a count-based rule left slow
    // cases at 0 IOs for their whole run).
    if (progress !== undefined && now >= publishAtNs) {
      progress[thread] = completed;
      publishAtNs = now + PROGRESS_PUBLISH_NS;
    }
    while (freeCount > 0 && !stopIssuing) {
      if (executor!.copies !== copies) {
        now = executor!.now();
        copies = executor!.copies;
      }
      if (issued >= limit || now >= deadline || Atomics.load(stop, 0) !== 0) {
        stopIssuing = true;
        break;
      }
      if (pendingIndex < 0) {
        if (random) {
          rng ^= rng << 13;
          rng ^= rng >>> 17;
          rng ^= rng << 5;
          pendingIndex = (rng >>> 0) % blocks;
        } else {
          pendingIndex = cursor;
          cursor = cursor + 1 === blocks ? 0 : cursor + 1;
        }
      }
      const index = pendingIndex;
      const position = positionUnit === block ? 0 : ((index * bs) % block) / positionUnit;
      let bounceSlot = 0;
      let startNs = now;
      if (bounces[position]) {
        if (freeBounceCount === 0) {
          if (waitingSince < 0) waitingSince = now; // every bounce slot in use: the budget's limit
          break;
        }
        bounceSlot = freeBounce[--freeBounceCount]!;
        if (waitingSince >= 0) {
          bounceWaits++;
          bounceWaitNs += now - waitingSince;
          startNs = waitingSince;
          waitingSince = -1;
        }
      }
      pendingIndex = -1;
      const slot = freeSlots[--freeCount]!;
      slotBounce[slot] = bounces[position] ? bounceSlot : -1;
      const io = prepared[(slot * bounceCount + bounceSlot) * positions + position] ?? slots.prepare(slot, position, bounceSlot);
      const offset = regionStart + index * bs;
      slotOffset[slot] = offset;
      issued++;
      // Latency runs from the start: a wait for bounce memory and a bounced write's copy are
      // part of what the guest waits for.
      executor!.start(slot, io, offset - io.at, startNs);
    }
    if (executor!.active === 0) return DONE;
    return executor!.poll() ? AGAIN : WAIT;
  };

  // A phase's loop, a function of its own: as a loop inside `phase`, the JIT compiled all of
  // `phase` (its set-up and its result too), entering it mid-loop seconds into the measured run;
  // this function is small, and quick to compile (docs/performance.md).
  const drive = async (run: Executor): Promise<void> => {
    for (;;) {
      const next = pass();
      if (next === DONE) return;
      if (next === WAIT) await run.wake();
    }
  };

  /** Runs one phase: for `runtimeNs` (null: no limit) or `ios` IOs, whichever ends first. */
  const phase = async (runtimeNs: number | null, ios: number | null, shown: Float64Array | undefined): Promise<Measured> => {
    const run = executor!;
    // Every phase from the same first offset; counters from zero.
    pendingIndex = -1;
    waitingSince = -1;
    bounceWaits = 0;
    bounceWaitNs = 0;
    issued = 0;
    completed = 0;
    cursor = 0;
    rng = spec.seed | 0 || 1;
    stopIssuing = false;
    histogram.clear();
    run.resetCounts();
    const countersBefore = ioCounters.slice();
    const startNs = monotonicNs();
    const startCpu = threadCpuNs();
    const processCpuStartNs = processCpuNs();
    deadline = runtimeNs === null ? Number.POSITIVE_INFINITY : startNs + runtimeNs;
    limit = ios ?? Number.POSITIVE_INFINITY;
    progress = shown;
    publishAtNs = startNs;
    try {
      await drive(run);
    } catch (thrown) {
      error = errorJson(thrown);
      closeExecutor(); // reaps the calls still in flight; no phase follows a failed one
    }
    const elapsedNs = monotonicNs() - startNs;
    const cpuNs = threadCpuNs() - startCpu;
    const processCpuEndNs = processCpuNs();
    if (shown !== undefined) shown[thread] = completed;
    const delta = (i: number) => ioCounters[i]! - countersBefore[i]!;
    return {
      thread,
      ios: completed,
      bytes: completed * bs,
      elapsedNs,
      cpuNs,
      processCpuStartNs,
      processCpuEndNs,
      histogram: histogram.data(),
      budgetStalls: run.budgetStalls + bounceWaits,
      budgetStallNs: run.budgetStallNs + bounceWaitNs,
      bounceAcquired: 0,
      bouncePeakPages: 0,
      copyNs: run.copyNs,
      copiedBytes: run.copiedBytes,
      fixedCalls: run.engine.fixedCalls,
      unfixedCalls: run.engine.unfixedCalls,
      nonvectoredCalls: run.engine.nonvectoredCalls,
      vectoredCalls: run.engine.vectoredCalls,
      registeredRing: run.engine.registeredRing,
      kernelCalls: delta(IO_PREADV) + delta(IO_PWRITEV) + delta(IO_SQES),
      diskBytes: delta(IO_BYTES_READ) + delta(IO_BYTES_WRITTEN),
      settled: issued,
      error,
    };
  };

  try {
    if ((spec.rampNs ?? 0) > 0) {
      // The warm-up publishes its progress too, where nobody reads it: a branch that the
      // measured run alone took would make the JIT compile `pass` again inside it.
      const warmUp = await phase(spec.rampNs!, null, new Float64Array(thread + 1));
      if (warmUp.error !== null) return { measured: warmUp, warmUpFailed: true };
    }
    return { measured: await phase(spec.runtimeNs, spec.ios, spec.progress), warmUpFailed: false };
  } finally {
    closeExecutor();
  }
}

/** Verify mode: the disk bytes just transferred equal the slot's guest bytes (read independently). */
function verifyIo(spec: JobSpec, offset: number, memory: GuestMemory, segments: PagedRange[]): void {
  const mismatch = compareDiskWithGuest(spec.diskPath, offset, memory, segments);
  if (mismatch !== null) {
    throw new BounceBenchError("MISMATCH", `bench verify: disk byte ${mismatch.diskOffset} is 0x${mismatch.disk.toString(16)}, guest has 0x${mismatch.guest.toString(16)}`);
  }
}

export function errorJson(error: unknown): { code: string; message: string } {
  if (error instanceof BounceBenchError) return { code: error.code, message: error.message };
  return { code: "INTERNAL", message: error instanceof Error ? (error.stack ?? error.message) : String(error) };
}
