/**
 * LatencyHistogram: log-linear buckets of nanoseconds, fixed size, so recording a latency never
 * allocates and a run of any length uses the same memory.
 *
 *   values 0..31 ns              one bucket each
 *   values in [2^e, 2^(e+1))     32 buckets each (about 3% wide), for e = 5 .. 31
 *   values >= 2^32 ns (4.3 s)    the last bucket (the exact maximum is kept apart)
 *
 * Percentiles are read from the buckets (their midpoints), so they are within about 1.5% of
 * the exact value. Histograms of several threads merge by adding counts.
 */

const SUB_BITS = 5;
const SUB = 1 << SUB_BITS;
export const HISTOGRAM_BUCKETS = (32 - SUB_BITS + 1) * SUB;

export class LatencyHistogram {
  readonly counts: Float64Array;
  count = 0;
  maxNs = 0;

  constructor(counts?: Float64Array, count = 0, maxNs = 0) {
    this.counts = counts ?? new Float64Array(HISTOGRAM_BUCKETS);
    this.count = count;
    this.maxNs = maxNs;
  }

  record(ns: number): void {
    const value = ns < 0 ? 0 : ns >= 0xffffffff ? 0xffffffff : ns >>> 0;
    this.counts[bucketOf(value)]!++;
    this.count++;
    if (ns > this.maxNs) this.maxNs = ns;
  }

  merge(other: LatencyHistogram): void {
    for (let i = 0; i < HISTOGRAM_BUCKETS; i++) this.counts[i]! += other.counts[i]!;
    this.count += other.count;
    this.maxNs = Math.max(this.maxNs, other.maxNs);
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

function bucketMiddle(index: number): number {
  if (index < SUB) return index;
  const shift = Math.floor(index / SUB) - 1;
  const low = ((index % SUB) + SUB) * 2 ** shift;
  return low + 2 ** shift / 2;
}
