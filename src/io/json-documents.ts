/**
 * The JSON documents of `plan` and `io` (SPEC.md fields, plus extras), built from plain data so
 * that the command line and library users print the same thing.
 */
import type { DiskAlignment } from "../base/alignment-rules";
import type { IoResult } from "./executor";
import type { Plan } from "./planner";

export interface AlignmentJson {
  mem: number;
  offset: number;
  readOffset: number;
  source: DiskAlignment["source"];
}

export function alignmentJson(alignment: DiskAlignment): AlignmentJson {
  return { mem: alignment.memAlign, offset: alignment.offsetAlign, readOffset: alignment.readOffsetAlign, source: alignment.source };
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
    alignment: alignmentJson(alignment),
    calls: result.calls,
    diskBytes: result.diskBytes,
    bouncePages: plan.bouncePages,
    copiedBytes: result.copiedBytes,
    verified,
  };
}
