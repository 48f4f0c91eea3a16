/**
 * Options shared by commands, declared once: the request's segments, alignment, disk offset,
 * direction and mode. Each returns the parsed value or throws an `InvalidInputError` naming the
 * option and the bad value (exit 2).
 */
import { Option, type Command } from "commander";
import { parseAlignment } from "../src/base/alignment-rules";
import { InvalidInputError } from "../src/base/errors";
import { PagedRange } from "../src/memory/paged-range";
import { IO_MODES, IO_OPS, type IoMode, type IoOp } from "../src/io/planner";
import { checkSegment, parseGpnList, parseSegment, parseSize, type SegmentSpec } from "../src/base/values";

export interface SegmentOptions {
  seg?: string[];
  gpns?: string;
  offset?: string;
  len?: string;
}

const collect = (value: string, previous: string[] = []) => [...previous, value];

/** --seg (repeatable) and the one-segment shorthand --gpns/--offset/--len. */
export function addSegmentOptions(command: Command): Command {
  return command
    .option("--seg <segment>", "a segment GPNS[@OFFSET][+LEN], e.g. 0-1@512+3584; repeat for a scatter-gather list", collect)
    .option("--gpns <list>", "one segment's pages: comma-separated N or A-B, e.g. 3,7-9,0x10")
    .option("--offset <n>", "with --gpns: byte offset into the first page (default 0)")
    .option("--len <n>", "with --gpns: length in bytes (default: the rest of the pages)");
}

export function parseSegments(options: SegmentOptions): { specs: SegmentSpec[]; ranges: PagedRange[] } {
  const shorthand = options.gpns !== undefined || options.offset !== undefined || options.len !== undefined;
  if (options.seg !== undefined && shorthand) {
    throw new InvalidInputError("--seg cannot be combined with --gpns/--offset/--len");
  }
  let specs: SegmentSpec[];
  if (options.seg !== undefined) {
    specs = options.seg.map((text, i) => parseSegment(text, options.seg!.length > 1 ? `--seg #${i + 1}` : "--seg"));
  } else if (options.gpns !== undefined) {
    const gpns = parseGpnList(options.gpns, "--gpns");
    const offset = options.offset === undefined ? 0 : parseSize(options.offset, "--offset");
    const len = options.len === undefined ? Math.max(0, gpns.length * 4096 - offset) : parseSize(options.len, "--len");
    specs = [checkSegment({ gpns, offset, len }, "--gpns/--offset/--len")];
  } else {
    throw new InvalidInputError("no buffers given: use --seg S (repeatable) or --gpns L [--offset N] [--len N]");
  }
  return { specs, ranges: specs.map((spec) => new PagedRange(spec.offset, spec.len, spec.gpns)) };
}

export const opOption = (required: boolean) =>
  new Option("--op <op>", "disk operation: read (disk to guest) or write (guest to disk)")
    .choices(IO_OPS as string[])
    .makeOptionMandatory(required);

export const modeOption = () =>
  new Option(
    "--mode <mode>",
    "auto: decide; direct: force the guest buffers on O_DIRECT (see what the kernel says); bounce: always copy; buffered: page cache, no O_DIRECT",
  )
    .choices(IO_MODES as string[])
    .default("auto");

export function parseAlign(value: string | undefined): number | undefined {
  return value === undefined ? undefined : parseAlignment(parseSize(value, "--align"), "--align");
}

export function parseOp(value: string | undefined): IoOp {
  return (value ?? "write") as IoOp;
}

export function parseMode(value: string | undefined): IoMode {
  return (value ?? "auto") as IoMode;
}
