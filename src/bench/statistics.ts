/**
 * The arithmetic of repeated measurements: a figure measured in several runs is its median with
 * the spread of the runs (min-max, and the interquartile range from 4 runs), and a difference
 * between two such figures is a finding only when a rank test of the runs says so: the
 * two-sided Mann-Whitney (Wilcoxon rank-sum) test, at p < 0.05. It asks nothing of the runs'
 * distribution (disk throughput is skewed and drifts), only that the runs of each side are
 * alike; its false findings between two sets of runs of the same thing are at most 5%. It needs
 * runs: the smallest p two sides of n and m runs can give is 2 / C(n+m, n), so with 3 runs each
 * (0.1) nothing is ever a finding; 4 each (0.029) is the least that can find one, and 5 each
 * (0.0079) finds a clear one reliably.
 */
import type { JobResult } from "./job";

/**
 * One run's own rates: what its jobs (one per thread) did together over the longest of their
 * measured intervals. The process's CPU is read at each job's start and end, so the run's is
 * from the earliest start to the latest end (every thread's work inside it); a job that was
 * never measured (refused at once) has no readings and counts for none.
 */
export function runRates(jobs: readonly Pick<JobResult, "ios" | "bytes" | "elapsedNs" | "processCpuStartNs" | "processCpuEndNs" | "cpuNs">[]): { ios: number; bytes: number; seconds: number; mibPerSec: number; iops: number; cpuNs: number; cpuNsPerIo: number; threadCpuNsPerIo: number; utilization: number } {
  const ios = jobs.reduce((sum, job) => sum + job.ios, 0);
  const bytes = jobs.reduce((sum, job) => sum + job.bytes, 0);
  const seconds = Math.max(...jobs.map((job) => job.elapsedNs)) / 1e9;
  const measured = jobs.filter((job) => job.processCpuEndNs > 0);
  const cpuNs = measured.length === 0 ? 0 : Math.max(...measured.map((job) => job.processCpuEndNs)) - Math.min(...measured.map((job) => job.processCpuStartNs));
  return {
    ios,
    bytes,
    seconds,
    mibPerSec: seconds > 0 ? bytes / 2 ** 20 / seconds : 0,
    iops: seconds > 0 ? ios / seconds : 0,
    cpuNs,
    cpuNsPerIo: ios > 0 ? cpuNs / ios : 0,
    threadCpuNsPerIo: ios > 0 ? jobs.reduce((sum, job) => sum + job.cpuNs, 0) / ios : 0,
    utilization: seconds > 0 ? cpuNs / 1e9 / seconds : 0,
  };
}

/** A figure over runs: median, extremes, and the quartiles with 4 runs or more. */
export interface Spread {
  median: number;
  min: number;
  max: number;
  quartiles: [number, number] | null;
}

/** Median, extremes and (with 4 values or more) the quartiles, interpolated between ranks. */
export function spreadOf(values: readonly number[]): Spread {
  if (values.length === 0) throw new RangeError("spreadOf: no values");
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number) => {
    const rank = q * (sorted.length - 1);
    const low = Math.floor(rank);
    const high = Math.ceil(rank);
    return sorted[low]! + (sorted[high]! - sorted[low]!) * (rank - low);
  };
  return { median: at(0.5), min: sorted[0]!, max: sorted[sorted.length - 1]!, quartiles: sorted.length >= 4 ? [at(0.25), at(0.75)] : null };
}

/** Below this p a difference between two sets of runs is a finding (two-sided). */
export const FINDING_P = 0.05;

/** The fewest runs per side with which a difference can be a finding (2 / C(8, 4) < 0.05). */
export const RUNS_FOR_A_FINDING = 4;

/** The median of `values` (not empty). */
export function median(values: readonly number[]): number {
  return spreadOf(values).median;
}

/**
 * The two-sided p-value of the Mann-Whitney rank-sum test of `a` against `b`: how likely a rank
 * sum of `a` at least this far from its mean is when both come from one distribution. Ties get
 * their mean rank. Exact (the permutation distribution of the rank sum, counted by dynamic
 * programming over doubled ranks, which are whole) up to `exactUpTo` values; beyond, the normal
 * approximation with the tie correction and a continuity correction.
 */
export function rankSumP(a: readonly number[], b: readonly number[], exactUpTo = 40): number {
  const n = a.length;
  const m = b.length;
  if (n === 0 || m === 0) throw new RangeError("rankSumP: each side needs a value");
  const pooled = [...a.map((value) => ({ value, first: true })), ...b.map((value) => ({ value, first: false }))].sort((x, y) => x.value - y.value);
  const total = n + m;
  // Doubled mid-ranks: a tie group covering ranks i+1 .. j gets (i+1+j), twice its mean rank.
  const doubled = new Array<number>(total);
  let tieTerm = 0;
  for (let i = 0; i < total; ) {
    let j = i;
    while (j < total && pooled[j]!.value === pooled[i]!.value) j++;
    for (let k = i; k < j; k++) doubled[k] = i + 1 + j;
    const t = j - i;
    tieTerm += t * t * t - t;
    i = j;
  }
  const observed = pooled.reduce((sum, item, k) => sum + (item.first ? doubled[k]! : 0), 0);
  const mean = n * (total + 1); // doubled
  const distance = Math.abs(observed - mean);
  if (total <= exactUpTo) {
    // ways[k][s]: subsets of k of the values whose doubled ranks sum to s.
    const maxSum = doubled.reduce((sum, r) => sum + r, 0);
    const ways = Array.from({ length: n + 1 }, () => new Float64Array(maxSum + 1));
    ways[0]![0] = 1;
    for (let k = 0; k < total; k++) {
      const r = doubled[k]!;
      for (let size = Math.min(k + 1, n); size >= 1; size--) {
        const from = ways[size - 1]!;
        const to = ways[size]!;
        for (let sum = maxSum; sum >= r; sum--) to[sum]! += from[sum - r]!;
      }
    }
    let extreme = 0;
    let all = 0;
    const sums = ways[n]!;
    for (let sum = 0; sum <= maxSum; sum++) {
      all += sums[sum]!;
      // Doubled sums are whole numbers: the tolerance only absorbs rounding in `distance`.
      if (Math.abs(sum - mean) >= distance - 1e-9) extreme += sums[sum]!;
    }
    return Math.min(1, extreme / all);
  }
  const variance = ((n * m) / 12) * (total + 1 - tieTerm / (total * (total - 1))) * 4; // doubled scale
  if (variance === 0) return 1;
  const z = Math.max(0, distance - 1) / Math.sqrt(variance); // continuity: one doubled unit
  return Math.min(1, 2 * (1 - normalCdf(z)));
}

/** The standard normal distribution function (Abramowitz and Stegun 7.1.26, error below 1.5e-7). */
function normalCdf(z: number): number {
  const t = 1 / (1 + 0.3275911 * (Math.abs(z) / Math.SQRT2));
  const poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
  const erf = 1 - poly * Math.exp(-(z * z) / 2);
  return z >= 0 ? (1 + erf) / 2 : (1 - erf) / 2;
}

/** How one figure differs between two sets of runs. */
export interface Difference {
  /** The change of the medians, in percent of the base's. */
  percent: number;
  /** The rank test's two-sided p, or null with fewer than 2 runs on a side (nothing to judge by). */
  p: number | null;
  /** p < FINDING_P: a finding, not noise. */
  beyondNoise: boolean;
}

/** How the runs of `other` differ from those of `base` (`rankSumP`). */
export function difference(base: readonly number[], other: readonly number[]): Difference {
  const from = median(base);
  const percent = from === 0 ? 0 : ((median(other) - from) / from) * 100;
  if (base.length < 2 || other.length < 2) return { percent, p: null, beyondNoise: false };
  const p = rankSumP(base, other);
  return { percent, p, beyondNoise: p < FINDING_P };
}
