/**
 * The benchmark: the product of the listed ops, block sizes, memory offsets and modes, each
 * case run by `threads` Bun Workers (one job each, own engine, own budget slot), measured and
 * summed into one result per run; each case runs `repeat` times, interleaved with the other
 * cases (round 1 of every case, then round 2, ...) so that a disk's drift hits all alike, and its
 * result is the median of its runs with their spread.
 *
 * CPU per IO is the process's CPU time (user and system, every thread: the IO Workers, io_uring's
 * kernel workers, and the main thread waiting for them) over the measured interval, divided by
 * the IOs completed; the IO threads' own share is kept apart (`threadCpuNsPerIo`).
 *
 * Measurement returns plain data (`BenchReport`); printing is the command line's business.
 * Each report starts with where it ran: kernel, CPU, filesystem, alignment and its source.
 *
 * A case that fails keeps what it measured and carries its error. A forced `direct` case that
 * the kernel refuses with EINVAL is a result (that is what the mode is for) and the sweep goes
 * on; any other error ends the sweep. Setting `stop[0]` (Ctrl-C) ends the current case early,
 * with its partial result, and skips the rest.
 */
import { readFileSync } from "node:fs";
import { cpus, release } from "node:os";
import { BounceBufferTracker } from "../bounce/bounce-tracker";
import { PAGE_SIZE } from "../base/constants";
import { blockLimits } from "../disk/block-limits";
import { Disk } from "../disk/disk";
import type { MeasuredKernelChecks } from "../disk/direct-io-probe";
import { MAX_QUEUE_DEPTH, type EngineName } from "../io/engines";
import { InvalidInputError } from "../base/errors";
import { checkSegment, formatGpnList, type SegmentSpec } from "../base/value-parsers";
import { statx } from "../native";
import type { IoMode } from "../io/planner";
import { alignmentJson, type AlignmentJson } from "../io/json-documents";
import type { RuleSet } from "../base/alignment-rules";
import type { DiskKind, SectorSize } from "../base/disk-kinds";
import { scratchDiskUnavailable } from "../host/scratch-disks";
import { BounceBenchError } from "../base/errors";
import { LatencyHistogram } from "./histogram";
import { errorJson, shapePages, threadRegionBytes, type BenchOp, type BounceLayout, type JobResult, type JobSpec } from "./job";
import { runRates, spreadOf } from "./statistics";
import { PageCacheTrace } from "../host/page-cache-trace";
import { PageCacheWatch, type PageCacheUse } from "../io/page-cache-watch";
import { BenchWorkspace } from "./workspace";
import type { CopyMethod } from "../bounce/copy-placement";
import { measureCopyRates, type CopyRate } from "./copy-rates";
import { bounceOnHugePages, transparentHugePageMode, type BouncePages, type GuestBacking } from "./guest-backing";

export interface BenchOptions {
  guestPath?: string;
  diskPath?: string;
  size: number;
  ops: BenchOp[];
  bs: number[];
  memOffsets: number[];
  /**
   * A scatter-gather request shape (`--seg`), GPNs counted from each slot's first page, instead
   * of the `bs` x `memOffsets` product: every case then moves the shape's total length.
   */
  shape?: SegmentSpec[];
  modes: IoMode[];
  engine: EngineName;
  qd: number;
  threads: number;
  budget: number;
  runtimeSeconds: number | null;
  ios: number | null;
  /** Runs per case (`--repeat`, default 1), interleaved across cases. */
  repeat?: number;
  /** Warm-up before each run's measurement, in seconds (`--ramp`, default 0). */
  rampSeconds?: number;
  alignOverride?: number;
  memAlignOverride?: number;
  /** The kind of scratch disk to make when no disk is named (`--disk-kind`), and its sector size (`--sector`). */
  diskKind?: DiskKind;
  sector?: SectorSize;
  /** The rule set plans are decided by (`kernel` by default). */
  rules?: RuleSet;
  fua?: boolean;
  /**
   * Order writes against other processes' on the disk (`RunOptions.fileLocks`); true by
   * default on a disk the user named, never needed on a scratch disk (no other process can reach
   * it). `false` (`--no-file-locks`) opts out, and the header says so.
   */
  fileLocks?: boolean;
  /** Check the memory and space the run takes against what the host has; true by default (`--no-resource-check`). */
  resourceCheck?: boolean;
  force?: boolean;
  /** Write workloads may overwrite a block device named by `diskPath` that nothing uses (`--overwrite-device`). */
  overwriteDevice?: boolean;
  /** What backs guest memory when no `guestPath` is given (`--guest-backing`, `memfd` by default). */
  guestBacking?: GuestBacking;
  /** The bounce buffers' pages (`--bounce-pages`): `same` as guest memory (the default), `4k` or `thp`. */
  bouncePages?: BouncePages;
  /**
   * How bounce buffers on base pages are laid out physically (`--bounce-layout`): `matched` (the
   * default) repeats the physical runs of the guest pages they stand in for, `any` takes memory
   * as it comes. Huge-page bounce buffers are one run whatever this says.
   */
  bounceLayout?: BounceLayout;
  /** How guest bytes are copied through bounce buffers (`--copy`): `placed` (the default) or `memcpy`. */
  copy?: CopyMethod;
  verify?: boolean;
  /** [0] set to non-zero to stop (shared with the workers). */
  stop?: Int32Array;
  /** Called when a run starts and as IOs complete (from a timer), for a progress line. */
  onProgress?: (status: BenchProgress) => void;
  /** Called with each finished case (after its last run), in order. */
  onCase?: (result: BenchCaseResult) => void;
  /** Called once the files are ready, with the workspace (what the header describes). */
  onWorkspace?: (workspace: BenchWorkspace) => void;
  /**
   * Called with what removes each thing the run makes outside its memory, as it makes them: the
   * scratch disk before it is filled, the workspace (the disk closed, then its scratch removed),
   * a tracing mount. A caller that must leave early runs them, newest first.
   */
  onScratch?: (remove: () => void) => void;
}

/** Where a sweep is: run `run` (from 0) of `runs` (cases x repeats), its case, and its IOs so far. */
export interface BenchProgress {
  run: number;
  runs: number;
  label: string;
  bs: number;
  ios: number;
}

export interface HostInfo {
  kernel: string;
  cpu: string;
  cpus: number;
  filesystem: string | null;
  /** The disk's path: the user's, or the scratch disk's (gone after the run: `scratch`). */
  disk: string;
  /** Whether the disk was a scratch disk made for the run (its kind is `diskKind`). */
  scratch: boolean;
  diskSize: number;
  /** The kind of scratch disk made (`--disk-kind`) and its sector size; null for a disk the user named. */
  diskKind: DiskKind | null;
  sector: SectorSize | null;
  /** The disk's alignment as the kernel reports it, and the one planned against (override). */
  diskAlignment: AlignmentJson;
  planAlignment: AlignmentJson;
  /** @deprecated schema 1's name for `diskAlignment`, kept for one version */
  alignment: AlignmentJson;
  /** Bytes of guest memory on huge pages at the end of the sweep (transparent or hugetlb). */
  guestHugePageBytes: number;
  /** The kernel's transparent huge page mode (`always`, `madvise`, `never`), null if unknown. */
  transparentHugePages: string | null;
  /** What backs guest memory (`file` for the user's `--guest`), and whether bounce buffers asked for huge pages. */
  guestBacking: GuestBacking;
  bounceHugePages: boolean;
  /** DMA segments the disk's block device takes in one request (`queue/max_segments`), or null. */
  maxSegments: number | null;
  /** The bounce copy's rate against the source-destination distance here (`copy-rates.ts`); null when no case may bounce. */
  copyRates: CopyRate[] | null;
  /**
   * What the running kernel was measured to check on the real disk beyond the documented rule,
   * which the simulated disk (`--align`, `--mem-align`) answers by; null without a simulated disk.
   */
  kernelChecks: MeasuredKernelChecks | null;
  /** Whether writes took cross-process locks on the disk file, and why (`fileLocks`). */
  fileLocks: { on: boolean; why: string };
}

export interface BenchCaseResult {
  op: BenchOp;
  bs: number;
  memOffset: number;
  /** The `--seg` shape of every IO, when one was given (`bs` is then its length). */
  shape: string | null;
  mode: IoMode;
  decision: string;
  reasons: string[];
  engine: EngineName;
  qd: number;
  threads: number;
  /** Runs measured (`--repeat`); the rates below are their medians, with the spread. */
  repeats: number;
  /** IOs, bytes and seconds over all runs. */
  ios: number;
  bytes: number;
  seconds: number;
  mibPerSec: number;
  mibPerSecMin: number;
  mibPerSecMax: number;
  iops: number;
  iopsMin: number;
  iopsMax: number;
  /** CPU time of the whole process per completed IO, in nanoseconds (see the module doc). */
  cpuNsPerIo: number;
  cpuNsPerIoMin: number;
  cpuNsPerIoMax: number;
  /** The interquartile range of each rate, with 4 runs or more (null with fewer). */
  iqr: { mibPerSec: [number, number]; iops: [number, number]; cpuNsPerIo: [number, number] } | null;
  /** The IO threads' own CPU time per IO (their thread clocks), median over runs: part of `cpuNsPerIo`. */
  threadCpuNsPerIo: number;
  /** Process CPU over wall time, in cores (median over runs). */
  cpuUtilization: number;
  /**
   * IOs in flight on average per thread over the measured time (the time-weighted count of
   * started, unsettled IOs: their latencies less their waits for bounce pages, added up, over
   * the time). Below `qd` when the bounce budget, the engine or the loop kept the queue from filling.
   */
  effectiveQd: number;
  /** Latency from the merged histogram of every run; null when no IO completed (a refused case). */
  latencyUs: { p50: number; p90: number; p99: number; p999: number; max: number; mean: number; stdev: number } | null;
  /** The latency histogram itself (non-empty buckets); null when no IO completed. */
  histogram: { unit: "ns"; lowerNs: number[]; upperNs: number[]; counts: number[] } | null;
  /** Each run's own figures, in the order they ran. */
  samples: { ios: number; seconds: number; mibPerSec: number; iops: number; cpuNsPerIo: number }[];
  /**
   * What the kernel was asked to do per IO, counted at the native boundary: vectored system
   * calls or io_uring SQEs (`callsPerIo`), bytes moved to or from the disk (`diskBytesPerIo`,
   * the padding of a widened read or a read-modify-write included), and guest bytes copied
   * through a bounce buffer (`copiedBytesPerIo`). The null engine asks nothing of the kernel.
   */
  callsPerIo: number;
  diskBytesPerIo: number;
  copiedBytesPerIo: number;
  /**
   * Physically contiguous runs of the first thread's first buffer that the device reads or
   * writes (guest memory, or the bounce buffer): at least the DMA segments of one IO. Null
   * when page frames cannot be read (they need CAP_SYS_ADMIN).
   */
  physicalSegments: number | null;
  /** The same for the guest pages of that buffer's request (equal to `physicalSegments` for direct IO). */
  guestSegments: number | null;
  /**
   * Budget use, and the bounce copy: `copyNs` spent copying between guest memory and bounce
   * buffers, its rate, and how much of the bounce buffers had transparent huge pages.
   */
  bounce: {
    acquired: number;
    waits: number;
    waitNs: number;
    peakPages: number;
    copyNs: number;
    copyGiBPerSec: number;
    hugePageBytes: number;
    /** Guest bytes per IO copied whole at a distance where `memcpy` is slow (see `copy-placement.ts`). */
    slowCopyBytesPerIo: number;
    /** Where the bounce layout starts in its first page, chosen to keep copies fast (0 with `--copy memcpy`). */
    shift: number;
    /**
     * Bounce memory one thread made: enough for the IOs its budget lets it hold at once (each a
     * page more, for the copy placement), whatever the queue depth.
     */
    arenaBytes: number;
    /**
     * Whether the bounce buffers got the physical runs of the guest pages they stand in for
     * (`--bounce-layout matched`); null when none was asked (no bounce, huge pages, `any`).
     */
    layoutMatched: boolean | null;
  };
  error: { code: string; message: string } | null;
  /** Whether the case's IOs went through the page cache after all (its first run, watched whole: `PageCacheWatch`). */
  pageCache: PageCacheUse;
}

export interface BenchReport {
  host: HostInfo;
  /** The rule set every case was planned by. */
  rules: RuleSet;
  results: BenchCaseResult[];
  interrupted: boolean;
}

export const DEFAULT_BENCH = {
  size: 256 * 2 ** 20,
  ops: ["read", "write"] as BenchOp[],
  bs: [4096, 65536, 2 ** 20],
  // 0 and 512 are direct on common disks (512-byte DMA alignment), 8 is not: auto bounces there.
  memOffsets: [0, 8, 512],
  modes: ["auto", "bounce"] as IoMode[],
  engine: "sync" as EngineName,
  qd: 1,
  threads: 1,
  // Five runs a case, the fewest that let the rank test find a clear change (statistics.ts),
  // in the time three runs of 0.5 s took.
  runtimeSeconds: 0.3,
  repeat: 5,
};

const MAX_THREADS = 64;
/** Largest block size (or shape length) a case may move per IO. */
const MAX_BS = 64 * 2 ** 20;
const PROGRESS_INTERVAL_MS = 200;
const WORKER_URL = new URL("./worker.ts", import.meta.url);

export async function runBench(given: BenchOptions): Promise<BenchReport> {
  const options = withShape(given);
  validate(options);
  const stop = options.stop ?? new Int32Array(new SharedArrayBuffer(4));
  const slotPages =
    options.shape === undefined
      ? Math.max(...options.bs.flatMap((bs) => options.memOffsets.map((offset) => Math.ceil((offset + bs) / PAGE_SIZE))))
      : shapePages(options.shape);
  const guestPagesPerThread = slotPages * options.qd;
  const workspace = await BenchWorkspace.prepare({
    guestPath: options.guestPath,
    diskPath: options.diskPath,
    diskSize: options.size,
    guestBytes: guestPagesPerThread * options.threads * PAGE_SIZE,
    writesDisk: options.ops.some((op) => op.endsWith("write")),
    writesGuest: options.ops.some((op) => op.endsWith("read")),
    force: options.force ?? false,
    overwriteDevice: options.overwriteDevice,
    stop,
    onScratch: options.onScratch,
    alignOverride: options.alignOverride,
    memAlignOverride: options.memAlignOverride,
    diskKind: options.diskKind,
    sector: options.sector,
    needsDirectIo: options.modes.some((mode) => mode !== "buffered"),
    guestBacking: options.guestBacking,
    resourceCheck: options.resourceCheck,
  });
  options.onWorkspace?.(workspace);
  // The runner owns teardown: what a caller must run to leave nothing behind, if it cannot wait
  // for this function's own cleanup (a second signal), it is handed here.
  options.onScratch?.(() => workspace.cleanup());
  const workers: Worker[] = [];
  // The disk was opened once, by the workspace; every job's Worker uses this descriptor (Disk.adopt).
  const disk = workspace.disk;
  try {
    const mayBounce = options.modes.some((mode) => mode === "auto" || mode === "bounce");
    const host = { ...describeHost(workspace, options.bouncePages, options.fileLocks), copyRates: mayBounce ? measureCopyRates() : null };
    const regionBytes = threadRegionBytes(workspace.diskSize, options.threads, host.planAlignment);
    const largest = Math.max(...options.bs);
    if (regionBytes < largest) {
      throw new InvalidInputError(`the disk (${workspace.diskSize} bytes) is too small for ${options.threads} threads of ${largest}-byte IOs`);
    }
    for (let i = 0; i < options.threads; i++) workers.push(new Worker(WORKER_URL));
    const cases = options.ops.flatMap((op) =>
      options.bs.flatMap((bs) => options.memOffsets.flatMap((memOffset) => options.modes.map((mode) => ({ op, bs, memOffset, mode })))),
    );
    const repeat = options.repeat ?? 1;
    const runs: JobResult[][][] = cases.map(() => []);
    // Whether each case's "direct" IO really bypassed the page cache: the kernel's tracepoints
    // when root can trace the disk file, cachestat otherwise; watched over its first run.
    using trace = disk.type === "file" && options.verify !== true && options.modes.some((mode) => mode !== "buffered") ? PageCacheTrace.tryStart(disk.fd) : null;
    if (trace !== null) options.onScratch?.(() => trace.close());
    const cacheUse: PageCacheUse[] = [];
    const results: BenchCaseResult[] = [];
    const done = cases.map(() => false);
    const summarized = (index: number) => {
      const result = { ...summarize(cases[index]!, options, runs[index]!), pageCache: cacheUse[index]! };
      done[index] = true;
      results.push(result);
      options.onCase?.(result);
    };
    const progress = new Float64Array(new SharedArrayBuffer(8 * options.threads));
    let ended = false;
    for (let round = 0; round < repeat && !ended; round++) {
      for (const [index, item] of cases.entries()) {
        if (Atomics.load(stop, 0) !== 0) {
          ended = true;
          break;
        }
        const label = `${item.op} ${options.shape === undefined ? `${formatBytes(item.bs)} +${item.memOffset}` : `--seg ${formatShape(options.shape)}`} ${item.mode}`;
        const tracker = new BounceBufferTracker(options.budget, options.threads);
        const run = round * cases.length + index;
        const status = { run, runs: repeat * cases.length, label, bs: item.bs };
        progress.fill(0);
        options.onProgress?.({ ...status, ios: 0 });
        const timer = setInterval(() => options.onProgress?.({ ...status, ios: progress.reduce((a, b) => a + b, 0) }), PROGRESS_INTERVAL_MS);
        let jobs: JobResult[];
        try {
          disk.setDirect(item.mode !== "buffered");
        } catch (error) {
          jobs = workers.map((_, thread) => failedJob(thread, errorJson(error)));
        }
        const shared = disk.shared();
        // --verify reads the disk back through the page cache itself: then nothing can tell.
        const cacheWatch =
          round === 0 && item.mode !== "buffered" && options.verify !== true ? new PageCacheWatch(disk, item.op.endsWith("read") ? "read" : "write", 0, workspace.diskSize, trace) : null;
        try {
          jobs ??= await Promise.all(
            workers.map((worker, thread) =>
              runInWorker(worker, {
                guest: workspace.guest,
                diskPath: workspace.diskPath,
                disk: shared,
                op: item.op,
                bs: item.bs,
                memOffset: item.memOffset,
                shape: options.shape,
                mode: item.mode,
                rules: options.rules ?? "kernel",
                engine: options.engine,
                qd: options.qd,
                thread,
                trackerShared: tracker.shared,
                regionStart: thread * regionBytes,
                regionBytes,
                firstGpn: thread * guestPagesPerThread,
                runtimeNs: options.runtimeSeconds === null ? null : options.runtimeSeconds * 1e9,
                rampNs: (options.rampSeconds ?? 0) * 1e9,
                ios: options.ios === null ? null : Math.ceil(options.ios / options.threads),
                fua: options.fua,
                fileLocks: host.fileLocks.on,
                hugePages: bounceOnHugePages(workspace.guestBacking, options.bouncePages ?? "same"),
                bounceLayout: options.bounceLayout ?? "matched",
                copy: options.copy,
                seed: 0x9e3779b1 ^ (thread * 7919 + run),
                verify: options.verify,
                stop,
                progress,
              }),
            ),
          );
        } finally {
          clearInterval(timer);
        }
        if (round === 0) {
          cacheUse[index] =
            cacheWatch?.finish() ??
            (item.mode === "buffered"
              ? { used: true, traced: null, evidence: "--mode buffered: through the page cache by design" }
              : { used: null, traced: null, evidence: "not watched: --verify reads the disk back through the page cache itself" });
        }
        addBudgetTotals(jobs, tracker);
        runs[index]!.push(jobs);
        const failed = jobs.find((job) => job.error !== null)?.error ?? null;
        // A forced direct case the kernel refuses is a finding; any other error, or a stop,
        // ends the sweep.
        if ((failed !== null && !(failed.code === "EINVAL" && item.mode === "direct")) || Atomics.load(stop, 0) !== 0) ended = true;
        if (round === repeat - 1) summarized(index);
        if (ended) break;
      }
    }
    // A sweep that ended early reports every case that ran at least once, with the runs it had.
    for (const index of cases.keys()) if (runs[index]!.length > 0 && !done[index]) summarized(index);
    // Read after the runs: the kernel may collapse base pages into huge ones while they run.
    return { host: { ...host, guestHugePageBytes: workspace.guestHugePageBytes() }, rules: options.rules ?? "kernel", results, interrupted: Atomics.load(stop, 0) !== 0 };
  } finally {
    for (const worker of workers) worker.terminate();
    workspace.cleanup();
  }
}

/** With a shape, the one block size and memory offset are the shape's total length and first offset. */
function withShape(options: BenchOptions): BenchOptions {
  if (options.shape === undefined) return options;
  if (options.shape.length === 0) throw new InvalidInputError("--seg: the shape has no segments");
  for (const [i, segment] of options.shape.entries()) checkSegment(segment, `--seg ${i}`);
  const total = options.shape.reduce((sum, segment) => sum + segment.len, 0);
  if (!(total >= 1 && total <= MAX_BS)) throw new InvalidInputError(`--seg: the shape moves ${total} bytes; it must move 1 .. ${MAX_BS}`);
  return { ...options, bs: [total], memOffsets: [options.shape[0]!.offset] };
}

/** `0@512+3584,2+512`: a shape as `--seg` values. */
export function formatShape(shape: readonly SegmentSpec[]): string {
  return shape.map((segment) => `${formatGpnList(segment.gpns)}@${segment.offset}+${segment.len}`).join(" ");
}

/** Checks every option that can be checked without touching a file (the CLI runs it before writing --emit-fio). */
export function validateBenchOptions(options: BenchOptions): void {
  validate(withShape(options));
}

function validate(options: BenchOptions): void {
  const kind = options.diskKind ?? "file";
  if (kind !== "file") {
    if (options.diskPath !== undefined) throw new InvalidInputError(`--disk-kind ${kind} makes a scratch disk; it cannot be combined with --disk`);
    const unavailable = scratchDiskUnavailable(kind);
    if (unavailable !== null) throw new BounceBenchError("DISK_KIND_UNAVAILABLE", `--disk-kind ${kind}: ${unavailable}`);
  }
  if (options.guestPath !== undefined && options.guestBacking !== undefined && options.guestBacking !== "file") {
    throw new InvalidInputError(`--guest-backing ${options.guestBacking} makes guest memory; it cannot be combined with --guest (a file)`);
  }
  const lists: [string, unknown[]][] = [["--op", options.ops], ["--bs", options.bs], ["--mem-offset", options.memOffsets], ["--mode", options.modes]];
  for (const [flag, list] of lists) if (list.length === 0) throw new InvalidInputError(`${flag}: the list is empty`);
  for (const bs of options.shape === undefined ? options.bs : []) {
    if (!(bs >= 512 && bs % 512 === 0 && bs <= MAX_BS)) {
      throw new InvalidInputError(`--bs: ${bs} is not a multiple of 512 between 512 and 64 MiB`);
    }
  }
  for (const offset of options.shape === undefined ? options.memOffsets : []) {
    if (!(offset >= 0 && offset < PAGE_SIZE)) throw new InvalidInputError(`--mem-offset: ${offset} is not an offset within a page (0 .. 4095)`);
  }
  if (!(Number.isInteger(options.qd) && options.qd >= 1 && options.qd <= MAX_QUEUE_DEPTH)) {
    throw new InvalidInputError(`--qd: ${options.qd} is not in 1 .. ${MAX_QUEUE_DEPTH}`);
  }
  if (options.engine === "sync" && options.qd !== 1) {
    throw new InvalidInputError(`--qd ${options.qd}: the sync engine does one IO at a time; use --engine uring for a queue`);
  }
  if (!(Number.isInteger(options.threads) && options.threads >= 1 && options.threads <= MAX_THREADS)) {
    throw new InvalidInputError(`--threads: ${options.threads} is not in 1 .. ${MAX_THREADS}`);
  }
  if ((options.runtimeSeconds === null) === (options.ios === null)) throw new InvalidInputError("give one of --runtime and --ios");
  if (options.runtimeSeconds !== null && !(options.runtimeSeconds > 0 && options.runtimeSeconds <= 86400)) {
    throw new InvalidInputError(`--runtime: ${options.runtimeSeconds} is not a number of seconds in (0, 86400]`);
  }
  if (options.ios !== null && !(Number.isSafeInteger(options.ios) && options.ios >= 1)) throw new InvalidInputError(`--ios: ${options.ios} is not a positive count`);
  if (options.fua && !options.ops.some((op) => op.endsWith("write"))) throw new InvalidInputError("--fua applies to write workloads only");
  const largestPages = Math.ceil(Math.max(...options.bs) / PAGE_SIZE);
  if (options.modes.some((mode) => mode !== "buffered" && mode !== "direct") && largestPages > options.budget) {
    throw new InvalidInputError(`--budget: ${options.budget} pages cannot hold one ${formatBytes(Math.max(...options.bs))} bounce buffer (${largestPages} pages)`);
  }
}

function runInWorker(worker: Worker, spec: JobSpec): Promise<JobResult> {
  return new Promise((resolve, reject) => {
    worker.onmessage = (event: MessageEvent<{ result?: JobResult; failure?: { code: string; message: string } }>) => {
      if (event.data.result !== undefined) resolve(event.data.result);
      else resolve(failedJob(spec.thread, event.data.failure!));
    };
    worker.onerror = (event) => reject(new Error(`bench worker failed: ${event.message}`));
    worker.postMessage({ spec });
  });
}

function failedJob(thread: number, error: { code: string; message: string }): JobResult {
  return {
    thread,
    decision: "direct",
    reasons: [],
    ios: 0,
    bytes: 0,
    elapsedNs: 0,
    cpuNs: 0,
    processCpuStartNs: 0,
    processCpuEndNs: 0,
    histogram: new LatencyHistogram(new Float64Array(0)).data(),
    bounceAcquired: 0,
    bouncePeakPages: 0,
    budgetStalls: 0,
    budgetStallNs: 0,
    copyNs: 0,
    copiedBytes: 0,
    kernelCalls: 0,
    diskBytes: 0,
    settled: 0,
    bounceHugePageBytes: 0,
    bounceArenaBytes: 0,
    slowCopyBytes: 0,
    bounceShift: 0,
    physicalSegments: null,
    guestSegments: null,
    bounceLayoutMatched: null,
    error,
  };
}

/**
 * The budget's use in a run, counted by the tracker shared by its jobs, added into the first
 * job (so that a run is its jobs alone, and runs add up).
 */
function addBudgetTotals(jobs: JobResult[], tracker: BounceBufferTracker): void {
  const stats = tracker.totals();
  const first = jobs[0]!;
  first.budgetStalls += stats.waits;
  first.budgetStallNs += stats.waitNs;
  first.bounceAcquired = stats.acquired;
  first.bouncePeakPages = stats.peakPages;
}

function summarize(item: { op: BenchOp; bs: number; memOffset: number; mode: IoMode }, options: BenchOptions, runs: JobResult[][]): Omit<BenchCaseResult, "pageCache"> {
  const jobs = runs.flat();
  const latency = new LatencyHistogram();
  for (const job of jobs) if (job.histogram.count > 0) latency.merge(LatencyHistogram.from(job.histogram));
  const rates = runs.map(runRates);
  const ios = rates.reduce((sum, run) => sum + run.ios, 0);
  const bytes = rates.reduce((sum, run) => sum + run.bytes, 0);
  const copyNs = jobs.reduce((sum, job) => sum + job.copyNs, 0);
  const first = jobs.find((job) => job.error === null) ?? jobs[0]!;
  const spread = (pick: (run: (typeof rates)[number]) => number, digits: number) => {
    const values = rates.filter((run) => run.ios > 0).map(pick);
    const summary = spreadOf(values.length > 0 ? values : [0]);
    return {
      median: round(summary.median, digits),
      min: round(summary.min, digits),
      max: round(summary.max, digits),
      iqr: summary.quartiles === null ? null : ([round(summary.quartiles[0], digits), round(summary.quartiles[1], digits)] as [number, number]),
    };
  };
  const mib = spread((run) => run.mibPerSec, 2);
  const iops = spread((run) => run.iops, 0);
  const cpu = spread((run) => run.cpuNsPerIo, 0);
  const meanLatencyNs = latency.mean();
  const us = (ns: number) => round(ns / 1000, 3);
  return {
    op: item.op,
    bs: item.bs,
    memOffset: item.memOffset,
    shape: options.shape === undefined ? null : formatShape(options.shape),
    mode: item.mode,
    decision: first.decision,
    reasons: first.reasons,
    engine: options.engine,
    qd: options.qd,
    threads: options.threads,
    repeats: runs.length,
    ios,
    bytes,
    seconds: round(rates.reduce((sum, run) => sum + run.seconds, 0), 6),
    mibPerSec: mib.median,
    mibPerSecMin: mib.min,
    mibPerSecMax: mib.max,
    iops: iops.median,
    iopsMin: iops.min,
    iopsMax: iops.max,
    cpuNsPerIo: cpu.median,
    cpuNsPerIoMin: cpu.min,
    cpuNsPerIoMax: cpu.max,
    iqr: mib.iqr === null ? null : { mibPerSec: mib.iqr, iops: iops.iqr!, cpuNsPerIo: cpu.iqr! },
    threadCpuNsPerIo: spread((run) => run.threadCpuNsPerIo, 0).median,
    cpuUtilization: spread((run) => run.utilization, 3).median,
    effectiveQd: effectiveQd(runs, options.threads),
    latencyUs:
      latency.count === 0
        ? null
        : {
            p50: us(latency.percentile(50)),
            p90: us(latency.percentile(90)),
            p99: us(latency.percentile(99)),
            p999: us(latency.percentile(99.9)),
            max: us(latency.maxNs),
            mean: us(meanLatencyNs),
            stdev: us(latency.stdev()),
          },
    histogram: latency.count === 0 ? null : { unit: "ns", ...latency.buckets() },
    samples: rates.map((run) => ({
      ios: run.ios,
      seconds: round(run.seconds, 6),
      mibPerSec: round(run.mibPerSec, 2),
      iops: Math.round(run.iops),
      cpuNsPerIo: Math.round(run.cpuNsPerIo),
    })),
    callsPerIo: perIo(jobs, (job) => job.kernelCalls),
    diskBytesPerIo: perIo(jobs, (job) => job.diskBytes),
    copiedBytesPerIo: perIo(jobs, (job) => job.copiedBytes),
    physicalSegments: ios > 0 ? (runs[runs.length - 1]![0]?.physicalSegments ?? null) : null,
    guestSegments: ios > 0 ? (runs[runs.length - 1]![0]?.guestSegments ?? null) : null,
    bounce: {
      acquired: jobs.reduce((sum, job) => sum + job.bounceAcquired, 0),
      waits: jobs.reduce((sum, job) => sum + job.budgetStalls, 0),
      waitNs: jobs.reduce((sum, job) => sum + job.budgetStallNs, 0),
      peakPages: Math.max(...jobs.map((job) => job.bouncePeakPages)),
      copyNs,
      // The bytes copied (a bounced IO of a scatter-gather shape may copy only some of its
      // segments) over the time copying them took.
      copyGiBPerSec: copyNs > 0 ? round(jobs.reduce((sum, job) => sum + job.copiedBytes, 0) / 2 ** 30 / (copyNs / 1e9), 2) : 0,
      hugePageBytes: runs[runs.length - 1]!.reduce((sum, job) => sum + job.bounceHugePageBytes, 0),
      slowCopyBytesPerIo: first.slowCopyBytes,
      shift: first.bounceShift,
      arenaBytes: Math.max(...jobs.map((job) => job.bounceArenaBytes)),
      layoutMatched: first.bounceLayoutMatched,
    },
    error: jobs.find((job) => job.error !== null)?.error ?? null,
  };
}

/**
 * IOs in flight per thread on average, over the runs: each IO is in progress for its latency
 * (from its start to its completion), less any time it waited for bounce pages before it could
 * be handed to the kernel; a run's IOs' such times add up to the integral of its IOs in flight.
 */
function effectiveQd(runs: JobResult[][], threads: number): number {
  const depths = runs
    .map((jobs) => {
      const elapsedNs = Math.max(...jobs.map((job) => job.elapsedNs));
      const inFlightNs = jobs.reduce((sum, job) => sum + job.histogram.sumNs - job.budgetStallNs, 0);
      return elapsedNs > 0 ? Math.max(0, inFlightNs) / elapsedNs / threads : null;
    })
    .filter((depth) => depth !== null);
  return depths.length === 0 ? 0 : round(depths.reduce((a, b) => a + b, 0) / depths.length, 2);
}

/** A total over the jobs per IO they ran (failed ones included: they asked the kernel too). */
function perIo(jobs: JobResult[], total: (job: JobResult) => number): number {
  const settled = jobs.reduce((sum, job) => sum + job.settled, 0);
  return settled > 0 ? round(jobs.reduce((sum, job) => sum + total(job), 0) / settled, 3) : 0;
}

/** Where a run happens: the machine, the disk and its alignment. */
export function describeHost(workspace: BenchWorkspace, bouncePages: BouncePages = "same", fileLocks?: boolean): HostInfo {
  const disk = workspace.disk;
  const cpu = cpus();
  return {
    kernel: release(),
    cpu: cpu[0]?.model.trim() ?? "unknown",
    cpus: cpu.length,
    filesystem: disk.fsType ?? null,
    disk: workspace.diskPath,
    scratch: workspace.scratch !== null,
    diskKind: workspace.scratch?.kind ?? null,
    sector: workspace.scratch?.sector ?? null,
    diskSize: workspace.diskSize,
    diskAlignment: alignmentJson(disk.discovered),
    alignment: alignmentJson(disk.discovered),
    planAlignment: alignmentJson(disk.alignment),
    transparentHugePages: transparentHugePageMode(),
    guestBacking: workspace.guestBacking,
    guestHugePageBytes: workspace.guestHugePageBytes(),
    bounceHugePages: bounceOnHugePages(workspace.guestBacking, bouncePages),
    maxSegments: blockLimits(statx(disk.fd))?.maxSegments ?? null,
    copyRates: null,
    kernelChecks: disk.alignment.source === "override" ? disk.kernelChecks : null,
    fileLocks: fileLocksOf(workspace, fileLocks),
  };
}

/** Whether a run's writes take cross-process locks (`BenchOptions.fileLocks`), and why. */
function fileLocksOf(workspace: BenchWorkspace, asked: boolean | undefined): { on: boolean; why: string } {
  if (workspace.scratch !== null) return { on: false, why: "a scratch disk no other process can reach" };
  if (asked === false) return { on: false, why: "--no-file-locks: writes of another process to this disk may be lost under a read-modify-write" };
  return { on: true, why: "a disk other processes may write: every write is ordered against their read-modify-writes" };
}

function round(value: number, digits: number): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}

/** 4096 as `4k`, 1048576 as `1m`. */
export function formatBytes(bytes: number): string {
  if (bytes % 2 ** 30 === 0) return `${bytes / 2 ** 30}g`;
  if (bytes % 2 ** 20 === 0) return `${bytes / 2 ** 20}m`;
  if (bytes % 1024 === 0) return `${bytes / 1024}k`;
  return String(bytes);
}
