/**
 * The arithmetic of repeated measurements: a figure measured in several runs is its median with
 * the spread of the runs (min-max, and the interquartile range from 4 runs), and a difference
 * between two such figures is a finding only when it is beyond both spreads.
 */

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

/**
 * How `other` differs from `base`: the change of the medians in percent of the base, and
 * whether it is beyond the noise, that is, the two runs' ranges (min-max) do not overlap. With
 * one run each there is no spread to judge by, so nothing is beyond noise.
 */
export function difference(
  base: { median: number; min: number; max: number; runs: number },
  other: { median: number; min: number; max: number; runs: number },
): { percent: number; beyondNoise: boolean } {
  const percent = base.median === 0 ? 0 : ((other.median - base.median) / base.median) * 100;
  const overlap = other.min <= base.max && base.min <= other.max;
  return { percent, beyondNoise: base.runs > 1 && other.runs > 1 && !overlap };
}
