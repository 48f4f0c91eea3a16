/**
 * Options shared by commands, declared once: the request's segments, alignment, disk offset,
 * direction and mode. Each returns the parsed value or throws an `InvalidInputError` naming the
 * option and the bad value (exit 2).
 */
import { Option, type Command } from "commander";
import { parseAlignment, RULE_SETS, type RuleSet } from "../src/base/alignment-rules";
import { DISK_KINDS, hasOwnSectors, SECTOR_SIZES, type DiskKind, type SectorSize } from "../src/base/disk-kinds";
import { InvalidInputError } from "../src/base/errors";
import { PagedRange } from "../src/memory/paged-range";
import { IO_MODES, IO_OPS, type IoMode, type IoOp } from "../src/io/planner";
import { checkSegment, PageBudget, parseGpnList, parseSegment, parseSize, type SegmentSpec } from "../src/base/value-parsers";

export interface SegmentOptions {
  seg?: string[];
  gpns?: string;
  offset?: string;
  memOffset?: string;
  len?: string;
}

const collect = (value: string, previous: string[] = []) => [...previous, value];

/** --seg (repeatable) and the one-segment shorthand --gpns/--offset/--len. */
export function addSegmentOptions(command: Command): Command {
  return command
    .option("--seg <segment>", "a segment GPNS[@OFFSET][+LEN], e.g. 0-1@512+3584; repeat for a scatter-gather list", collect)
    .option("--gpns <list>", "one segment's pages: comma-separated N or A-B, e.g. 3,7-9,0x10")
    .option("--offset <n>", "with --gpns: byte offset into the first page (default 0); a memory offset, not a disk one (that is --at)")
    .option("--mem-offset <n>", "the same as --offset, by the name bench uses")
    .option("--len <n>", "with --gpns: length in bytes (default: the rest of the pages)");
}

export function parseSegments(options: SegmentOptions): { specs: SegmentSpec[]; ranges: PagedRange[] } {
  if (options.offset !== undefined && options.memOffset !== undefined) throw new InvalidInputError("--offset and --mem-offset are the same option: give one");
  const offsetText = options.offset ?? options.memOffset;
  const offsetName = options.offset !== undefined ? "--offset" : "--mem-offset";
  const shorthand = options.gpns !== undefined || offsetText !== undefined || options.len !== undefined;
  if (options.seg !== undefined && shorthand) {
    throw new InvalidInputError("--seg cannot be combined with --gpns/--offset/--mem-offset/--len");
  }
  let specs: SegmentSpec[];
  if (options.seg !== undefined) {
    const budget = new PageBudget();
    specs = options.seg.map((text, i) => parseSegment(text, options.seg!.length > 1 ? `--seg #${i + 1}` : "--seg", budget));
  } else if (options.gpns !== undefined) {
    const gpns = parseGpnList(options.gpns, "--gpns");
    const offset = offsetText === undefined ? 0 : parseSize(offsetText, offsetName);
    const len = options.len === undefined ? Math.max(0, gpns.length * 4096 - offset) : parseSize(options.len, "--len");
    specs = [checkSegment({ gpns, offset, len }, "--gpns/--offset/--len")];
  } else {
    throw new InvalidInputError("no buffers given: use --seg S (repeatable) or --gpns L [--offset N] [--len N]");
  }
  return { specs, ranges: specs.map((spec) => new PagedRange(spec.offset, spec.len, spec.gpns)) };
}

/** Defaults of the options below, in one place. */
export const OPTION_DEFAULTS = { op: "write" as IoOp, mode: "auto" as IoMode, rules: "kernel" as RuleSet, at: 0 };

/**
 * Options several commands take, declared once: flags, help, parser and default. Parsers run
 * while the command line is read, so a bad value is exit 2 before anything is opened; the
 * action receives parsed values (`align` a number, `at` a byte offset).
 */
export const sharedOptions = {
  json: () => new Option("--json", "print one JSON document on stdout"),
  force: (help: string) => new Option("--force", help),
  overwriteDevice: () =>
    new Option(
      "--overwrite-device",
      "let writes overwrite the block device --disk names (its contents are lost); refused when it is mounted, swap, partitioned or held by another device",
    ),
  fua: (help = "write with RWF_DSYNC (durable on completion)") => new Option("--fua", help),
  align: (help = "simulate a disk with this block size (offsets and lengths; a power of two), e.g. 4096 on a 512-byte disk") =>
    new Option("--align <n>", help).argParser((value: string) => parseAlignment(parseSize(value, "--align"), "--align")),
  memAlign: () =>
    new Option("--mem-align <n>", "simulate a disk with this memory (DMA) alignment; by default the real disk's").argParser((value: string) =>
      parseAlignment(parseSize(value, "--mem-align"), "--mem-align"),
    ),
  rules: () =>
    new Option(
      "--rules <rules>",
      "kernel: the kernel's documented rule, on the iovecs handed over; seed: the reference crate's stricter per-segment rule; qemu, cloud-hypervisor, openvmm: those VMMs' policies (docs/kernel-rules.md)",
    )
      .choices(RULE_SETS as string[])
      .default(OPTION_DEFAULTS.rules),
  at: (required: boolean) => {
    const option = new Option("--at <n>", `${required ? "(required) " : ""}disk offset of the IO in bytes`).argParser((value: string) => parseSize(value, "--at"));
    return required ? option.makeOptionMandatory() : option.default(OPTION_DEFAULTS.at);
  },
  op: (required: boolean) => {
    const option = new Option("--op <op>", `${required ? "(required) " : ""}disk operation: read (disk to guest) or write (guest to disk); fio's --rw works too`).choices(IO_OPS as string[]);
    return required ? option.makeOptionMandatory() : option.default(OPTION_DEFAULTS.op);
  },
  mode: () =>
    new Option(
      "--mode <mode>",
      "auto: decide; direct: force the guest buffers on O_DIRECT (see what the kernel says); bounce: always copy; buffered: page cache, no O_DIRECT",
    )
      .choices(IO_MODES as string[])
      .default(OPTION_DEFAULTS.mode),
};

/** `--sector TEXT` for a scratch disk of `kind`: 512 or 4096, and only where the kind has a loop device. */
export function parseSector(text: string, kind: DiskKind): SectorSize {
  const sector = parseSize(text, "--sector");
  if (!SECTOR_SIZES.includes(sector as SectorSize)) throw new InvalidInputError(`--sector ${text} is not one of ${SECTOR_SIZES.join(", ")}`);
  if (!hasOwnSectors(kind)) {
    const kinds = DISK_KINDS.filter(hasOwnSectors);
    throw new InvalidInputError(`--sector applies to --disk-kind ${kinds.slice(0, -1).join(", ")} or ${kinds.at(-1)}, not ${kind}`);
  }
  return sector as SectorSize;
}
