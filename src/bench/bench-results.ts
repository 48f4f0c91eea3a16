/**
 * What a sweep reports: per case, the runs of its Workers summed into one result whose rates
 * are the medians of its runs, with their spread, every run's own figures (`samples`, what
 * `compare` and the verdicts judge), the latency of all runs merged, and what the kernel was
 * asked per IO. CPU per IO is the process's CPU time over the IOs (the runner's module doc).
 */
import { formatBytes } from "../base/value-parsers";
import type { RuleSet } from "../base/alignment-rules";
import type { EngineName } from "../io/engines";
import type { IoMode } from "../io/planner";
import type { PageCacheUse } from "../io/page-cache-watch";
import { formatShape, type BenchOptions } from "./bench-options";
import { LatencyHistogram } from "./histogram";
import type { HostInfo } from "./host-info";
import type { BenchOp, JobResult } from "./job";
import { runRates, spreadOf } from "./statistics";

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
  /**
   * Under `--fixedbufs` (null otherwise): calls sent with registered buffers (READ_FIXED,
   * WRITE_FIXED, READV_FIXED, WRITEV_FIXED), and calls that could not be and went as READV or
   * WRITEV, over every run.
   */
  fixedBuffers: { calls: number; notFixed: number } | null;
  /**
   * Under `--nonvectored` (null otherwise): calls of one iovec sent as READ or WRITE, and calls
   * of several iovecs that went as READV or WRITEV, over every run (fixed calls are in neither).
   */
  nonvectored: { calls: number; vectored: number } | null;
  /**
   * With the uring engine (null otherwise): whether every run's rings were entered by their
   * index among their thread's registered rings (`IORING_REGISTER_RING_FDS`, 5.18+), as fio's
   * `t/io_uring` does; false when the kernel refused that for any, which were then entered by
   * their descriptor.
   */
  registeredRing: boolean | null;
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

/** One case's result from its runs (each run: one job per thread), the page cache's use aside. */
export function summarizeCase(item: { op: BenchOp; bs: number; memOffset: number; mode: IoMode }, options: BenchOptions, runs: JobResult[][]): Omit<BenchCaseResult, "pageCache"> {
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
    fixedBuffers: options.uring?.fixedBuffers ? { calls: jobs.reduce((sum, job) => sum + job.fixedCalls, 0), notFixed: jobs.reduce((sum, job) => sum + job.unfixedCalls, 0) } : null,
    nonvectored: options.uring?.nonvectored ? { calls: jobs.reduce((sum, job) => sum + job.nonvectoredCalls, 0), vectored: jobs.reduce((sum, job) => sum + job.vectoredCalls, 0) } : null,
    registeredRing: jobs.every((job) => job.registeredRing === null) ? null : jobs.every((job) => job.registeredRing !== false),
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

function round(value: number, digits: number): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}
