/**
 * `replay`: a trace's IOs judged by every rule set and kernel rule set, without doing them.
 *
 * Each IO's iovecs are laid over guest memory exactly as captured: a segment per iovec, at the
 * captured address (guest page = the captured page, so each address keeps its offset in the
 * page and its distance to the others: iovecs that touched in memory still touch, and those in
 * one page still share it). Then, for each rule set R (the kernel's rule, the reference's, the
 * VMMs' policies) the planner decides the IO as R would (direct, bounce, read-modify-write,
 * split, with the bytes it copies), and for each kernel rule set K:
 *
 *   needless   R copied, and K would have taken the IO's own iovecs directly
 *   refused    R sends K iovecs (its direct ones, or its own copy) that K refuses with EINVAL
 *
 * The verdict of an IO depends only on its op, its disk offset within a block, and its iovecs'
 * lengths and addresses relative to the first one's page; IOs alike in those are decided once
 * (a bounded cache), so a trace of millions of IOs from a handful of shapes is quick. Memory
 * stays bounded: the trace is streamed, the cache and the table of shapes that bounce have
 * fixed sizes (shapes beyond it are counted together).
 */
import { blockSize, type DiskAlignment, type KernelChecks, type RuleSet } from "../base/alignment-rules";
import { PAGE_SIZE } from "../base/constants";
import { KERNEL_RULE_SETS, kernelProblem, kernelRuleSet } from "../base/kernel-rules";
import { kernelCalls } from "../io/kernel-verdicts";
import { plan, type Decision } from "../io/planner";
import { PagedRange } from "../memory/paged-range";
import type { TraceIo } from "./trace-format";

/** A kernel rule set as replay judges by: a named one, or the running kernel as measured. */
export interface ReplayKernel {
  name: string;
  checks: KernelChecks;
  memoryIsBlock: boolean;
  /** The kernels it stands for, for people. */
  kernels: string;
}

export function namedKernel(name: string): ReplayKernel {
  const set = kernelRuleSet(name);
  return { name: set.name, checks: set.checks, memoryIsBlock: set.memoryIsBlock, kernels: set.kernels };
}

export const NAMED_KERNELS: readonly string[] = KERNEL_RULE_SETS.map((set) => set.name);

/** How one rule set decided the trace's IOs. */
export interface RulesTotals {
  rules: RuleSet;
  decisions: Record<Decision, number>;
  /** IOs that copied anything, and the bytes copied. */
  bouncedIos: number;
  copiedBytes: number;
  /** The shapes that bounce most under this rule set. */
  topShapes: { shape: string; ios: number; copiedBytes: number }[];
  /** IOs of shapes beyond the table's size (counted, not named). */
  otherShapeIos: number;
  /** Per kernel rule set. */
  kernels: { kernel: string; needlessIos: number; needlessBytes: number; refusedIos: number; refusedExample: string | null }[];
}

export interface ReplaySummary {
  ios: number;
  reads: number;
  writes: number;
  bytes: number;
  /** IOs left out: iovecs beyond the capture's limit (unknown), or no bytes. */
  skipped: { iovecsTruncated: number; empty: number };
  /** How the IOs fared when captured: failed with an errno, by name. */
  capturedErrors: Record<string, number>;
  /** Distinct shapes decided (each planned once per rule set). */
  shapes: number;
  /** The largest disk extent touched, and the most pages and iovecs one IO laid over memory. */
  maxEnd: number;
  maxPages: number;
  maxIovecs: number;
  rules: RulesTotals[];
}

/** Shapes kept apart in the table of those that bounce; the rest are counted as "other". */
const MAX_SHAPES = 4096;
/** Verdicts cached; the cache is emptied when full (a trace of random shapes just runs slower). */
const MAX_CACHED = 16384;
/** Shapes listed per rule set. */
const TOP_SHAPES = 10;

interface Verdict {
  /** Per rule set: decision, bytes copied, and per kernel whether the rule set's IO is refused. */
  rules: { decision: Decision; copied: number; refused: (string | null)[] }[];
  /** Per kernel: whether it takes the IO's own iovecs directly. */
  takesDirect: boolean[];
}

/** The segments of `io`, over guest pages numbered as the captured pages are. */
export function segmentsOf(io: TraceIo): PagedRange[] {
  const segments: PagedRange[] = [];
  for (const [address, len] of io.iovecs) {
    if (len === 0) continue;
    const first = Math.floor(address / PAGE_SIZE);
    const last = Math.floor((address + len - 1) / PAGE_SIZE);
    const gpns: number[] = [];
    for (let page = first; page <= last; page++) gpns.push(page);
    segments.push(new PagedRange(address % PAGE_SIZE, len, gpns));
  }
  return segments;
}

/**
 * What the IO's verdict depends on, as a cache key: its op, its disk offset within a block, each
 * iovec's address within a block (or page) and length, and how each iovec's first page stands
 * to the previous one's last page: the same, the next, or further (the planner merges runs of
 * consecutive guest pages and segments that touch, so the distance between iovecs that are
 * neither matters to nothing). `unit` is at least the page and every alignment judged.
 */
function shapeKey(io: TraceIo, unit: number): string {
  let key = `${io.op} ${io.offset % unit}`;
  let previousLast = 0;
  for (const [i, [address, len]] of io.iovecs.entries()) {
    const first = Math.floor(address / PAGE_SIZE);
    if (i > 0) {
      const step = first - previousLast;
      key += step >= -1 && step <= 2 ? ` ${step}:` : " f:";
    }
    key += ` ${address % unit}+${len}`;
    previousLast = Math.floor((address + Math.max(len, 1) - 1) / PAGE_SIZE);
  }
  return key;
}

/** A shape for people: op, size, iovecs as (offset in page)+(length), disk offset within the block. */
function describeShape(io: TraceIo, len: number, block: number): string {
  const shown = io.iovecs.slice(0, 4).map(([address, l]) => `${address % PAGE_SIZE}+${l}`);
  const more = io.iovecs.length > 4 ? ` ...${io.iovecs.length} in all` : "";
  const within = io.offset % block;
  return `${io.op} ${len} B, ${io.iovecs.length} iovec${io.iovecs.length === 1 ? "" : "s"} [${shown.join(", ")}${more}], disk offset ${within === 0 ? "on a block" : `${within} into a block`}`;
}

export class ReplayAnalysis {
  readonly #alignment: DiskAlignment;
  readonly #rules: readonly RuleSet[];
  readonly #kernels: readonly ReplayKernel[];
  readonly #block: number;
  readonly #cache = new Map<string, Verdict>();
  readonly #shapes: Map<string, { ios: number; copied: number; text: string }>[];
  readonly #totals: RulesTotals[];
  #distinct = 0;
  readonly summary: ReplaySummary;

  constructor(alignment: DiskAlignment, rules: readonly RuleSet[], kernels: readonly ReplayKernel[]) {
    this.#alignment = alignment;
    this.#rules = rules;
    this.#kernels = kernels;
    // The larger of the read and write blocks, the memory alignment and the page: every position that matters.
    this.#block = Math.max(blockSize(alignment, "read"), blockSize(alignment, "write"), alignment.memAlign, PAGE_SIZE);
    this.#shapes = rules.map(() => new Map());
    this.#totals = rules.map((r) => ({
      rules: r,
      decisions: { direct: 0, bounce: 0, rmw: 0, split: 0, buffered: 0 },
      bouncedIos: 0,
      copiedBytes: 0,
      topShapes: [],
      otherShapeIos: 0,
      kernels: kernels.map((k) => ({ kernel: k.name, needlessIos: 0, needlessBytes: 0, refusedIos: 0, refusedExample: null })),
    }));
    this.summary = { ios: 0, reads: 0, writes: 0, bytes: 0, skipped: { iovecsTruncated: 0, empty: 0 }, capturedErrors: {}, shapes: 0, maxEnd: 0, maxPages: 0, maxIovecs: 0, rules: this.#totals };
  }

  add(io: TraceIo): void {
    const summary = this.summary;
    if (io.iovecsTotal !== undefined) {
      summary.skipped.iovecsTruncated++;
      return;
    }
    let len = 0;
    let pages = 0;
    for (const [address, l] of io.iovecs) {
      len += l;
      if (l > 0) pages += Math.floor((address + l - 1) / PAGE_SIZE) - Math.floor(address / PAGE_SIZE) + 1;
    }
    if (len === 0) {
      summary.skipped.empty++;
      return;
    }
    summary.ios++;
    if (io.op === "read") summary.reads++;
    else summary.writes++;
    summary.bytes += len;
    summary.maxEnd = Math.max(summary.maxEnd, io.offset + len);
    summary.maxPages = Math.max(summary.maxPages, pages);
    summary.maxIovecs = Math.max(summary.maxIovecs, io.iovecs.length);
    if (io.error !== undefined) summary.capturedErrors[io.error] = (summary.capturedErrors[io.error] ?? 0) + 1;
    const key = shapeKey(io, this.#block);
    let verdict = this.#cache.get(key);
    if (verdict === undefined) {
      if (this.#cache.size >= MAX_CACHED) this.#cache.clear();
      verdict = this.#decide(io);
      this.#cache.set(key, verdict);
      this.#distinct++;
    }
    for (const [r, totals] of this.#totals.entries()) {
      const decided = verdict.rules[r]!;
      totals.decisions[decided.decision]++;
      if (decided.copied > 0) {
        totals.bouncedIos++;
        totals.copiedBytes += decided.copied;
        const shapes = this.#shapes[r]!;
        const row = shapes.get(key);
        if (row !== undefined) {
          row.ios++;
          row.copied += decided.copied;
        } else if (shapes.size < MAX_SHAPES) shapes.set(key, { ios: 1, copied: decided.copied, text: describeShape(io, len, this.#block) });
        else totals.otherShapeIos++;
      }
      for (const [k, kernel] of totals.kernels.entries()) {
        if (decided.copied > 0 && verdict.takesDirect[k]) {
          kernel.needlessIos++;
          kernel.needlessBytes += decided.copied;
        }
        const refused = decided.refused[k];
        if (refused !== null && refused !== undefined) {
          kernel.refusedIos++;
          kernel.refusedExample ??= `${describeShape(io, len, this.#block)}: ${refused}`;
        }
      }
    }
  }

  /** The summary, with each rule set's top shapes. */
  finish(): ReplaySummary {
    this.summary.shapes = this.#distinct;
    for (const [r, totals] of this.#totals.entries()) {
      totals.topShapes = [...this.#shapes[r]!.values()]
        .sort((a, b) => b.ios - a.ios || b.copied - a.copied)
        .slice(0, TOP_SHAPES)
        .map((row) => ({ shape: row.text, ios: row.ios, copiedBytes: row.copied }));
    }
    return this.summary;
  }

  #decide(io: TraceIo): Verdict {
    const segments = segmentsOf(io);
    const input = { op: io.op, at: io.offset, segments, alignment: this.#alignment };
    const direct = kernelCalls(plan({ ...input, mode: "direct" }));
    const judge = (calls: ReturnType<typeof kernelCalls>, kernel: ReplayKernel) => kernelProblem(calls, this.#alignment, io.op, kernel.checks, kernel.memoryIsBlock);
    return {
      takesDirect: this.#kernels.map((kernel) => judge(direct, kernel) === null),
      rules: this.#rules.map((rules) => {
        const decided = plan({ ...input, mode: "auto", rules });
        const calls = kernelCalls(decided);
        return { decision: decided.decision, copied: decided.copiedBytes, refused: this.#kernels.map((kernel) => judge(calls, kernel)) };
      }),
    };
  }
}
