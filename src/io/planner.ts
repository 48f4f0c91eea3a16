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
 * - each segment's buffers must meet the memory rule (`RequestBuffers.isAligned`) against the
 *   request alignment (the larger of the memory and block alignments), else that segment is
 *   bounced; a bounced segment that ends inside a block takes the following segments along
 *   until a block boundary (and says so), so only what must be copied is copied;
 * - more than `IOV_MAX` iovecs are split into several calls (`split`), cut at iovec boundaries,
 *   which are all block multiples.
 * Modes `direct` (the segments' iovecs as they are, whatever the kernel will say), `bounce`
 * (always copy) and `buffered` (no O_DIRECT) exist for comparison.
 */
import { blockSize, isPowerOfTwo, memoryAlignmentReasons, requestAlignment, type DiskAlignment } from "../base/alignment-rules";
import { IOV_MAX, PAGE_SIZE } from "../base/constants";
import { InvalidInputError } from "../base/errors";
import { PagedRange } from "../memory/paged-range";

export type IoOp = "read" | "write";
export type IoMode = "auto" | "direct" | "bounce" | "buffered";
export type Decision = "direct" | "bounce" | "rmw" | "split" | "buffered";

export const IO_OPS: readonly IoOp[] = ["read", "write"];
export const IO_MODES: readonly IoMode[] = ["auto", "direct", "bounce", "buffered"];

/** Segments `[first, last]` passed straight to the kernel. */
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
  at: number;
  len: number;
  /** The alignment the memory rule was checked against. */
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
}

export interface PlanInput {
  op: IoOp;
  mode: IoMode;
  at: number;
  segments: readonly PagedRange[];
  alignment: DiskAlignment;
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
  const { op, mode, at, segments } = input;
  if (!IO_OPS.includes(op)) throw new InvalidInputError(`plan: op ${JSON.stringify(op)} is not one of ${IO_OPS.join(", ")}`);
  if (!IO_MODES.includes(mode)) throw new InvalidInputError(`plan: mode ${JSON.stringify(mode)} is not one of ${IO_MODES.join(", ")}`);
  const iovMax = input.iovMax ?? IOV_MAX;
  if (!(Number.isInteger(iovMax) && iovMax >= 1 && iovMax <= IOV_MAX)) throw new InvalidInputError(`plan: iovMax ${iovMax} is not in 1 .. ${IOV_MAX}`);
  if (!Array.isArray(segments) || !segments.every((segment) => segment instanceof PagedRange)) {
    throw new InvalidInputError("plan: segments must be a list of PagedRange");
  }
  checkDiskAlignment(input.alignment);
  if (segments.length === 0) throw new InvalidInputError("an IO needs at least one segment");
  if (!(Number.isSafeInteger(at) && at >= 0)) throw new InvalidInputError(`disk offset ${at} is not a non-negative whole number of bytes`);
  const alignment = requestAlignment(input.alignment, op);
  const block = blockSize(input.alignment, op);
  const len = segments.reduce((sum, segment) => sum + segment.len, 0);
  if (len === 0) throw new InvalidInputError("the IO is empty: its segments hold 0 bytes");

  const segmentReasons = segments.map((segment) =>
    segment.len === 0 ? [] : memoryAlignmentReasons(segment.offset, segment.len, alignment),
  );
  const memoryReasons = segmentReasons.flatMap((reasons, i) =>
    reasons.map((reason) => (segments.length === 1 ? reason : `segment ${i}: ${reason}`)),
  );
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
    layOutAuto(segments, segmentReasons, block, Math.max(PAGE_SIZE, alignment), at, parts, reasons);
    decision = parts.some((part) => part.kind === "bounce") ? "bounce" : "direct";
  }

  const iovecs = plannedIovecs(parts, segments);
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
  return {
    op,
    mode,
    at,
    len,
    alignment,
    blockSize: block,
    aligned: diskAligned && memoryReasons.length === 0,
    decision,
    reasons,
    segments: segments.map((segment) => ({ offset: segment.offset, len: segment.len, gpns: segment.gpns() })),
    guestIovecs: mergedGuestIovecs(segments),
    diskStart,
    diskEnd,
    parts,
    iovecs,
    calls,
    bounceBytes,
    bouncePages: Math.ceil(bounceBytes / PAGE_SIZE),
    copiedBytes: bounceParts.reduce((sum, part) => sum + part.copyLen, 0),
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
 * Auto mode with a block-aligned disk range: aligned segments go straight through; runs of
 * unaligned segments are bounced together, extended over following segments until the part
 * ends on a block boundary.
 */
function layOutAuto(
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

/** The iovecs of the parts, in order: guest runs (merged across segments) and bounce slices. */
function plannedIovecs(parts: readonly Part[], segments: readonly PagedRange[]): PlannedIovec[] {
  const iovecs: PlannedIovec[] = [];
  for (const part of parts) {
    if (part.kind === "bounce") {
      iovecs.push({ kind: "bounce", bufferOffset: part.bufferOffset, len: part.len });
      continue;
    }
    let previous: { kind: "guest"; gpa: number; len: number } | undefined;
    for (let s = part.first; s <= part.last; s++) {
      for (const run of segments[s]!.runs()) {
        const gpa = run.gpn * PAGE_SIZE + run.offset;
        if (previous !== undefined && previous.gpa + previous.len === gpa) previous.len += run.len;
        else iovecs.push((previous = { kind: "guest", gpa, len: run.len }));
      }
    }
  }
  return iovecs;
}

function mergedGuestIovecs(segments: readonly PagedRange[]): { gpa: number; len: number }[] {
  const all = plannedIovecs([{ kind: "guest", first: 0, last: segments.length - 1, stream: 0, len: 0 }], segments);
  return all.map((iovec) => ({ gpa: (iovec as { gpa: number }).gpa, len: iovec.len }));
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
