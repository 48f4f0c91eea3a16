/**
 * What bouncing costs, like for like: each bounced case against the direct case of the same op
 * and block size (at the same memory offset when the kernel takes that directly, else at the
 * smallest offset it does), and per op and block size one verdict: the forced bounce at an
 * offset the kernel takes directly against direct IO there, so that the only difference is the
 * bounce. A change is a finding only when a rank test of both cases' runs says so (`difference`).
 */
import type { BenchCaseResult } from "./bench-results";
import { difference, type Difference } from "./statistics";

/** A change of one metric between two cases (`difference`: a finding when its rank test's p < 0.05). */
export type Change = Difference;

/** The direct case a result is measured against, or null when there is none (or it is direct itself). */
export function directPeer(result: BenchCaseResult, all: readonly BenchCaseResult[]): BenchCaseResult | null {
  if (result.decision === "direct" || result.ios === 0) return null;
  const peers = all.filter((other) => other.op === result.op && other.bs === result.bs && other.shape === result.shape && other.decision === "direct" && other.ios > 0);
  if (peers.length === 0) return null;
  return peers.find((other) => other.memOffset === result.memOffset) ?? [...peers].sort((a, b) => a.memOffset - b.memOffset)[0]!;
}

/** Throughput and CPU per IO of `result` against `base`, in percent, with the noise judged. */
export function changes(base: BenchCaseResult, result: BenchCaseResult): { mibPerSec: Change; cpuNsPerIo: Change } {
  const runs = (r: BenchCaseResult, key: "mibPerSec" | "cpuNsPerIo") => r.samples.map((run) => run[key]);
  return {
    mibPerSec: difference(runs(base, "mibPerSec"), runs(result, "mibPerSec")),
    cpuNsPerIo: difference(runs(base, "cpuNsPerIo"), runs(result, "cpuNsPerIo")),
  };
}

export interface BounceVerdict {
  op: string;
  bs: number;
  memOffset: number;
  direct: Pick<BenchCaseResult, "mibPerSec" | "mibPerSecMin" | "mibPerSecMax" | "cpuNsPerIo" | "cpuNsPerIoMin" | "cpuNsPerIoMax">;
  bounce: BounceVerdict["direct"];
  mibPerSec: Change;
  cpuNsPerIo: Change;
}

/**
 * Per op and block size: the forced bounce against direct IO at the same memory offset (the
 * smallest such offset), or nothing when the sweep has no such pair.
 */
export function bounceVerdicts(results: readonly BenchCaseResult[]): BounceVerdict[] {
  const verdicts: BounceVerdict[] = [];
  const keys = [...new Set(results.map((r) => `${r.op} ${r.bs} ${r.shape}`))];
  for (const key of keys) {
    const group = results.filter((r) => `${r.op} ${r.bs} ${r.shape}` === key && r.ios > 0);
    const pairs = group
      .filter((r) => r.mode === "bounce")
      .map((bounced) => ({ bounced, direct: group.find((r) => r.decision === "direct" && r.memOffset === bounced.memOffset) }))
      .filter((pair) => pair.direct !== undefined)
      .sort((a, b) => a.bounced.memOffset - b.bounced.memOffset);
    const pair = pairs[0];
    if (pair === undefined) continue;
    const pick = (r: BenchCaseResult) => ({
      mibPerSec: r.mibPerSec,
      mibPerSecMin: r.mibPerSecMin,
      mibPerSecMax: r.mibPerSecMax,
      cpuNsPerIo: r.cpuNsPerIo,
      cpuNsPerIoMin: r.cpuNsPerIoMin,
      cpuNsPerIoMax: r.cpuNsPerIoMax,
    });
    verdicts.push({
      op: pair.bounced.op,
      bs: pair.bounced.bs,
      memOffset: pair.bounced.memOffset,
      direct: pick(pair.direct!),
      bounce: pick(pair.bounced),
      ...changes(pair.direct!, pair.bounced),
    });
  }
  return verdicts;
}
