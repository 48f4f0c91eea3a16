/**
 * The JSON documents of `plan` and `io` (SPEC.md fields, plus extras), built from plain data so
 * that the command line and library users print the same thing.
 */
import type { DiskAlignment } from "../base/alignment-rules";
import type { IoResult } from "./executor";
import type { Plan } from "./planner";

/**
 * A disk's alignment in every document, by the names `probe` uses: `memAlign`, `offsetAlign`,
 * `readOffsetAlign`, `source`. `mem`, `offset` and `readOffset` are the same values by the names
 * of schema 1, kept for one version.
 */
export interface AlignmentJson {
  memAlign: number;
  offsetAlign: number;
  readOffsetAlign: number;
  source: DiskAlignment["source"];
  /** @deprecated schema 1's name for `memAlign` */
  mem: number;
  /** @deprecated schema 1's name for `offsetAlign` */
  offset: number;
  /** @deprecated schema 1's name for `readOffsetAlign` */
  readOffset: number;
}

export function alignmentJson(alignment: DiskAlignment): AlignmentJson {
  const { memAlign, offsetAlign, readOffsetAlign, source } = alignment;
  return { memAlign, offsetAlign, readOffsetAlign, source, mem: memAlign, offset: offsetAlign, readOffset: readOffsetAlign };
}

/** The alignment an `AlignmentJson` of a disk that does direct IO describes (a bench document's, read back). */
export function alignmentFromJson(json: Pick<AlignmentJson, "memAlign" | "offsetAlign" | "readOffsetAlign" | "source">): DiskAlignment {
  return { directIo: true, memAlign: json.memAlign, offsetAlign: json.offsetAlign, readOffsetAlign: json.readOffsetAlign, source: json.source };
}

/** Which guest bytes went through the bounce buffer: stream offsets and the segments they belong to. */
export interface BouncedJson {
  segments: [number, number];
  streamOffset: number;
  len: number;
  diskStart: number;
  diskLen: number;
}

export function planJson(plan: Plan, disk: DiskAlignment) {
  return {
    op: plan.op,
    mode: plan.mode,
    rules: plan.rules,
    at: plan.at,
    len: plan.len,
    /** The memory alignment the plan checked iovecs against (the larger of memory and block under --rules seed). */
    checkedAlignment: plan.alignment,
    /** @deprecated schema 1's name for `checkedAlignment`, kept for one version */
    alignment: plan.alignment,
    blockSize: plan.blockSize,
    diskAlignment: alignmentJson(disk),
    aligned: plan.aligned,
    decision: plan.decision,
    reasons: plan.reasons,
    iovecs: plan.guestIovecs,
    bouncePages: plan.bouncePages,
    copiedBytes: plan.copiedBytes,
    audit: plan.audit,
    bounced: plan.parts.flatMap((part): BouncedJson[] =>
      part.kind === "bounce"
        ? [{ segments: [part.first, part.last], streamOffset: part.stream, len: part.copyLen, diskStart: part.diskStart, diskLen: part.len }]
        : [],
    ),
    calls: plan.calls.map((call) => ({ at: call.diskOffset, bytes: call.bytes, iovecs: call.iovecs })),
    segments: plan.segments,
  };
}

export function ioJson(plan: Plan, alignment: DiskAlignment, result: IoResult, verified: boolean) {
  return {
    op: plan.op,
    mode: plan.mode,
    rules: plan.rules,
    decision: plan.decision,
    reasons: plan.reasons,
    bytes: result.bytes,
    at: plan.at,
    elapsedNs: result.elapsedNs,
    diskAlignment: alignmentJson(alignment),
    /** @deprecated schema 1's name for `diskAlignment`, kept for one version */
    alignment: alignmentJson(alignment),
    /** System calls or io_uring submissions made (`calls` in schema 1, kept for one version; in plan, `calls` lists them). */
    callCount: result.calls,
    calls: result.calls,
    diskBytes: result.diskBytes,
    bouncePages: plan.bouncePages,
    copiedBytes: result.copiedBytes,
    verified,
  };
}
