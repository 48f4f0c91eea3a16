/**
 * The trace format: what a VMM (or any program) handed the kernel as direct IO, one IO a line.
 *
 *   {"type":"header", ...}      first line: who wrote it, on what kernel and host, the disk's
 *                               alignment as probed, what was and was not captured
 *   {"type":"io", ...}          one per IO: start and end (ns from the capture's start), op,
 *                               disk offset, iovecs [address, length] as captured, result
 *   {"type":"end", ...}         last line: totals, and what was seen but not captured
 *
 * JSON Lines, documented in docs/trace.md with a JSON Schema (schema/trace.schema.json), so
 * that other tools can write it. IO lines come in the order the IOs completed. Addresses stay
 * as captured: what decides alignment is each address modulo the page and the memory
 * alignment, and which iovecs touch in memory, and replay keeps exactly that.
 *
 * `readTrace` streams a file of any length in bounded memory, checking every line: a trace is
 * input like any other, and a malformed line is a one-line error naming it.
 */
import { closeSync, readSync } from "node:fs";
import { IOV_MAX } from "../base/constants";
import { InvalidInputError } from "../base/errors";
import type { DiskAlignment } from "../base/alignment-rules";

export const TRACE_FORMAT = "bounce-bench-trace";
export const TRACE_VERSION = 1;

export interface TraceHeader {
  type: "header";
  format: typeof TRACE_FORMAT;
  version: number;
  /** The program that wrote it (`bounce-bench 0.1.0`, or another tool). */
  tool: string;
  /** When the capture started (ISO 8601). */
  started: string;
  kernel: { release: string; version: string } | null;
  host: { hostname: string; cpus: number } | null;
  /** The disk the IO went to and its alignment as probed, or null when not known. */
  disk: { path: string; alignment: DiskAlignment } | null;
  captured: {
    /** How (`bpftrace: syscall and io_uring tracepoints`, `fio iolog v2`, ...). */
    by: string;
    /** The calls whose IO is in the trace. */
    calls: string[];
    /** What is not in it, in words. */
    notCaptured: string[];
    /** Whose IO: the pids followed and the command run, when captured. */
    pids: number[];
    command: string[] | null;
  };
  /** For a trace made from another tool's log: the memory layout assumed, since that log has none. */
  synthetic: { from: string; memory: string } | null;
}

export interface TraceIo {
  type: "io";
  /** Start and completion, ns from the capture's start (end null: it had not completed). */
  t: number;
  end: number | null;
  op: "read" | "write";
  offset: number;
  /** [address, length] per iovec, as the caller handed them over. */
  iovecs: [number, number][];
  /** How many iovecs the call had when more than `iovecs` lists (the capture's limit). */
  iovecsTotal?: number;
  /** Bytes moved, or null with `error` (an errno name), or null when unknown. */
  result: number | null;
  error?: string;
  /** Who issued it, and with what call (`pwritev`, `io_uring READV`). */
  pid?: number;
  tid?: number;
  call?: string;
}

export interface TraceEnd {
  type: "end";
  ios: number;
  /** Things seen and not captured, by name, with counts (empty when nothing was missed). */
  missed: Record<string, number>;
  /** Most IOs in flight at once, as captured (the queue depth replay uses). */
  maxInFlight: number;
}

export type TraceLine = TraceHeader | TraceIo | TraceEnd;

/** The longest line read: an IO with IOV_MAX iovecs of large numbers is well under it. */
const MAX_LINE_BYTES = 1 << 20;
const CHUNK_BYTES = 1 << 20;

/** The lines of the file open at `fd`, one at a time, in bounded memory; the fd is closed at the end. */
function* lines(fd: number, what: string): Generator<string> {
  const chunk = Buffer.allocUnsafe(CHUNK_BYTES);
  let pending = "";
  const decoder = new TextDecoder("utf-8", { fatal: true });
  try {
    for (;;) {
      const got = readSync(fd, chunk, 0, CHUNK_BYTES, null);
      let text: string;
      try {
        text = decoder.decode(chunk.subarray(0, got), { stream: got > 0 });
      } catch {
        throw new InvalidInputError(`${what}: is not UTF-8 text`);
      }
      pending += text;
      let start = 0;
      for (let nl = pending.indexOf("\n"); nl >= 0; nl = pending.indexOf("\n", start)) {
        yield pending.slice(start, nl);
        start = nl + 1;
      }
      pending = pending.slice(start);
      if (pending.length > MAX_LINE_BYTES) throw new InvalidInputError(`${what}: a line longer than ${MAX_LINE_BYTES} bytes`);
      if (got === 0) break;
    }
    if (pending.length > 0) yield pending;
  } finally {
    closeSync(fd);
  }
}

/** The text lines of the file open at `fd` (closed when done), for converters of other formats. */
export function textLines(fd: number, what: string): Generator<string> {
  return lines(fd, what);
}

const isCount = (value: unknown): value is number => typeof value === "number" && Number.isSafeInteger(value) && value >= 0;

/** `value` checked as one IO line, or the reason it is not one. */
export function ioLineProblem(value: Record<string, unknown>): string | null {
  if (value.op !== "read" && value.op !== "write") return `op ${JSON.stringify(value.op)} is not "read" or "write"`;
  if (!isCount(value.t)) return "t is not a whole number of ns";
  if (value.end !== null && value.end !== undefined && !isCount(value.end)) return "end is not null or a whole number of ns";
  if (!isCount(value.offset)) return "offset is not a whole number of bytes";
  const iovecs = value.iovecs;
  if (!Array.isArray(iovecs) || iovecs.length === 0) return "iovecs is not a non-empty list";
  if (iovecs.length > IOV_MAX) return `${iovecs.length} iovecs, more than IOV_MAX (${IOV_MAX})`;
  for (const iovec of iovecs) {
    if (!Array.isArray(iovec) || iovec.length !== 2 || !isCount(iovec[0]) || !isCount(iovec[1])) return "an iovec is not [address, length] of whole numbers";
  }
  if (value.iovecsTotal !== undefined && (!isCount(value.iovecsTotal) || value.iovecsTotal <= iovecs.length)) return "iovecsTotal is not more than the iovecs listed";
  if (value.result !== null && !isCount(value.result)) return "result is not null or a whole number of bytes";
  if (value.error !== undefined && (typeof value.error !== "string" || !/^E[A-Z0-9_]{1,31}$/.test(value.error))) return "error is not an errno name";
  return null;
}

export interface TraceReader {
  header: TraceHeader;
  /** The IO lines, streamed; `end` is set once they are all read. */
  ios: Generator<TraceIo>;
  end(): TraceEnd | null;
}

/**
 * Reads the trace open at `fd` (the caller opened it as the user's file; it is closed when the
 * IOs are all read): the header at once, the IOs as they are iterated.
 */
export function readTrace(fd: number, what: string): TraceReader {
  const source = lines(fd, what);
  let number = 0;
  const next = (): string | null => {
    const step = source.next();
    if (step.done) return null;
    number++;
    return step.value;
  };
  const parse = (line: string): Record<string, unknown> => {
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      throw new InvalidInputError(`${what}: line ${number} is not JSON`);
    }
    if (typeof value !== "object" || value === null || Array.isArray(value)) throw new InvalidInputError(`${what}: line ${number} is not a JSON object`);
    return value as Record<string, unknown>;
  };
  const first = next();
  if (first === null) {
    source.return(undefined);
    throw new InvalidInputError(`${what}: is empty, not a trace`);
  }
  const header = parse(first);
  if (header.type !== "header" || header.format !== TRACE_FORMAT) {
    source.return(undefined);
    throw new InvalidInputError(`${what}: line 1 is not a ${TRACE_FORMAT} header (type "header", format "${TRACE_FORMAT}")`);
  }
  if (header.version !== TRACE_VERSION) {
    source.return(undefined);
    throw new InvalidInputError(`${what}: trace version ${JSON.stringify(header.version)}; this bounce-bench reads version ${TRACE_VERSION}`);
  }
  let end: TraceEnd | null = null;
  function* ios(): Generator<TraceIo> {
    try {
      for (let line = next(); line !== null; line = next()) {
        if (line.trim() === "") continue;
        if (end !== null) throw new InvalidInputError(`${what}: line ${number} follows the end line`);
        const value = parse(line);
        if (value.type === "end") {
          if (!isCount(value.ios) || !isCount(value.maxInFlight) || typeof value.missed !== "object" || value.missed === null) {
            throw new InvalidInputError(`${what}: line ${number}: the end line needs ios, maxInFlight and missed`);
          }
          end = value as unknown as TraceEnd;
          continue;
        }
        if (value.type !== "io") throw new InvalidInputError(`${what}: line ${number}: type ${JSON.stringify(value.type)} is not "io" or "end"`);
        const problem = ioLineProblem(value);
        if (problem !== null) throw new InvalidInputError(`${what}: line ${number}: ${problem}`);
        yield value as unknown as TraceIo;
      }
    } finally {
      source.return(undefined);
    }
  }
  return { header: header as unknown as TraceHeader, ios: ios(), end: () => end };
}

/** A header for a trace started now by `tool`: the format's fields, then `fields`. */
export function traceHeader(tool: string, fields: Omit<TraceHeader, "type" | "format" | "version" | "tool" | "started">): TraceHeader {
  return { type: "header", format: TRACE_FORMAT, version: TRACE_VERSION, tool, started: new Date().toISOString(), ...fields };
}

/** One line of the trace, as written. */
export function traceLine(line: TraceLine): string {
  return `${JSON.stringify(line)}\n`;
}
