/**
 * The scenario file format (README, "repro"), parsed into typed steps. Its shape (fields, which
 * are required, types, allowed values) has one definition, `schema/scenario.schema.json`, which
 * `schema-check.ts` runs first; this module converts the values and checks what a schema cannot
 * (sizes and GPN lists that parse, values that fit the scenario's own sizes, names that refer to
 * each other). Every problem is reported with the path of the bad field, e.g.
 * `steps[3].seg[1]: "0@@1" is not a segment`, as a `ScenarioFormatError` (bad input, exit 2).
 *
 *   { "name", "expected", "buggy", "rules"?, "guest": { "size" },
 *     "disk": { "size", "align"?, "memAlign"?, "kind"?, "sector"?, "reflink"? }, "steps": [ step, ... ] }
 *
 * `disk.kind` is a real kind of disk (`host/scratch-disks`: file, the default; loop; ext4, xfs,
 * btrfs on a loop device; tmpfs), `sector` its loop device's sector size; `reflink` clones the
 * disk file once it is filled with zeros, so that it shares its blocks (xfs, btrfs). `rules`
 * (kernel, the default, or seed) decides every plan; an io or plan step may name its own.
 *
 * A step is one of (the key that names it first):
 *   fill       prepare guest pages or disk bytes with a pattern (zero, random + seed, stamp)
 *   io         one IO (read or write), any mode, with expectations
 *   plan       the decision alone, no IO (its own `align` may be given, even a bad one); with
 *              `kernel` (a named kernel rule set, or `current`, measured on the disk), whether
 *              that kernel takes the IO directly: `decision` direct, or `error` EINVAL
 *   check      compare disk bytes with guest bytes or with a pattern, or guest bytes with one
 *   concurrent several IOs in flight at once over io_uring, checked against a sequential replay
 *   linear     OwnedRequestBuffers.linear's pages
 *   budget     a scripted run of a bounce budget: acquisitions and releases, served order
 *   probe      the disk's alignment and where it came from
 *   request    one operation on a RequestBuffers (lock, reader, writer), e.g. on a read-only one
 */
import { BounceBenchError } from "../base/errors";
import { PATTERNS, type PatternName } from "../base/patterns";
import { IO_MODES, type Decision, type IoMode, type IoOp } from "../io/planner";
import { KERNEL_CHOICES } from "../base/kernel-rules";

/** A plan step's `kernel`: one rule set a step's expectation can speak of (never `all`). */
const KERNEL_STEP_CHOICES = KERNEL_CHOICES.filter((name) => name !== "all");
import { isPowerOfTwo, RULE_SETS, type RuleSet } from "../base/alignment-rules";
import { DISK_KINDS, hasOwnSectors, SECTOR_SIZES, type DiskKind, type SectorSize } from "../base/disk-kinds";
import { checkSegment, PageBudget, parseGpnList, parseSegment, parseSize, type SegmentSpec } from "../base/value-parsers";
import { checkScenarioShape, STEP_KINDS } from "./schema-check";

export class ScenarioFormatError extends BounceBenchError {
  constructor(
    readonly file: string,
    readonly path: string,
    why: string,
  ) {
    super("SCENARIO_FORMAT", `${file}: ${path === "" ? "" : `${path}: `}${why}`);
  }
}

export interface IoExpect {
  decision?: Decision;
  /** An errno name (`EINVAL`) or an error code (`GUEST_ACCESS`). */
  error?: string;
  bytes?: number;
  /** Text that one of the reasons must contain. */
  reason?: string;
  /** For a refused forced direct IO: whether the disk range changed before the refusal. */
  diskChanged?: boolean;
  /** For a refused forced direct IO: whether the IO's guest bytes changed before the refusal (a read's earlier requests). */
  guestChanged?: boolean;
}

export interface FillStep {
  kind: "fill";
  target: "guest" | "disk";
  gpns: number[] | null;
  at: number;
  len: number | null;
  pattern: PatternName;
  seed: number;
}

export interface IoStep {
  kind: "io";
  op: IoOp;
  segments: SegmentSpec[];
  at: number;
  mode: IoMode;
  rules: RuleSet | null;
  fua: boolean;
  expect: IoExpect;
}

export interface PlanStep {
  kind: "plan";
  op: IoOp;
  segments: SegmentSpec[];
  at: number;
  mode: IoMode;
  rules: RuleSet | null;
  /** Overrides the disk's alignment for this plan; any number, so a bad one can be expected. */
  align: number | null;
  /** A kernel rule set (`base/kernel-rules.ts`) or `current`: the step asks whether it takes the IO directly. */
  kernel: string | null;
  expect: IoExpect;
}

export interface CheckStep {
  kind: "check";
  what: "disk-equals-guest" | "disk-equals-pattern" | "guest-equals-pattern";
  at: number;
  len: number | null;
  segments: SegmentSpec[];
  gpns: number[] | null;
  pattern: PatternName;
  seed: number;
}

export interface ConcurrentStep {
  kind: "concurrent";
  ios: { op: IoOp; segments: SegmentSpec[]; at: number; mode: IoMode }[];
  qd: number;
  locks: boolean;
  expect: { replay?: boolean; error?: string };
}

export interface LinearStep {
  kind: "linear";
  offset: number;
  len: number;
  write: boolean;
  expect: { gpns?: number[]; error?: string };
}

export type BudgetAction = { acquire: number; thread: number; as: string } | { release: string };

export interface BudgetStep {
  kind: "budget";
  pages: number;
  threads: number;
  actions: BudgetAction[];
  expect: { served?: string[]; error?: string };
}

export interface ProbeStep {
  kind: "probe";
  empirical: boolean;
  expect: { source?: string; directIo?: boolean; memAlign?: number; offsetAlign?: number; readOffsetAlign?: number; notSource?: string };
}

export const REQUEST_OPERATIONS = ["lock-for-write", "lock-for-read", "read", "write", "fill"] as const;

export interface RequestStep {
  kind: "request";
  operation: (typeof REQUEST_OPERATIONS)[number];
  segment: SegmentSpec;
  /** Guest memory may be written (the request is a disk read). */
  writable: boolean;
  /** Bytes to read, write or fill (default: the whole request). */
  bytes: number | null;
  expect: { error?: string; len?: number };
}

export type Step = FillStep | IoStep | PlanStep | CheckStep | ConcurrentStep | LinearStep | BudgetStep | ProbeStep | RequestStep;

export interface Scenario {
  file: string;
  name: string;
  expected: string;
  buggy: string;
  guestSize: number;
  diskSize: number;
  diskAlign: number | null;
  diskMemAlign: number | null;
  diskKind: DiskKind;
  diskSector: SectorSize;
  diskReflink: boolean;
  /** The rule set plans are decided by, unless a step names its own. */
  rules: RuleSet;
  steps: Step[];
}

const DECISIONS: readonly Decision[] = ["direct", "bounce", "rmw", "split", "buffered"];
const CHECKS = ["disk-equals-guest", "disk-equals-pattern", "guest-equals-pattern"] as const;
const MAX_SCENARIO_BYTES = 1 << 30;

/** Parses scenario JSON text; `file` names it in errors. */
export function parseScenarioText(text: string, file: string): Scenario {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new ScenarioFormatError(file, "", `not valid JSON: ${(error as Error).message}`);
  }
  return parseScenario(json, file);
}

export function parseScenario(json: unknown, file: string): Scenario {
  const f = new Fields(file);
  checkScenarioShape(json, (path, why) => f.fail(path, why));
  const root = f.object(json, "");
  const rules = root.rules === undefined ? "kernel" : f.choice(root.rules, "rules", RULE_SETS);
  const name = f.string(root.name, "name");
  const expected = f.string(root.expected, "expected");
  const buggy = f.string(root.buggy, "buggy");
  const guest = f.object(root.guest, "guest");
  const disk = f.object(root.disk, "disk");
  const guestSize = f.size(guest.size, "guest.size");
  if (guestSize === 0 || guestSize % 4096 !== 0 || guestSize > MAX_SCENARIO_BYTES) {
    throw new ScenarioFormatError(file, "guest.size", `${guestSize} is not a whole number of 4096-byte pages up to 1 GiB`);
  }
  const diskSize = f.size(disk.size, "disk.size");
  if (diskSize === 0 || diskSize % 512 !== 0 || diskSize > MAX_SCENARIO_BYTES) {
    throw new ScenarioFormatError(file, "disk.size", `${diskSize} is not a multiple of 512 bytes up to 1 GiB`);
  }
  let diskAlign: number | null = null;
  if (disk.align !== undefined) {
    diskAlign = f.size(disk.align, "disk.align");
    if (!isPowerOfTwo(diskAlign)) throw new ScenarioFormatError(file, "disk.align", `${diskAlign} is not a power of two`);
  }
  if (diskAlign !== null && diskAlign > diskSize) {
    throw new ScenarioFormatError(file, "disk.align", `${diskAlign} is larger than the disk (disk.size ${diskSize})`);
  }
  let diskMemAlign: number | null = null;
  if (disk.memAlign !== undefined) {
    diskMemAlign = f.size(disk.memAlign, "disk.memAlign");
    if (!isPowerOfTwo(diskMemAlign)) throw new ScenarioFormatError(file, "disk.memAlign", `${diskMemAlign} is not a power of two`);
  }
  const diskKind = disk.kind === undefined ? "file" : f.choice(disk.kind, "disk.kind", DISK_KINDS);
  const diskSector = disk.sector === undefined ? 512 : (f.number(disk.sector, "disk.sector") as SectorSize);
  if (!SECTOR_SIZES.includes(diskSector)) throw new ScenarioFormatError(file, "disk.sector", `${diskSector} is not one of ${SECTOR_SIZES.join(", ")}`);
  if (disk.sector !== undefined && !hasOwnSectors(diskKind)) {
    throw new ScenarioFormatError(file, "disk.sector", `a ${diskKind} disk has no sectors of its own (sector applies to loop, ext4, xfs, btrfs)`);
  }
  const diskReflink = disk.reflink === undefined ? false : f.boolean(disk.reflink, "disk.reflink");
  if (diskReflink && diskKind !== "xfs" && diskKind !== "btrfs") {
    throw new ScenarioFormatError(file, "disk.reflink", `needs a filesystem that clones files (xfs, btrfs), not ${diskKind}`);
  }
  if (diskKind !== "file" && diskSize % 4096 !== 0) {
    throw new ScenarioFormatError(file, "disk.size", `a ${diskKind} disk is a whole number of 4096-byte blocks, not ${diskSize} bytes`);
  }
  const steps = f.array(root.steps, "steps");
  if (steps.length === 0) throw new ScenarioFormatError(file, "steps", "a scenario needs at least one step");
  const parsed = steps.map((step, i) => parseStep(f, step, `steps[${i}]`));
  parsed.forEach((step, i) => checkFits(file, step, `steps[${i}]`, guestSize, diskSize));
  return { file, name, expected, buggy, guestSize, diskSize, diskAlign, diskMemAlign, diskKind, diskSector, diskReflink, rules, steps: parsed };
}

/**
 * A step's pages and disk bytes must fit the scenario's own guest and disk, or the file is
 * malformed (nothing runs), unless the step expects an error: then going past the end is what
 * it reproduces (a read past the disk's end must be refused).
 */
function checkFits(file: string, step: Step, path: string, guestSize: number, diskSize: number): void {
  const guestPages = guestSize / 4096;
  const pages = (gpns: readonly number[] | null, where: string) => {
    const bad = gpns?.find((gpn) => gpn >= guestPages);
    if (bad !== undefined) throw new ScenarioFormatError(file, where, `GPN ${bad} is past the guest's ${guestPages} pages (guest.size ${guestSize})`);
  };
  const disk = (at: number, len: number, where: string) => {
    if (at + len > diskSize) throw new ScenarioFormatError(file, where, `disk bytes ${at}..${at + len} go past the disk (disk.size ${diskSize})`);
  };
  // Only the pages a segment's bytes cover are touched; trailing GPNs beyond them are allowed.
  const covered = (segment: SegmentSpec) => segment.gpns.slice(Math.floor(segment.offset / 4096), Math.ceil((segment.offset + segment.len) / 4096));
  const io = (segments: readonly SegmentSpec[], at: number, where: string) => {
    segments.forEach((segment, i) => pages(covered(segment), segments.length === 1 ? `${where}.seg/gpns` : `${where}.seg[${i}]`));
    disk(at, segments.reduce((sum, segment) => sum + segment.len, 0), `${where}.at`);
  };
  switch (step.kind) {
    case "io":
      if (step.expect.error === undefined) io(step.segments, step.at, path);
      break;
    case "concurrent":
      if (step.expect.error === undefined) step.ios.forEach((item, i) => io(item.segments, item.at, `${path}.concurrent[${i}]`));
      break;
    case "fill":
      if (step.target === "guest") pages(step.gpns, `${path}.gpns`);
      else disk(step.at, step.len ?? 0, `${path}.at`);
      break;
    case "check":
      pages(step.gpns, `${path}.gpns`);
      step.segments.forEach((segment, i) => pages(covered(segment), `${path}.seg[${i}]`));
      if (step.what !== "guest-equals-pattern") disk(step.at, step.len ?? step.segments.reduce((sum, segment) => sum + segment.len, 0), `${path}.at`);
      break;
  }
}

function parseStep(f: Fields, value: unknown, path: string): Step {
  const step = f.object(value, path);
  // The schema check has made sure exactly one key names the step's kind.
  switch (STEP_KINDS.find((kind) => kind in step)!) {
    case "fill": {
      const target = f.choice(step.fill, `${path}.fill`, ["guest", "disk"] as const);
      const gpns = step.gpns === undefined ? null : f.gpns(step.gpns, `${path}.gpns`);
      return {
        kind: "fill",
        target,
        gpns,
        at: step.at === undefined ? 0 : f.size(step.at, `${path}.at`),
        len: step.len === undefined ? null : f.size(step.len, `${path}.len`),
        pattern: f.choice(step.pattern, `${path}.pattern`, PATTERNS),
        seed: step.seed === undefined ? 1 : f.integer(step.seed, `${path}.seed`),
      };
    }
    case "io":
    case "plan": {
      const isPlan = "plan" in step;
      const op = f.choice(isPlan ? step.plan : step.io, `${path}.${isPlan ? "plan" : "io"}`, ["read", "write"] as const);
      const common = {
        op,
        segments: f.segments(step, path),
        at: step.at === undefined ? 0 : f.size(step.at, `${path}.at`),
        mode: step.mode === undefined ? ("auto" as IoMode) : f.choice(step.mode, `${path}.mode`, IO_MODES),
        rules: step.rules === undefined ? null : f.choice(step.rules, `${path}.rules`, RULE_SETS),
        expect: f.ioExpect(step.expect, `${path}.expect`),
      };
      if (isPlan) {
        const kernel = step.kernel === undefined ? null : f.choice(step.kernel, `${path}.kernel`, KERNEL_STEP_CHOICES);
        return { kind: "plan", ...common, align: step.align === undefined ? null : f.number(step.align, `${path}.align`), kernel };
      }
      return { kind: "io", ...common, fua: step.fua === undefined ? false : f.boolean(step.fua, `${path}.fua`) };
    }
    case "check": {
      const what = f.choice(step.check, `${path}.check`, CHECKS);
      const base = {
        kind: "check" as const,
        what,
        at: step.at === undefined ? 0 : f.size(step.at, `${path}.at`),
        len: null as number | null,
        segments: [] as SegmentSpec[],
        gpns: null as number[] | null,
        pattern: "zero" as PatternName,
        seed: step.seed === undefined ? 1 : f.integer(step.seed, `${path}.seed`),
      };
      if (what === "disk-equals-guest") return { ...base, segments: f.segments(step, path) };
      base.pattern = f.choice(step.pattern, `${path}.pattern`, PATTERNS);
      if (what === "disk-equals-pattern") return { ...base, len: f.size(step.len, `${path}.len`) };
      return { ...base, gpns: f.gpns(step.gpns, `${path}.gpns`) };
    }
    case "concurrent": {
      const ios = f.array(step.concurrent, `${path}.concurrent`).map((item, i) => {
        const at = `${path}.concurrent[${i}]`;
        const io = f.object(item, at);
        return {
          op: f.choice(io.io, `${at}.io`, ["read", "write"] as const),
          segments: f.segments(io, at),
          at: f.size(io.at, `${at}.at`),
          mode: io.mode === undefined ? ("auto" as IoMode) : f.choice(io.mode, `${at}.mode`, IO_MODES),
        };
      });
      const expect = step.expect === undefined ? {} : f.object(step.expect, `${path}.expect`);
      return {
        kind: "concurrent",
        ios,
        qd: step.qd === undefined ? 8 : f.integer(step.qd, `${path}.qd`, 1, 256),
        locks: step.locks === undefined ? true : f.boolean(step.locks, `${path}.locks`),
        expect: {
          replay: expect.replay === undefined ? true : f.boolean(expect.replay, `${path}.expect.replay`),
          error: expect.error === undefined ? undefined : f.string(expect.error, `${path}.expect.error`),
        },
      };
    }
    case "linear": {
      const linear = f.object(step.linear, `${path}.linear`);
      const expect = step.expect === undefined ? {} : f.object(step.expect, `${path}.expect`);
      return {
        kind: "linear",
        offset: f.size(linear.offset, `${path}.linear.offset`),
        len: f.size(linear.len, `${path}.linear.len`),
        write: linear.write === undefined ? true : f.boolean(linear.write, `${path}.linear.write`),
        expect: {
          gpns: expect.gpns === undefined ? undefined : f.gpns(expect.gpns, `${path}.expect.gpns`),
          error: expect.error === undefined ? undefined : f.string(expect.error, `${path}.expect.error`),
        },
      };
    }
    case "budget": {
      const budget = f.object(step.budget, `${path}.budget`);
      const names = new Set<string>();
      const actions = f.array(step.actions, `${path}.actions`).map((item, i): BudgetAction => {
        const at = `${path}.actions[${i}]`;
        const action = f.object(item, at);
        if ("release" in action) {
          const name = f.string(action.release, `${at}.release`);
          if (!names.has(name)) throw new ScenarioFormatError(f.file, `${at}.release`, `no earlier acquire is named ${JSON.stringify(name)}`);
          return { release: name };
        }
        const name = action.as === undefined ? `#${i}` : f.string(action.as, `${at}.as`);
        if (names.has(name)) throw new ScenarioFormatError(f.file, `${at}.as`, `${JSON.stringify(name)} names an earlier acquire`);
        names.add(name);
        return { acquire: f.size(action.acquire, `${at}.acquire`), thread: action.thread === undefined ? 0 : f.number(action.thread, `${at}.thread`), as: name };
      });
      const expect = step.expect === undefined ? {} : f.object(step.expect, `${path}.expect`);
      return {
        kind: "budget",
        pages: f.integer(budget.pages, `${path}.budget.pages`, 1, 2 ** 20),
        threads: budget.threads === undefined ? 1 : f.integer(budget.threads, `${path}.budget.threads`, 1, 64),
        actions,
        expect: {
          served: expect.served === undefined ? undefined : f.array(expect.served, `${path}.expect.served`).map((name, i) => f.string(name, `${path}.expect.served[${i}]`)),
          error: expect.error === undefined ? undefined : f.string(expect.error, `${path}.expect.error`),
        },
      };
    }
    case "request": {
      const expect = step.expect === undefined ? {} : f.object(step.expect, `${path}.expect`);
      const segments = f.segments(step, path);
      return {
        kind: "request",
        operation: f.choice(step.request, `${path}.request`, REQUEST_OPERATIONS),
        segment: segments[0]!,
        writable: f.boolean(step.writable, `${path}.writable`),
        bytes: step.bytes === undefined ? null : f.size(step.bytes, `${path}.bytes`),
        expect: {
          error: expect.error === undefined ? undefined : f.string(expect.error, `${path}.expect.error`),
          len: expect.len === undefined ? undefined : f.size(expect.len, `${path}.expect.len`),
        },
      };
    }
    case "probe": {
      f.choice(step.probe, `${path}.probe`, ["disk", "disk-empirical"] as const);
      const expect = step.expect === undefined ? {} : f.object(step.expect, `${path}.expect`);
      return {
        kind: "probe",
        empirical: step.probe === "disk-empirical",
        expect: {
          source: expect.source === undefined ? undefined : f.string(expect.source, `${path}.expect.source`),
          notSource: expect.notSource === undefined ? undefined : f.string(expect.notSource, `${path}.expect.notSource`),
          directIo: expect.directIo === undefined ? undefined : f.boolean(expect.directIo, `${path}.expect.directIo`),
          memAlign: expect.memAlign === undefined ? undefined : f.integer(expect.memAlign, `${path}.expect.memAlign`, 0),
          offsetAlign: expect.offsetAlign === undefined ? undefined : f.integer(expect.offsetAlign, `${path}.expect.offsetAlign`, 0),
          readOffsetAlign: expect.readOffsetAlign === undefined ? undefined : f.integer(expect.readOffsetAlign, `${path}.expect.readOffsetAlign`, 0),
        },
      };
    }
  }
}

/** Typed access to JSON values, every error naming the field's path. */
class Fields {
  /** Pages the whole file may name: thirty small steps must not add up to more than one may. */
  readonly pages = new PageBudget(undefined, "a scenario");

  constructor(readonly file: string) {}

  fail(path: string, why: string): never {
    throw new ScenarioFormatError(this.file, path, why);
  }

  object(value: unknown, path: string): Record<string, unknown> {
    if (typeof value !== "object" || value === null || Array.isArray(value)) this.fail(path || "(top level)", "must be an object");
    return value as Record<string, unknown>;
  }

  array(value: unknown, path: string): unknown[] {
    if (!Array.isArray(value)) this.fail(path, value === undefined ? "is missing" : "must be a list");
    return value;
  }

  string(value: unknown, path: string): string {
    if (typeof value !== "string" || value === "") this.fail(path, value === undefined ? "is missing" : "must be a non-empty string");
    return value;
  }

  boolean(value: unknown, path: string): boolean {
    if (typeof value !== "boolean") this.fail(path, "must be true or false");
    return value;
  }

  number(value: unknown, path: string): number {
    if (typeof value !== "number" || !Number.isFinite(value)) this.fail(path, value === undefined ? "is missing" : "must be a number");
    return value;
  }

  integer(value: unknown, path: string, min = Number.MIN_SAFE_INTEGER, max = Number.MAX_SAFE_INTEGER): number {
    const number = this.number(value, path);
    if (!Number.isSafeInteger(number) || number < min || number > max) this.fail(path, `${number} is not a whole number in ${min} .. ${max}`);
    return number;
  }

  choice<T extends string>(value: unknown, path: string, allowed: readonly T[]): T {
    if (typeof value !== "string" || !allowed.includes(value as T)) {
      this.fail(path, `${value === undefined ? "is missing" : `${JSON.stringify(value)} is not`} one of ${allowed.join(", ")}`);
    }
    return value as T;
  }

  size(value: unknown, path: string): number {
    if (value === undefined) this.fail(path, "is missing");
    if (typeof value !== "string" && typeof value !== "number") this.fail(path, "must be a size (a number, or a string such as \"4k\")");
    return this.wrap(path, () => parseSize(value, path));
  }

  gpns(value: unknown, path: string): number[] {
    if (typeof value !== "string") this.fail(path, "must be a GPN list string such as \"0-3,7\"");
    return this.wrap(path, () => parseGpnList(value, path, this.pages));
  }

  /** `seg` (a list of segment strings) or the shorthand `gpns`/`offset`/`len`. */
  segments(step: Record<string, unknown>, path: string): SegmentSpec[] {
    // The schema has made sure there is seg (a non-empty list, alone) or gpns.
    if (step.seg !== undefined) {
      return this.array(step.seg, `${path}.seg`).map((item, i) => {
        const at = `${path}.seg[${i}]`;
        if (typeof item !== "string") this.fail(at, "must be a segment string GPNS[@OFFSET][+LEN]");
        return this.wrap(at, () => parseSegment(item, at, this.pages));
      });
    }
    const gpns = this.gpns(step.gpns, `${path}.gpns`);
    const offset = step.offset === undefined ? 0 : this.size(step.offset, `${path}.offset`);
    const len = step.len === undefined ? Math.max(0, gpns.length * 4096 - offset) : this.size(step.len, `${path}.len`);
    return [this.wrap(path, () => checkSegment({ gpns, offset, len }, `${path}`))];
  }

  ioExpect(value: unknown, path: string): IoExpect {
    if (value === undefined) return {};
    const expect = this.object(value, path);
    return {
      decision: expect.decision === undefined ? undefined : this.choice(expect.decision, `${path}.decision`, DECISIONS),
      error: expect.error === undefined ? undefined : this.string(expect.error, `${path}.error`),
      bytes: expect.bytes === undefined ? undefined : this.size(expect.bytes, `${path}.bytes`),
      reason: expect.reason === undefined ? undefined : this.string(expect.reason, `${path}.reason`),
      diskChanged: expect.diskChanged === undefined ? undefined : this.boolean(expect.diskChanged, `${path}.diskChanged`),
      guestChanged: expect.guestChanged === undefined ? undefined : this.boolean(expect.guestChanged, `${path}.guestChanged`),
    };
  }

  /** Re-raises a value parser's error with the field's path in front. */
  wrap<T>(path: string, parse: () => T): T {
    try {
      return parse();
    } catch (error) {
      if (error instanceof BounceBenchError) {
        const message = error.message.startsWith(`${path}`) ? error.message.slice(path.length).replace(/^[: ]+/, "") : error.message;
        this.fail(path, message);
      }
      throw error;
    }
  }
}
