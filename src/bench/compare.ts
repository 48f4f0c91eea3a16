/**
 * Bench runs side by side: a base side and a new side, each one bench invocation or several;
 * cases matched by their parameters (op, block size or shape, memory offset, mode, engine, queue
 * depth, threads), and per metric the change from base to new, whether it is a finding
 * (`difference`: a rank test, a finding at p < 0.05), and whether it is a regression: worse by
 * more than the threshold, and a finding.
 *
 * What the rank test compares depends on how many invocations a side has:
 *  - one each: the two invocations' runs (their repeats). Runs of one invocation share its
 *    process, scratch disk and minute of the machine; between invocations the machine drifts by
 *    more than that (docs: `npm run bench:aa`), which this cannot see: a finding says these two
 *    invocations differ, not that the build does.
 *  - several each: each invocation's figure (the median of its runs), so the drift between
 *    invocations is the noise a change must stand out of. With invocations made alternately
 *    (base, new, base, new, ...) the test's false-finding rate holds; it needs 4 a side
 *    (`RUNS_FOR_A_FINDING`) for anything to be a finding.
 * A metric without runs (latency percentiles come from one merged histogram) is shown, never
 * judged. Documents are bench `--json` output; ones from before repeats (no `samples`) count as
 * one run each.
 */
import { InvalidInputError } from "../base/errors";
import { formatBytes } from "../base/value-parsers";
import { difference, median } from "./statistics";

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

/** What the rank test compared: the invocations' runs (one a side) or the invocations (several a side). */
export type JudgedBy = "repeats" | "invocations";

export interface Comparison {
  threshold: number;
  /** Invocations (bench documents) a side. */
  invocations: { base: number; new: number };
  judgedBy: JudgedBy;
  cases: CaseComparison[];
  /** Cases compared nowhere: some invocation of the base (new) side has them, not every invocation of both. */
  onlyInBase: string[];
  onlyInNew: string[];
  /** Settings in which the sides, or the invocations of one side, differ (host, options), which the reader should weigh. */
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

/**
 * Compares `fresh` with `base` at `threshold` percent; each side is one bench document or several
 * (invocations), and both sides must have one, or both several.
 */
export function compareRuns(base: BenchDocument | readonly BenchDocument[], fresh: BenchDocument | readonly BenchDocument[], threshold: number): Comparison {
  if (!(Number.isFinite(threshold) && threshold >= 0)) throw new InvalidInputError(`--threshold: ${threshold} is not a percentage of 0 or more`);
  const baseDocs: readonly BenchDocument[] = Array.isArray(base) ? base : [base as BenchDocument];
  const newDocs: readonly BenchDocument[] = Array.isArray(fresh) ? fresh : [fresh as BenchDocument];
  if (baseDocs.length === 0 || newDocs.length === 0) throw new InvalidInputError("compare: each side needs a bench run");
  if ((baseDocs.length === 1) !== (newDocs.length === 1)) {
    throw new InvalidInputError(
      `compare: the base has ${baseDocs.length} run${baseDocs.length === 1 ? "" : "s"} and the new side ${newDocs.length}: give each side one (judged by its repeats) or several (judged by invocation)`,
    );
  }
  const judgedBy: JudgedBy = baseDocs.length === 1 ? "repeats" : "invocations";
  const baseCases = casesOf(baseDocs);
  const newCases = casesOf(newDocs);
  const cases: CaseComparison[] = [];
  for (const [name, b] of baseCases.inEvery) {
    const n = newCases.inEvery.get(name);
    if (n === undefined) continue;
    const metrics = {} as Record<MetricKey, MetricChange | null>;
    for (const metric of COMPARED_METRICS) metrics[metric.key] = compareMetric(b, n, metric, threshold, judgedBy);
    cases.push({ name, metrics });
  }
  const compared = new Set(cases.map((c) => c.name));
  const within = (side: string, docs: readonly BenchDocument[]) => docs.slice(1).flatMap((doc, i) => settingsDiffering(docs[0]!, doc).map((d) => `${side} run ${i + 2} against run 1: ${d}`));
  return {
    threshold,
    invocations: { base: baseDocs.length, new: newDocs.length },
    judgedBy,
    cases,
    onlyInBase: baseCases.inAny.filter((name) => !compared.has(name)),
    onlyInNew: newCases.inAny.filter((name) => !compared.has(name)),
    differences: [...settingsDiffering(baseDocs[0]!, newDocs[0]!), ...within("base", baseDocs), ...within("new", newDocs)],
    regressed: cases.some((c) => Object.values(c.metrics).some((m) => m?.regressed)),
  };
}

/** A side's cases: by name, each invocation's record of the cases every invocation has; and every name any has. */
function casesOf(docs: readonly BenchDocument[]): { inEvery: Map<string, CaseRecord[]>; inAny: string[] } {
  const maps = docs.map((doc) => new Map(doc.results.map((r) => [caseName(r), r])));
  const inAny = [...new Set(maps.flatMap((map) => [...map.keys()]))];
  const inEvery = new Map<string, CaseRecord[]>();
  for (const name of inAny) if (maps.every((map) => map.has(name))) inEvery.set(name, maps.map((map) => map.get(name)!));
  return { inEvery, inAny };
}

function compareMetric(b: CaseRecord[], n: CaseRecord[], metric: (typeof COMPARED_METRICS)[number], threshold: number, judgedBy: JudgedBy): MetricChange | null {
  if ([...b, ...n].some((r) => r.ios === 0)) return null; // a refused case has no figures to compare
  const figure = (r: CaseRecord) => (metric.key === "p99Us" ? (r.latencyUs?.p99 ?? 0) : r[metric.key]);
  // By invocation: each one's figure. By repeats: the one invocation's runs; a document without
  // runs (schema 1), or p99 (one histogram over all runs), gives its one figure, which nothing can
  // be judged by.
  const values = (side: CaseRecord[]): number[] => {
    if (judgedBy === "invocations") return side.map(figure);
    const r = side[0]!;
    if (metric.key === "p99Us" || r.samples === undefined || r.samples.length === 0) return [figure(r)];
    const key = metric.key;
    return r.samples.map((run) => run[key]);
  };
  const change = difference(values(b), values(n));
  const worse = metric.better === "higher" ? change.percent < -threshold : change.percent > threshold;
  const better = metric.better === "higher" ? change.percent > threshold : change.percent < -threshold;
  const judged = metric.judged && change.beyondNoise;
  return {
    base: median(b.map(figure)),
    new: median(n.map(figure)),
    percent: Math.round(change.percent * 10) / 10,
    p: change.p === null || !metric.judged ? null : Math.round(change.p * 10000) / 10000,
    beyondNoise: judged,
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
