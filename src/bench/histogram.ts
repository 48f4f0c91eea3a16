/**
 * LatencyHistogram: log-linear buckets of nanoseconds, fixed size, so recording a latency never
 * allocates and a run of any length uses the same memory.
 *
 *   values 0..31 ns              one bucket each
 *   values in [2^e, 2^(e+1))     32 buckets each (about 3% wide), for e = 5 .. 31
 *   values >= 2^32 ns (4.3 s)    the last bucket (the exact maximum is kept apart)
 *
 * Percentiles are read from the buckets (their midpoints), so they are within about 1.5% of
 * the exact value. The mean and standard deviation are exact (running sums). Histograms of
 * several threads, or of several repeats, merge by adding counts and sums.
 */

const SUB_BITS = 5;
const SUB = 1 << SUB_BITS;
export const HISTOGRAM_BUCKETS = (32 - SUB_BITS + 1) * SUB;

export class LatencyHistogram {
  readonly counts: Float64Array;
  count = 0;
  maxNs = 0;

  /** Sum of the recorded values, and of their squares (for the mean and standard deviation). */
  sumNs = 0;
  sumSquaresNs = 0;

  constructor(counts?: Float64Array, count = 0, maxNs = 0, sumNs = 0, sumSquaresNs = 0) {
    this.counts = counts ?? new Float64Array(HISTOGRAM_BUCKETS);
    this.count = count;
    this.maxNs = maxNs;
    this.sumNs = sumNs;
    this.sumSquaresNs = sumSquaresNs;
  }

  /** A histogram from its plain-data form (`data()`), as it crosses postMessage. */
  static from(data: HistogramData): LatencyHistogram {
    return new LatencyHistogram(data.counts, data.count, data.maxNs, data.sumNs, data.sumSquaresNs);
  }

  data(): HistogramData {
    return { counts: this.counts, count: this.count, maxNs: this.maxNs, sumNs: this.sumNs, sumSquaresNs: this.sumSquaresNs };
  }

  /** Empties it in place (`data()` handed out before shares its counts). */
  clear(): void {
    this.counts.fill(0);
    this.count = 0;
    this.maxNs = 0;
    this.sumNs = 0;
    this.sumSquaresNs = 0;
  }

  record(ns: number): void {
    const value = ns < 0 ? 0 : ns >= 0xffffffff ? 0xffffffff : ns >>> 0;
    this.counts[bucketOf(value)]!++;
    this.count++;
    this.sumNs += ns;
    this.sumSquaresNs += ns * ns;
    if (ns > this.maxNs) this.maxNs = ns;
  }

  merge(other: LatencyHistogram): void {
    for (let i = 0; i < HISTOGRAM_BUCKETS; i++) this.counts[i]! += other.counts[i]!;
    this.count += other.count;
    this.sumNs += other.sumNs;
    this.sumSquaresNs += other.sumSquaresNs;
    this.maxNs = Math.max(this.maxNs, other.maxNs);
  }

  /** The mean in nanoseconds; 0 when empty. */
  mean(): number {
    return this.count === 0 ? 0 : this.sumNs / this.count;
  }

  /** The (population) standard deviation in nanoseconds; 0 when empty. */
  stdev(): number {
    if (this.count === 0) return 0;
    const mean = this.mean();
    return Math.sqrt(Math.max(0, this.sumSquaresNs / this.count - mean * mean));
  }

  /**
   * The non-empty buckets, for other tools to plot or merge: each bucket's bounds in
   * nanoseconds (`lowerNs` inclusive, `upperNs` exclusive) and its count.
   */
  buckets(): { lowerNs: number[]; upperNs: number[]; counts: number[] } {
    const lowerNs: number[] = [];
    const upperNs: number[] = [];
    const counts: number[] = [];
    for (let i = 0; i < HISTOGRAM_BUCKETS; i++) {
      if (this.counts[i] === 0) continue;
      const [low, high] = bucketBounds(i);
      lowerNs.push(low);
      upperNs.push(high);
      counts.push(this.counts[i]!);
    }
    return { lowerNs, upperNs, counts };
  }

  /** The `p`th percentile (0 < p <= 100) in nanoseconds; 0 when empty. */
  percentile(p: number): number {
    if (this.count === 0) return 0;
    const rank = Math.max(1, Math.ceil((p / 100) * this.count));
    let seen = 0;
    for (let i = 0; i < HISTOGRAM_BUCKETS; i++) {
      seen += this.counts[i]!;
      if (seen >= rank) return Math.min(bucketMiddle(i), this.maxNs);
    }
    return this.maxNs;
  }
}

function bucketOf(value: number): number {
  if (value < SUB) return value;
  const exponent = 31 - Math.clz32(value);
  const shift = exponent - SUB_BITS;
  return (shift + 1) * SUB + ((value >>> shift) - SUB);
}

/** A bucket's values: `[lower, upper)` in nanoseconds (the last bucket also holds everything above). */
function bucketBounds(index: number): [number, number] {
  if (index < SUB) return [index, index + 1];
  const shift = Math.floor(index / SUB) - 1;
  const low = ((index % SUB) + SUB) * 2 ** shift;
  return [low, low + 2 ** shift];
}

function bucketMiddle(index: number): number {
  const [low, high] = bucketBounds(index);
  return index < SUB ? low : (low + high) / 2;
}

/** A histogram as plain data (what a Worker posts). */
export interface HistogramData {
  counts: Float64Array;
  count: number;
  maxNs: number;
  sumNs: number;
  sumSquaresNs: number;
}
