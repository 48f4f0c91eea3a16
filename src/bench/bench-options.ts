/**
 * What a sweep is asked (`BenchOptions`), its defaults, and the one place the options are
 * checked: the runner checks them before it makes anything, and the command line calls the same
 * check before it writes anything of its own (`--emit-fio`, `--output`). The command line only
 * parses text into these values.
 */
import { PAGE_SIZE } from "../base/constants";
import type { RuleSet } from "../base/alignment-rules";
import { hasOwnSectors, type DiskKind, type SectorSize } from "../base/disk-kinds";
import { BounceBenchError, InvalidInputError } from "../base/errors";
import { checkSegment, formatBytes, formatGpnList, type SegmentSpec } from "../base/value-parsers";
import type { CopyMethod } from "../bounce/copy-placement";
import { scratchDiskUnavailable } from "../host/scratch-disks";
import { MAX_QUEUE_DEPTH, uringOptionNames, type EngineName, type UringOptions } from "../io/engines";
import type { IoMode } from "../io/planner";
import type { BenchCaseResult } from "./bench-results";
import type { BouncePages, GuestBacking } from "./guest-backing";
import type { BenchOp, BounceLayout } from "./job";
import type { BenchWorkspace } from "./workspace";

export interface BenchOptions {
  guestPath?: string;
  diskPath?: string;
  size: number;
  ops: BenchOp[];
  bs: number[];
  memOffsets: number[];
  /**
   * A scatter-gather request shape (`--seg`), GPNs counted from each slot's first page, instead
   * of the `bs` x `memOffsets` product: every case then moves the shape's total length.
   */
  shape?: SegmentSpec[];
  modes: IoMode[];
  engine: EngineName;
  /** io_uring's options (`--registerfiles`, `--fixedbufs`, `--sqthread_poll`, `--defer-taskrun`, `--nonvectored`); uring engine only. */
  uring?: UringOptions;
  qd: number;
  threads: number;
  budget: number;
  runtimeSeconds: number | null;
  ios: number | null;
  /** Runs per case (`--repeat`, default 1), interleaved across cases. */
  repeat?: number;
  /** Warm-up before each run's measurement, in seconds (`--ramp`, default 0). */
  rampSeconds?: number;
  alignOverride?: number;
  memAlignOverride?: number;
  /** The kind of scratch disk to make when no disk is named (`--disk-kind`), and its sector size (`--sector`). */
  diskKind?: DiskKind;
  sector?: SectorSize;
  /** The rule set plans are decided by (`kernel` by default). */
  rules?: RuleSet;
  fua?: boolean;
  /**
   * Order writes against other processes' on the disk (`RunOptions.fileLocks`); true by
   * default on a disk the user named, never needed on a scratch disk (no other process can reach
   * it). `false` (`--no-file-locks`) opts out, and the header says so.
   */
  fileLocks?: boolean;
  /** Check the memory and space the run takes against what the host has; true by default (`--no-resource-check`). */
  resourceCheck?: boolean;
  force?: boolean;
  /** Write workloads may overwrite a block device named by `diskPath` that nothing uses (`--overwrite-device`). */
  overwriteDevice?: boolean;
  /** What backs guest memory when no `guestPath` is given (`--guest-backing`, `memfd` by default). */
  guestBacking?: GuestBacking;
  /** The bounce buffers' pages (`--bounce-pages`): `same` as guest memory (the default), `4k` or `thp`. */
  bouncePages?: BouncePages;
  /**
   * How bounce buffers on base pages are laid out physically (`--bounce-layout`): `matched` (the
   * default) repeats the physical runs of the guest pages they stand in for, `any` takes memory
   * as it comes. Huge-page bounce buffers are one run whatever this says.
   */
  bounceLayout?: BounceLayout;
  /** How guest bytes are copied through bounce buffers (`--copy`): `placed` (the default) or `memcpy`. */
  copy?: CopyMethod;
  verify?: boolean;
  /** [0] set to non-zero to stop (shared with the workers). */
  stop?: Int32Array;
  /** Called when a run starts and as IOs complete (from a timer), for a progress line. */
  onProgress?: (status: BenchProgress) => void;
  /** Called with each finished case (after its last run), in order. */
  onCase?: (result: BenchCaseResult) => void;
  /** Called once the files are ready, with the workspace (what the header describes). */
  onWorkspace?: (workspace: BenchWorkspace) => void;
  /**
   * Called with what removes each thing the run makes outside its memory, as it makes them: the
   * scratch disk before it is filled, the workspace (the disk closed, then its scratch removed),
   * a tracing mount. A caller that must leave early runs them, newest first.
   */
  onScratch?: (remove: () => void) => void;
}

/** Where a sweep is: run `run` (from 0) of `runs` (cases x repeats), its case, and its IOs so far. */
export interface BenchProgress {
  run: number;
  runs: number;
  label: string;
  bs: number;
  ios: number;
}

export const DEFAULT_BENCH = {
  size: 256 * 2 ** 20,
  ops: ["read", "write"] as BenchOp[],
  bs: [4096, 65536, 2 ** 20],
  // 0 and 512 are direct on common disks (512-byte DMA alignment), 8 is not: auto bounces there.
  memOffsets: [0, 8, 512],
  modes: ["auto", "bounce"] as IoMode[],
  engine: "sync" as EngineName,
  qd: 1,
  threads: 1,
  // Five runs a case, the fewest that let the rank test find a clear change (statistics.ts),
  // in the time three runs of 0.5 s took.
  runtimeSeconds: 0.3,
  repeat: 5,
};

const MAX_THREADS = 64;
/** Largest block size (or shape length) a case may move per IO. */
const MAX_BS = 64 * 2 ** 20;

/**
 * The options a sweep runs by, checked: with a shape, the one block size and memory offset are
 * the shape's total length and first offset. Bad options are an `InvalidInputError` naming the
 * flag; a scratch disk kind this host cannot make is `DISK_KIND_UNAVAILABLE`.
 */
export function checkedBenchOptions(given: BenchOptions): BenchOptions {
  const options = withShape(given);
  validate(options);
  return options;
}

/** Checks every option that can be checked without touching a file (`checkedBenchOptions`, result dropped). */
export function validateBenchOptions(options: BenchOptions): void {
  checkedBenchOptions(options);
}

/** With a shape, the one block size and memory offset are the shape's total length and first offset. */
function withShape(options: BenchOptions): BenchOptions {
  if (options.shape === undefined) return options;
  if (options.shape.length === 0) throw new InvalidInputError("--seg: the shape has no segments");
  for (const [i, segment] of options.shape.entries()) checkSegment(segment, `--seg ${i}`);
  const total = options.shape.reduce((sum, segment) => sum + segment.len, 0);
  if (!(total >= 1 && total <= MAX_BS)) throw new InvalidInputError(`--seg: the shape moves ${total} bytes; it must move 1 .. ${MAX_BS}`);
  return { ...options, bs: [total], memOffsets: [options.shape[0]!.offset] };
}

/** `0@512+3584,2+512`: a shape as `--seg` values. */
export function formatShape(shape: readonly SegmentSpec[]): string {
  return shape.map((segment) => `${formatGpnList(segment.gpns)}@${segment.offset}+${segment.len}`).join(" ");
}

function validate(options: BenchOptions): void {
  const kind = options.diskKind ?? "file";
  if (options.sector !== undefined && !hasOwnSectors(kind)) throw new InvalidInputError(`--sector applies to a --disk-kind with a loop device, not ${kind}`);
  if (kind !== "file") {
    if (options.diskPath !== undefined) throw new InvalidInputError(`--disk-kind ${kind} makes a scratch disk; it cannot be combined with --disk`);
    const unavailable = scratchDiskUnavailable(kind);
    if (unavailable !== null) throw new BounceBenchError("DISK_KIND_UNAVAILABLE", `--disk-kind ${kind}: ${unavailable}`);
  }
  if (options.guestPath !== undefined && options.guestBacking !== undefined && options.guestBacking !== "file") {
    throw new InvalidInputError(`--guest-backing ${options.guestBacking} makes guest memory; it cannot be combined with --guest (a file)`);
  }
  const lists: [string, unknown[]][] = [["--op", options.ops], ["--bs", options.bs], ["--mem-offset", options.memOffsets], ["--mode", options.modes]];
  for (const [flag, list] of lists) if (list.length === 0) throw new InvalidInputError(`${flag}: the list is empty`);
  for (const bs of options.shape === undefined ? options.bs : []) {
    if (!(bs >= 512 && bs % 512 === 0 && bs <= MAX_BS)) {
      throw new InvalidInputError(`--bs: ${bs} is not a multiple of 512 between 512 and 64 MiB`);
    }
  }
  for (const offset of options.shape === undefined ? options.memOffsets : []) {
    if (!(offset >= 0 && offset < PAGE_SIZE)) throw new InvalidInputError(`--mem-offset: ${offset} is not an offset within a page (0 .. 4095)`);
  }
  if (!(Number.isInteger(options.qd) && options.qd >= 1 && options.qd <= MAX_QUEUE_DEPTH)) {
    throw new InvalidInputError(`--qd: ${options.qd} is not in 1 .. ${MAX_QUEUE_DEPTH}`);
  }
  const uring = uringOptionNames(options.uring);
  if (options.engine !== "uring" && uring.length > 0) throw new InvalidInputError(`--${uring[0]} is an io_uring option: use --engine uring`);
  if (options.uring?.sqpoll && options.uring.deferTaskrun) throw new InvalidInputError("--sqthread_poll and --defer-taskrun cannot be combined (deferred task work runs in the submitter, which under SQPOLL is the kernel's thread)");
  if (options.engine === "sync" && options.qd !== 1) {
    throw new InvalidInputError(`--qd ${options.qd}: the sync engine does one IO at a time; use --engine uring for a queue`);
  }
  if (!(Number.isInteger(options.threads) && options.threads >= 1 && options.threads <= MAX_THREADS)) {
    throw new InvalidInputError(`--threads: ${options.threads} is not in 1 .. ${MAX_THREADS}`);
  }
  for (const [flag, value] of [["--repeat", options.repeat ?? 1], ["--budget", options.budget]] as const) {
    if (!(Number.isSafeInteger(value) && value >= 1)) throw new InvalidInputError(`${flag}: ${value} is not a count of 1 or more`);
  }
  if ((options.runtimeSeconds === null) === (options.ios === null)) throw new InvalidInputError("give one of --runtime and --ios");
  if (options.runtimeSeconds !== null && !(options.runtimeSeconds > 0 && options.runtimeSeconds <= 86400)) {
    throw new InvalidInputError(`--runtime: ${options.runtimeSeconds} is not a number of seconds in (0, 86400]`);
  }
  if (options.ios !== null && !(Number.isSafeInteger(options.ios) && options.ios >= 1)) throw new InvalidInputError(`--ios: ${options.ios} is not a positive count`);
  if (options.fua && !options.ops.some((op) => op.endsWith("write"))) throw new InvalidInputError("--fua applies to write workloads only");
  const largestPages = Math.ceil(Math.max(...options.bs) / PAGE_SIZE);
  if (options.modes.some((mode) => mode !== "buffered" && mode !== "direct") && largestPages > options.budget) {
    throw new InvalidInputError(`--budget: ${options.budget} pages cannot hold one ${formatBytes(Math.max(...options.bs))} bounce buffer (${largestPages} pages)`);
  }
}
