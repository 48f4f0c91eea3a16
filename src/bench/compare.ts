/**
 * Two bench runs side by side: cases matched by their parameters (op, block size or shape,
 * memory offset, mode, engine, queue depth, threads), and per metric the change from the base
 * run to the new one, whether it is beyond the noise of both runs' repeats (`difference`: a
 * rank test of the runs, a finding at p < 0.05), and whether it is a regression: worse by more
 * than the threshold, and beyond noise. A metric without runs (latency percentiles come from one
 * merged histogram) is shown, never judged.
 *
 * Documents are bench `--json` output; ones from before repeats (no `samples`) count as one run
 * each, so nothing in them is beyond noise.
 */
import { InvalidInputError } from "../base/errors";
import { formatBytes } from "./runner";
import { difference } from "./statistics";

/** The metrics compared, and which way is better. */
export const COMPARED_METRICS = [
  { key: "mibPerSec", better: "higher", judged: true },
  { key: "iops", better: "higher", judged: true },
  { key: "cpuNsPerIo", better: "lower", judged: true },
  { key: "p99Us", better: "lower", judged: false },
] as const;

export type MetricKey = (typeof COMPARED_METRICS)[number]["key"];

export interface MetricChange {
  base: number;
  new: number;
  percent: number;
  /** The rank test's two-sided p (statistics.ts), or null where there are no runs to judge by. */
  p: number | null;
  beyondNoise: boolean;
  /** Worse by more than the threshold and beyond noise. */
  regressed: boolean;
  improved: boolean;
}

export interface CaseComparison {
  /** The case's parameters, as `read 64k +8 bounce sync qd1 x1`. */
  name: string;
  metrics: Record<MetricKey, MetricChange | null>;
}

export interface Comparison {
  threshold: number;
  cases: CaseComparison[];
  /** Cases only one run has. */
  onlyInBase: string[];
  onlyInNew: string[];
  /** Settings in which the runs differ (host, options), which the reader should weigh. */
  differences: string[];
  regressed: boolean;
}

/** What a bench case must carry to be compared. */
interface CaseRecord {
  op: string;
  bs: number;
  memOffset: number;
  shape?: string | null;
  mode: string;
  engine: string;
  qd: number;
  threads: number;
  ios: number;
  repeats?: number;
  mibPerSec: number;
  mibPerSecMin?: number;
  mibPerSecMax?: number;
  iops: number;
  iopsMin?: number;
  iopsMax?: number;
  cpuNsPerIo: number;
  cpuNsPerIoMin?: number;
  cpuNsPerIoMax?: number;
  latencyUs?: { p99: number } | null;
  /** Each run's figures (schema 2 on): what the rank test judges. */
  samples?: { mibPerSec: number; iops: number; cpuNsPerIo: number }[];
}

interface BenchDocument {
  results: CaseRecord[];
  host?: Record<string, unknown>;
  options?: Record<string, unknown>;
}

/** A parsed bench document, checked enough to compare; bad input names the file and what is wrong. */
export function benchDocument(value: unknown, name: string): BenchDocument {
  const doc = value as { command?: unknown; results?: unknown };
  if (typeof value !== "object" || value === null || !Array.isArray(doc.results)) {
    throw new InvalidInputError(`${name}: not a bench --json document (no "results" list)`);
  }
  if (doc.command !== undefined && doc.command !== "bench") throw new InvalidInputError(`${name}: a ${String(doc.command)} document, not a bench one`);
  for (const [i, result] of (doc.results as unknown[]).entries()) {
    const r = result as Record<string, unknown>;
    for (const key of ["op", "mode", "engine"]) if (typeof r?.[key] !== "string") throw new InvalidInputError(`${name}: results[${i}].${key} is not a string`);
    for (const key of ["bs", "memOffset", "qd", "threads", "ios", "mibPerSec", "iops", "cpuNsPerIo"]) {
      if (typeof r[key] !== "number") throw new InvalidInputError(`${name}: results[${i}].${key} is not a number`);
    }
  }
  return value as BenchDocument;
}

function caseName(r: CaseRecord): string {
  const size = r.shape ? `${formatBytes(r.bs)} sg ${r.shape}` : formatBytes(r.bs);
  return `${r.op} ${size} +${r.memOffset} ${r.mode} ${r.engine} qd${r.qd} x${r.threads}`;
}

/** Compares `fresh` with `base` at `threshold` percent. */
export function compareRuns(base: BenchDocument, fresh: BenchDocument, threshold: number): Comparison {
  if (!(Number.isFinite(threshold) && threshold >= 0)) throw new InvalidInputError(`--threshold: ${threshold} is not a percentage of 0 or more`);
  const byName = (doc: BenchDocument) => new Map(doc.results.map((r) => [caseName(r), r]));
  const baseCases = byName(base);
  const newCases = byName(fresh);
  const cases: CaseComparison[] = [];
  for (const [name, b] of baseCases) {
    const n = newCases.get(name);
    if (n === undefined) continue;
    const metrics = {} as Record<MetricKey, MetricChange | null>;
    for (const metric of COMPARED_METRICS) metrics[metric.key] = compareMetric(b, n, metric, threshold);
    cases.push({ name, metrics });
  }
  return {
    threshold,
    cases,
    onlyInBase: [...baseCases.keys()].filter((name) => !newCases.has(name)),
    onlyInNew: [...newCases.keys()].filter((name) => !baseCases.has(name)),
    differences: settingsDiffering(base, fresh),
    regressed: cases.some((c) => Object.values(c.metrics).some((m) => m?.regressed)),
  };
}

function compareMetric(b: CaseRecord, n: CaseRecord, metric: (typeof COMPARED_METRICS)[number], threshold: number): MetricChange | null {
  if (b.ios === 0 || n.ios === 0) return null; // a refused case has no figures to compare
  // Each run's value; a document without runs (schema 1), or p99 (one histogram over all runs),
  // gives its one figure, which nothing can be judged by.
  const runs = (r: CaseRecord): number[] => {
    if (metric.key === "p99Us") return [r.latencyUs?.p99 ?? 0];
    const key = metric.key;
    return r.samples !== undefined && r.samples.length > 0 ? r.samples.map((run) => run[key]) : [r[key]];
  };
  const change = difference(runs(b), runs(n));
  const worse = metric.better === "higher" ? change.percent < -threshold : change.percent > threshold;
  const better = metric.better === "higher" ? change.percent > threshold : change.percent < -threshold;
  const judged = metric.judged && change.beyondNoise;
  return {
    base: metric.key === "p99Us" ? (b.latencyUs?.p99 ?? 0) : b[metric.key],
    new: metric.key === "p99Us" ? (n.latencyUs?.p99 ?? 0) : n[metric.key],
    percent: Math.round(change.percent * 10) / 10,
    p: change.p === null ? null : Math.round(change.p * 10000) / 10000,
    beyondNoise: change.beyondNoise,
    regressed: judged && worse,
    improved: judged && better,
  };
}

/** Host facts and options in which the two runs differ. */
function settingsDiffering(base: BenchDocument, fresh: BenchDocument): string[] {
  const differing: string[] = [];
  const compare = (what: string, a: Record<string, unknown> | undefined, b: Record<string, unknown> | undefined, keys: string[]) => {
    if (a === undefined || b === undefined) return;
    for (const key of keys) {
      const [x, y] = [JSON.stringify(a[key]), JSON.stringify(b[key])];
      if (x !== y) differing.push(`${what}.${key}: ${x} vs ${y}`);
    }
  };
  // A scratch disk's path is new in every run: only a disk the user named is compared by path.
  const scratch = base.host?.scratch === true && fresh.host?.scratch === true;
  const hostKeys = ["kernel", "cpu", "cpus", "filesystem", "disk", "diskKind", "sector", "transparentHugePages", "guestBacking", "bounceHugePages"].filter((key) => !(scratch && key === "disk"));
  compare("host", base.host, fresh.host, hostKeys);
  compare("options", base.options, fresh.options, ["runtimeSeconds", "ios", "repeat", "rampSeconds", "budget", "alignOverride", "memAlignOverride", "rules", "fua", "copy", "bouncePages", "bounceLayout"]);
  return differing;
}
