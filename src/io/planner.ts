/**
 * The planner: how one disk IO over a scatter-gather list of guest segments reaches the kernel.
 * Pure computation, no IO and no guest memory: `plan` is what `bounce-bench plan` prints and
 * what `executePlan` carries out.
 *
 * The IO moves the segments' bytes, concatenated in order (the *stream*), to or from disk bytes
 * `[at, at+len)`. The plan lays the disk range out as *parts*, in order:
 *
 *   disk:    |<- guest part ->|<---- bounce part ---->|<- guest part ->|
 *   stream:  | segment 0      | segment 1 | segment 2 | segment 3      |
 *
 * - a guest part passes a segment's own pages to the kernel (its iovecs, one per run of
 *   consecutive GPNs);
 * - a bounce part goes through a page-aligned bounce buffer, copied to or from the guest.
 *
 * Decision in mode `auto`, every condition named in `reasons`:
 * - disk offset and length must be multiples of the disk's block size (the offset alignment),
 *   else the whole IO is widened to whole blocks in one bounce part: reads copy out the slice,
 *   writes are read-modify-write (`rmw`) of the head and tail blocks;
 * - then the memory, by the rule set (`--rules`, see `base/alignment-rules`):
 *   - `kernel` (default) judges the iovecs the IO hands over: the guest bytes as runs of
 *     consecutive guest memory (pages with consecutive GPNs, and segments that touch, merged).
 *     Each run whose address or length breaks the rule is bounced, from where it starts to the
 *     next block boundary past its end at which the rest of the stream meets the rule again;
 *     the rest goes straight through. An IO whose iovecs all meet the rule is never bounced.
 *   - `seed` judges each segment as a whole against the larger of the memory and block
 *     alignments (`RequestBuffers.isAligned`); a bounced segment that ends inside a block takes
 *     the following segments along until a block boundary (and says so).
 *   Under `kernel`, the plan also carries what `seed` would have decided (`audit`), so that
 *   `plan` can say what the reference's rule copies needlessly.
 *   - `qemu`, `cloud-hypervisor`, `openvmm`: those VMMs' policies (`base/vmm-policies`): each
 *     descriptor's iovecs against the VMM's own alignments, the whole request copied when one
 *     misses them, the disk range padded to the VMM's request alignment. A policy may send what
 *     the kernel refuses; the plan is what that VMM would do.
 * - more than `IOV_MAX` iovecs are split into several calls (`split`), cut at iovec boundaries,
 *   which are all block multiples.
 * Modes `direct` (the segments' iovecs as they are, whatever the kernel will say), `bounce`
 * (always copy) and `buffered` (no O_DIRECT) exist for comparison.
 */
import { blockSize, iovecProblem, isPowerOfTwo, memoryAlignmentReasons, requestAlignment, RULE_SETS, type DiskAlignment, type RuleSet } from "../base/alignment-rules";
import { IOV_MAX, PAGE_SIZE } from "../base/constants";
import { isVmmPolicy, policyAlignment, type PolicyAlignment } from "../base/vmm-policies";
import { InvalidInputError } from "../base/errors";
import { PagedRange } from "../memory/paged-range";

export type IoOp = "read" | "write";
export type IoMode = "auto" | "direct" | "bounce" | "buffered";
export type Decision = "direct" | "bounce" | "rmw" | "split" | "buffered";

export const IO_OPS: readonly IoOp[] = ["read", "write"];
export const IO_MODES: readonly IoMode[] = ["auto", "direct", "bounce", "buffered"];

/** Stream bytes `[stream, stream+len)`, of segments `[first, last]`, passed straight to the kernel. */
export interface GuestPart {
  kind: "guest";
  first: number;
  last: number;
  /** Stream (and disk, from `at`) offset of the part. */
  stream: number;
  len: number;
}

/**
 * Disk bytes `[diskStart, diskStart+len)` through the bounce buffer at `bufferOffset`
 * (a multiple of the page size and of the request alignment). Stream bytes `[stream, stream+copyLen)` (segments `first..last`) are copied
 * to or from buffer offset `bufferOffset + (at + stream - diskStart)`; the rest of the part
 * (the head and tail padding of a widened IO) comes from the disk.
 */
export interface BouncePart {
  kind: "bounce";
  first: number;
  last: number;
  diskStart: number;
  len: number;
  bufferOffset: number;
  stream: number;
  copyLen: number;
}

export type Part = GuestPart | BouncePart;

/** One vectored system call: the plan's iovecs `[firstIovec, firstIovec+iovecs)` at `diskOffset`. */
export interface Call {
  diskOffset: number;
  bytes: number;
  firstIovec: number;
  iovecs: number;
}

export interface PlanSegment {
  offset: number;
  len: number;
  gpns: number[];
}

/** An iovec of the plan: guest physical bytes, or bytes of the bounce buffer. */
export type PlannedIovec = { kind: "guest"; gpa: number; len: number } | { kind: "bounce"; bufferOffset: number; len: number };

export interface Plan {
  op: IoOp;
  mode: IoMode;
  /** The rule set the memory was judged by. */
  rules: RuleSet;
  at: number;
  len: number;
  /** The alignment iovec addresses were checked against (the seed rule: also segment lengths). */
  alignment: number;
  /** The disk offset and length granularity. */
  blockSize: number;
  /** Memory and disk range both aligned: auto would pass the buffers straight through. */
  aligned: boolean;
  decision: Decision;
  reasons: string[];
  segments: PlanSegment[];
  /** The segments' own iovecs, consecutive GPNs merged (what `direct` would submit). */
  guestIovecs: { gpa: number; len: number }[];
  /** Disk bytes actually transferred: `[diskStart, diskEnd)` (wider than the IO for rmw). */
  diskStart: number;
  diskEnd: number;
  parts: Part[];
  /** The iovecs of the calls, in order. */
  iovecs: PlannedIovec[];
  calls: Call[];
  /** Size of the bounce buffer (0 when nothing is bounced), and its pages. */
  bounceBytes: number;
  bouncePages: number;
  /** Guest bytes copied through the bounce buffer. */
  copiedBytes: number;
  /** Under `kernel` in mode auto: what the `seed` rule would have decided and copied here. */
  audit: { rules: "seed"; decision: Decision; copiedBytes: number } | null;
}

export interface PlanInput {
  op: IoOp;
  mode: IoMode;
  at: number;
  segments: readonly PagedRange[];
  alignment: DiskAlignment;
  /** The rule set that judges the memory; `kernel` by default. */
  rules?: RuleSet;
  /** Iovecs per call; `IOV_MAX` unless a test says otherwise. */
  iovMax?: number;
}

/** Plans `plan` made, so that only those are executed (see `isPlannerPlan`). */
const PLANNED = new WeakSet<Plan>();

/**
 * Whether `value` is a plan this module made and nobody changed: plans are frozen, so a changed
 * copy (`{ ...plan, at }`) is a new object the executor refuses rather than trusts.
 */
export function isPlannerPlan(value: unknown): value is Plan {
  return typeof value === "object" && value !== null && PLANNED.has(value as Plan);
}

export function plan(input: PlanInput): Plan {
  const result = makePlan(input);
  deepFreeze(result);
  PLANNED.add(result);
  return result;
}

function deepFreeze(value: object): void {
  for (const child of Object.values(value)) if (typeof child === "object" && child !== null && !Object.isFrozen(child)) deepFreeze(child);
  Object.freeze(value);
}

function makePlan(input: PlanInput): Plan {
  if (typeof input !== "object" || input === null) throw new InvalidInputError("plan: the input is not an object");
  const { op, mode, at } = input;
  if (!IO_OPS.includes(op)) throw new InvalidInputError(`plan: op ${JSON.stringify(op)} is not one of ${IO_OPS.join(", ")}`);
  if (!IO_MODES.includes(mode)) throw new InvalidInputError(`plan: mode ${JSON.stringify(mode)} is not one of ${IO_MODES.join(", ")}`);
  const rules = input.rules ?? "kernel";
  if (!RULE_SETS.includes(rules)) throw new InvalidInputError(`plan: rules ${JSON.stringify(rules)} is not one of ${RULE_SETS.join(", ")}`);
  const iovMax = input.iovMax ?? IOV_MAX;
  if (!(Number.isInteger(iovMax) && iovMax >= 1 && iovMax <= IOV_MAX)) throw new InvalidInputError(`plan: iovMax ${iovMax} is not in 1 .. ${IOV_MAX}`);
  if (!Array.isArray(input.segments) || !input.segments.every((segment) => segment instanceof PagedRange)) {
    throw new InvalidInputError("plan: segments must be a list of PagedRange");
  }
  // Each segment read once: a caller's range whose list or getters change between reads cannot
  // make the plan loop, or disagree with itself.
  const segments = input.segments.map((segment) => PagedRange.snapshot(segment));
  checkDiskAlignment(input.alignment);
  if (segments.length === 0) throw new InvalidInputError("an IO needs at least one segment");
  if (!(Number.isSafeInteger(at) && at >= 0)) throw new InvalidInputError(`disk offset ${at} is not a non-negative whole number of bytes`);
  // A VMM's policy holds the IO to its own alignments, which may be laxer than the disk's.
  const policy = isVmmPolicy(rules) ? policyAlignment(rules, input.alignment, op) : null;
  const block = policy?.request ?? blockSize(input.alignment, op);
  const alignment = rules === "seed" ? requestAlignment(input.alignment, op) : (policy?.memAlign ?? Math.max(1, input.alignment.memAlign));
  const len = segments.reduce((sum, segment) => sum + segment.len, 0);
  if (len === 0) throw new InvalidInputError("the IO is empty: its segments hold 0 bytes");

  const runs = streamRuns(segments);
  // Seed: one verdict per segment. Kernel: one per run of consecutive guest memory (an iovec).
  const segmentReasons =
    rules === "seed" ? segments.map((segment) => (segment.len === 0 ? [] : memoryAlignmentReasons(segment.offset, segment.len, alignment))) : [];
  const memoryReasons =
    rules === "seed"
      ? segmentReasons.flatMap((reasons, i) => reasons.map((reason) => (segments.length === 1 ? reason : `segment ${i}: ${reason}`)))
      : policy !== null
        ? policyReasons(segments, policy)
        : runs.flatMap((run, i) => {
          const problem = iovecProblem(run.gpa, run.len, input.alignment, op);
          return problem === null ? [] : [runs.length === 1 ? `iovec: ${problem}` : `iovec ${i}: ${problem}`];
        });
  const diskReasons: string[] = [];
  if (at % block !== 0) diskReasons.push(`disk offset ${at} is not a multiple of the ${block}-byte block`);
  if (len % block !== 0) diskReasons.push(`IO length ${len} is not a multiple of the ${block}-byte block`);
  const diskAligned = diskReasons.length === 0;

  const parts: Part[] = [];
  const reasons: string[] = [];
  let decision: Decision;
  const widen = !diskAligned && (mode === "auto" || mode === "bounce");
  const diskStart = widen ? Math.floor(at / block) * block : at;
  const diskEnd = widen ? Math.ceil((at + len) / block) * block : at + len;

  if (mode === "direct" || mode === "buffered") {
    parts.push({ kind: "guest", first: 0, last: segments.length - 1, stream: 0, len });
    decision = mode;
    if (mode === "direct") reasons.push(...diskReasons, ...memoryReasons);
  } else if (mode === "bounce" || !diskAligned) {
    parts.push(bouncePart(0, segments.length - 1, 0, len, diskStart, diskEnd - diskStart, 0));
    decision = !diskAligned && op === "write" ? "rmw" : "bounce";
    if (mode === "bounce") reasons.push("forced by --mode bounce");
    reasons.push(...diskReasons, ...memoryReasons);
    if (decision === "rmw") reasons.push(describeRmw(at, len, diskStart, diskEnd, block));
    else if (!diskAligned) reasons.push(`read widened to ${diskStart}..${diskEnd}; the slice is copied out`);
  } else {
    reasons.push(...memoryReasons);
    const bufferAlign = Math.max(PAGE_SIZE, alignment);
    if (rules === "seed") layOutSeed(segments, segmentReasons, block, bufferAlign, at, parts, reasons);
    else if (memoryReasons.length === 0) parts.push({ kind: "guest", first: 0, last: segments.length - 1, stream: 0, len });
    else if (policy !== null) {
      parts.push(bouncePart(0, segments.length - 1, 0, len, at, len, 0));
      reasons.push(`${rules} copies the whole request when any of it misses its alignment (${policy.from})`);
    }
    else layOutKernel(segments, runs, input.alignment, block, bufferAlign, at, parts);
    decision = parts.some((part) => part.kind === "bounce") ? "bounce" : "direct";
  }

  const iovecs = plannedIovecs(parts, runs);
  const calls = splitCalls(iovecs, diskStart, mode === "direct" ? Number.POSITIVE_INFINITY : iovMax);
  if (calls.length > 1) {
    reasons.push(`${iovecs.length} iovecs exceed IOV_MAX (${iovMax}): split into ${calls.length} calls`);
    if (decision === "direct") decision = "split";
  } else if (mode === "direct" && iovecs.length > iovMax) {
    reasons.push(`${iovecs.length} iovecs exceed IOV_MAX (${iovMax})`);
  }

  const bounceParts = parts.filter((part): part is BouncePart => part.kind === "bounce");
  const last = bounceParts[bounceParts.length - 1];
  const bounceBytes = last === undefined ? 0 : last.bufferOffset + last.len;
  const copiedBytes = bounceParts.reduce((sum, part) => sum + part.copyLen, 0);
  let audit: Plan["audit"] = null;
  if (rules === "kernel" && mode === "auto") {
    const seed = makePlan({ ...input, segments, rules: "seed" });
    audit = { rules: "seed", decision: seed.decision, copiedBytes: seed.copiedBytes };
    if (seed.copiedBytes > copiedBytes) {
      reasons.push(`the seed rule (--rules seed) would have copied ${seed.copiedBytes} bytes here (${seed.copiedBytes - copiedBytes} more, which the kernel takes directly)`);
    }
  }
  return {
    op,
    mode,
    rules,
    at,
    len,
    alignment,
    blockSize: block,
    aligned: diskAligned && memoryReasons.length === 0,
    decision,
    reasons,
    segments: segments.map((segment) => ({ offset: segment.offset, len: segment.len, gpns: segment.gpns() })),
    guestIovecs: runs.map((run) => ({ gpa: run.gpa, len: run.len })),
    diskStart,
    diskEnd,
    parts,
    iovecs,
    calls,
    bounceBytes,
    bouncePages: Math.ceil(bounceBytes / PAGE_SIZE),
    copiedBytes,
    audit,
  };
}

/** A disk alignment the planner can work with: powers of two (0 only where direct IO is off). */
function checkDiskAlignment(alignment: DiskAlignment): void {
  if (typeof alignment !== "object" || alignment === null) throw new InvalidInputError("plan: alignment is not an object");
  for (const key of ["memAlign", "offsetAlign", "readOffsetAlign"] as const) {
    const value = alignment[key];
    if (!(value === 0 || isPowerOfTwo(value))) throw new InvalidInputError(`plan: alignment.${key} ${value} is not a power of two`);
  }
}

function bouncePart(first: number, last: number, stream: number, copyLen: number, diskStart: number, len: number, bufferOffset: number): BouncePart {
  return { kind: "bounce", first, last, diskStart, len, bufferOffset, stream, copyLen };
}

function describeRmw(at: number, len: number, diskStart: number, diskEnd: number, block: number): string {
  const edges: string[] = [];
  if (at !== diskStart) edges.push(`head block ${diskStart}..${diskStart + block}`);
  if (at + len !== diskEnd && !(edges.length > 0 && diskEnd - diskStart === block)) {
    edges.push(`tail block ${diskEnd - block}..${diskEnd}`);
  }
  return `read-modify-write: ${edges.join(" and ")} read first, then ${diskStart}..${diskEnd} written whole`;
}

/**
 * Why a VMM's policy copies the request: each segment's iovecs (one per run of consecutive
 * pages: a VMM does not join descriptors) against its memory alignment and length unit, or,
 * for OpenVMM, each segment as one range.
 */
function policyReasons(segments: readonly PagedRange[], policy: PolicyAlignment): string[] {
  const name = (i: number) => (segments.length === 1 ? "" : `segment ${i}: `);
  if (policy.perSegment) return segments.flatMap((segment, i) => memoryAlignmentReasons(segment.offset, segment.len, policy.memAlign).map((reason) => `${name(i)}${reason}`));
  return segments.flatMap((segment, i) =>
    segment.runs().flatMap((run, j) => {
      const where = `${name(i)}iovec ${j}`;
      const gpa = run.gpn * PAGE_SIZE + run.offset;
      if (policy.memAlign > PAGE_SIZE) return [`${where}: the memory alignment ${policy.memAlign} exceeds the page size ${PAGE_SIZE}`];
      if (gpa % policy.memAlign !== 0) return [`${where}: address 0x${gpa.toString(16)} is not a multiple of ${policy.memAlign}`];
      if (run.len % policy.lengthUnit !== 0) return [`${where}: length ${run.len} is not a multiple of ${policy.lengthUnit}`];
      return [];
    }),
  );
}

/** A run of consecutive guest memory in the stream: what one guest iovec carries (unless cut by parts). */
interface StreamRun {
  gpa: number;
  len: number;
  /** Offset of the run's first byte in the stream. */
  stream: number;
}

/** The stream's runs of consecutive guest memory, in order (consecutive GPNs, and segments that touch, merged). */
function streamRuns(segments: readonly PagedRange[]): StreamRun[] {
  const runs: StreamRun[] = [];
  let stream = 0;
  for (const segment of segments) {
    for (const run of segment.runs()) {
      const gpa = run.gpn * PAGE_SIZE + run.offset;
      const previous = runs[runs.length - 1];
      if (previous !== undefined && previous.gpa + previous.len === gpa) previous.len += run.len;
      else runs.push({ gpa, len: run.len, stream });
      stream += run.len;
    }
  }
  return runs;
}

/**
 * The segments `[first, last]` that stream bytes `[start, end)` belong to, for ranges asked in
 * stream order: a cursor that only moves forward, so a layout of many parts stays linear.
 */
function segmentCursor(segments: readonly PagedRange[]): (start: number, end: number) => { first: number; last: number } {
  let index = 0;
  let segmentStart = 0;
  return (start, end) => {
    while (index < segments.length - 1 && segmentStart + segments[index]!.len <= start) segmentStart += segments[index++]!.len;
    const first = index;
    let last = index;
    let lastStart = segmentStart;
    while (last < segments.length - 1 && lastStart + segments[last]!.len < end) lastStart += segments[last++]!.len;
    return { first, last };
  };
}

/**
 * Auto mode under the kernel's rule with a block-aligned disk range, block by block of the
 * stream. Every iovec must hold whole blocks, so iovecs (and parts) begin and end on block
 * boundaries of the stream; within a guest part, the iovecs are the runs cut to it. A block
 * can therefore go straight through when no run ends inside it and its address meets the memory
 * alignment, and then so can the run's following whole blocks, in the same iovec. Deciding left
 * to right this way bounces the fewest blocks (checked against an exhaustive reference model in
 * the tests); consecutive bounced blocks become one bounce part.
 */
function layOutKernel(
  segments: readonly PagedRange[],
  runs: readonly StreamRun[],
  alignment: DiskAlignment,
  block: number,
  bufferAlign: number,
  at: number,
  parts: Part[],
): void {
  const memAlign = Math.max(1, alignment.memAlign);
  // Guest memory is only page-aligned in the host: a larger alignment can never be promised.
  const addressable = memAlign <= PAGE_SIZE;
  const total = runs[runs.length - 1]!.stream + runs[runs.length - 1]!.len;
  let bufferOffset = 0;
  const segmentsOf = segmentCursor(segments);
  const push = (guest: boolean, start: number, end: number): void => {
    const previous = parts[parts.length - 1];
    if (previous !== undefined && (previous.kind === "guest") === guest) {
      previous.last = segmentsOf(start, end).last;
      previous.len += end - start;
      if (previous.kind === "bounce") previous.copyLen += end - start;
      return;
    }
    if (previous?.kind === "bounce") bufferOffset += Math.ceil(previous.len / bufferAlign) * bufferAlign; // each part starts aligned in the bounce buffer
    const { first, last } = segmentsOf(start, end);
    parts.push(guest ? { kind: "guest", first, last, stream: start, len: end - start } : bouncePart(first, last, start, end - start, at + start, end - start, bufferOffset));
  };
  let r = 0;
  for (let start = 0; start < total; ) {
    while (runs[r]!.stream + runs[r]!.len <= start) r++;
    const run = runs[r]!;
    const runEnd = run.stream + run.len;
    const whole = runEnd >= start + block; // no run ends inside this block
    const lastWhole = Math.max(start + block, Math.floor(runEnd / block) * block);
    if (whole && addressable && (run.gpa + (start - run.stream)) % memAlign === 0) {
      push(true, start, lastWhole); // one iovec: the run's whole blocks from here
      start = lastWhole;
    } else {
      // A misaligned address stays misaligned block after block when blocks are multiples of
      // the memory alignment: the run's whole blocks bounce together; otherwise one at a time.
      const end = whole && (!addressable || block % memAlign === 0) ? lastWhole : start + block;
      push(false, start, end);
      start = end;
    }
  }
}

/**
 * Auto mode under the seed rule with a block-aligned disk range: aligned segments go straight
 * through; runs of unaligned segments are bounced together, extended over following segments
 * until the part ends on a block boundary.
 */
function layOutSeed(
  segments: readonly PagedRange[],
  segmentReasons: string[][],
  block: number,
  bufferAlign: number,
  at: number,
  parts: Part[],
  reasons: string[],
): void {
  let stream = 0;
  let bufferOffset = 0;
  let i = 0;
  while (i < segments.length) {
    if (segmentReasons[i]!.length === 0) {
      const lastPart = parts[parts.length - 1];
      if (lastPart?.kind === "guest") {
        lastPart.last = i;
        lastPart.len += segments[i]!.len;
      } else {
        parts.push({ kind: "guest", first: i, last: i, stream, len: segments[i]!.len });
      }
      stream += segments[i]!.len;
      i++;
      continue;
    }
    const first = i;
    const start = stream;
    do {
      if (i > first && segmentReasons[i]!.length === 0) {
        reasons.push(`segment ${i} is bounced too: the bounced bytes before it end inside a ${block}-byte block`);
      }
      stream += segments[i]!.len;
      i++;
    } while (i < segments.length && (stream % block !== 0 || segmentReasons[i]!.length > 0));
    const len = stream - start;
    parts.push(bouncePart(first, i - 1, start, len, at + start, len, bufferOffset));
    bufferOffset += Math.ceil(len / bufferAlign) * bufferAlign; // each part starts aligned in the bounce buffer
  }
}

/** The iovecs of the parts, in order: the stream's runs cut to each guest part, and bounce slices. */
function plannedIovecs(parts: readonly Part[], runs: readonly StreamRun[]): PlannedIovec[] {
  const iovecs: PlannedIovec[] = [];
  let r = 0;
  for (const part of parts) {
    if (part.kind === "bounce") {
      iovecs.push({ kind: "bounce", bufferOffset: part.bufferOffset, len: part.len });
      continue;
    }
    const end = part.stream + part.len;
    while (runs[r]!.stream + runs[r]!.len <= part.stream) r++;
    for (let i = r; i < runs.length && runs[i]!.stream < end; i++) {
      const run = runs[i]!;
      const from = Math.max(part.stream, run.stream);
      const to = Math.min(end, run.stream + run.len);
      iovecs.push({ kind: "guest", gpa: run.gpa + (from - run.stream), len: to - from });
    }
  }
  return iovecs;
}

/** Cuts the iovecs into calls of at most `iovMax` each. */
function splitCalls(iovecs: readonly PlannedIovec[], diskStart: number, iovMax: number): Call[] {
  const calls: Call[] = [];
  let diskOffset = diskStart;
  for (let first = 0; first < iovecs.length; first += iovMax) {
    const count = Math.min(iovMax, iovecs.length - first);
    let bytes = 0;
    for (let i = first; i < first + count; i++) bytes += iovecs[i]!.len;
    calls.push({ diskOffset, bytes, firstIovec: first, iovecs: count });
    diskOffset += bytes;
  }
  return calls;
}
