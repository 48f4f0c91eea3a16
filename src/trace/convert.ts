/**
 * `trace convert`: traces from the logs users already have. fio's iolog (`write_iolog`, v2 and
 * v3) and blkparse's default text record disk offsets and lengths but no buffer addresses, so the
 * trace is synthetic: each IO is one iovec at `memOffset` bytes into a page, and the header says
 * so (`synthetic`). Times are kept where the log has them (iolog v3 in ms, blkparse in s).
 *
 *   fio version 2 iolog            then lines  FILE add|open|close  and  FILE read|write OFFSET LENGTH
 *   fio version 3 iolog            the same, each line led by a time in ms
 *   blkparse                       "8,0  3  1  0.000000000  697  Q  WS 223490 + 8 [comm]": the Q
 *                                  (queued) events of reads and writes, sectors of 512 bytes
 *
 * Other actions (sync, trim, wait; blkparse's other events) are counted as skipped. A line that
 * is neither is a one-line error naming it.
 */
import { InvalidInputError } from "../base/errors";
import { PAGE_SIZE } from "../base/constants";
import { NewTextFile, openUserFile } from "../host/files";
import { O_NONBLOCK, O_RDONLY, statx } from "../native";
import { textLines, traceHeader, traceLine, type TraceIo } from "./trace-format";

export const CONVERTIBLE_FORMATS = ["fio-iolog", "blkparse"] as const;
export type ConvertibleFormat = (typeof CONVERTIBLE_FORMATS)[number];

/** Where synthetic buffers sit: a page-aligned user address, as an allocator would give. */
const SYNTHETIC_BASE = 0x7f00_0000_0000;

export interface ConvertOptions {
  input: string;
  from: ConvertibleFormat;
  output: string;
  force: boolean;
  memOffset: number;
  tool: string;
}

export function convert(options: ConvertOptions): { ios: number; skipped: number; memory: string } {
  if (options.memOffset >= PAGE_SIZE) throw new InvalidInputError(`--mem-offset ${options.memOffset}: must be less than the page size (${PAGE_SIZE})`);
  const fd = openUserFile(options.input, O_RDONLY | O_NONBLOCK, "input");
  const status = statx(fd);
  if (status.type !== "file") throw new InvalidInputError(`input ${options.input}: is a ${status.type}, not a regular file`);
  const memory = `each IO one iovec at ${options.memOffset} bytes into a page (the log has no buffer addresses)`;
  const lines = textLines(fd, `input ${options.input}`);
  const file = NewTextFile.create(options.output, { force: options.force }, "--output");
  let ios = 0;
  let skipped = 0;
  try {
    const parse = options.from === "fio-iolog" ? fioIolog(lines, options.input) : blkparse(lines, options.input);
    const header = traceHeader(options.tool, {
      kernel: null,
      host: null,
      disk: null,
      captured: {
        by: options.from === "fio-iolog" ? "fio iolog (write_iolog)" : "blkparse text (Q events)",
        calls: [],
        notCaptured: ["buffer addresses: the log has none (see synthetic)", "results: the log has none"],
        pids: [],
        command: null,
      },
      synthetic: { from: options.from, memory },
    });
    file.write(traceLine(header));
    for (const entry of parse) {
      if (entry === null) {
        skipped++;
        continue;
      }
      const io: TraceIo = { type: "io", t: entry.t, end: null, op: entry.op, offset: entry.offset, iovecs: [[SYNTHETIC_BASE + options.memOffset, entry.len]], result: null };
      file.write(traceLine(io));
      ios++;
    }
    file.write(traceLine({ type: "end", ios, missed: {}, maxInFlight: 1 }));
    file.finish();
  } catch (error) {
    file.abort();
    lines.return(undefined);
    throw error;
  }
  return { ios, skipped, memory };
}

interface Entry {
  t: number;
  op: "read" | "write";
  offset: number;
  len: number;
}

const whole = (text: string | undefined): number | null => (text !== undefined && /^\d+$/.test(text) && Number.isSafeInteger(Number(text)) ? Number(text) : null);

function* fioIolog(lines: Generator<string>, name: string): Generator<Entry | null> {
  const first = lines.next();
  const version = first.done ? null : /^fio version ([23]) iolog$/.exec(first.value.trim())?.[1];
  if (version === undefined || version === null) throw new InvalidInputError(`input ${name}: line 1 is not "fio version 2 iolog" or "fio version 3 iolog"`);
  let number = 1;
  let index = 0;
  for (const line of lines) {
    number++;
    const fields = line.trim().split(/\s+/);
    if (fields.length === 1 && fields[0] === "") continue;
    let t = index;
    if (version === "3") {
      const ms = whole(fields.shift());
      if (ms === null) throw new InvalidInputError(`input ${name}: line ${number}: a v3 iolog line starts with a time in ms`);
      t = ms * 1e6;
    }
    // FILE ACTION [OFFSET LENGTH]; a file name with spaces is not something fio writes.
    const [, action, offsetText, lenText] = fields;
    if (action === "read" || action === "write") {
      const offset = whole(offsetText);
      const len = whole(lenText);
      if (offset === null || len === null || len === 0) throw new InvalidInputError(`input ${name}: line ${number}: ${action} needs a whole offset and a positive length`);
      index++;
      yield { t, op: action, offset, len };
    } else if (action !== undefined && /^(add|open|close|sync|datasync|trim|wait)$/.test(action)) {
      yield null;
    } else {
      throw new InvalidInputError(`input ${name}: line ${number} is not a fio iolog line (FILE add|open|close|read|write|sync|trim ...)`);
    }
  }
}

const BLKPARSE_LINE = /^\s*\d+,\d+\s+\d+\s+\d+\s+(\d+\.\d+)\s+\d+\s+([A-Z]{1,2})\s+([A-Z]+)\s+(?:(\d+) \+ (\d+))?/;

function* blkparse(lines: Generator<string>, name: string): Generator<Entry | null> {
  let number = 0;
  for (const line of lines) {
    number++;
    if (line.trim() === "") continue;
    const match = BLKPARSE_LINE.exec(line);
    if (match === null) {
      // blkparse ends with a summary ("CPU0 (8,0):", "Total (8,0):", counters): not events.
      if (/^(CPU\d+|Total|\s|Throughput|Events|Skips)/.test(line)) {
        yield null;
        continue;
      }
      throw new InvalidInputError(`input ${name}: line ${number} is not blkparse's default text (DEV CPU SEQ TIME PID ACTION RWBS SECTOR + COUNT)`);
    }
    const [, seconds, action, rwbs, sector, count] = match;
    const op = rwbs!.includes("W") ? "write" : rwbs!.includes("R") ? "read" : null;
    if (action !== "Q" || op === null || sector === undefined || count === undefined || Number(count) === 0) {
      yield null;
      continue;
    }
    yield { t: Math.round(Number(seconds) * 1e9), op, offset: Number(sector) * 512, len: Number(count) * 512 };
  }
}
