/**
 * Running a scenario: a scratch guest image and disk (removed afterwards), then the steps in
 * order, each passing or failing on its own (a failed step does not stop the ones after it).
 *
 * A step passes when it does what its `expect` says; with no expectation, when it raises no
 * error. A failed check says where disk and guest (or pattern) first differ and, when the bytes
 * found there carry a stamp, which address they were stamped with: misplaced data says where it
 * came from.
 */
import { closeSync, fsyncSync, openSync, writeSync } from "node:fs";
import { readUserTextFile } from "../host/files";
import { join } from "node:path";
import { overrideAlignment, type DiskAlignment } from "../base/alignment-rules";
import { kernelVerdicts } from "../io/kernel-verdicts";
import { discoverAlignment, probeAlignment } from "../disk/alignment";
import { BounceBufferTracker, type TrackedBounceBuffer } from "../bounce/bounce-tracker";
import { PAGE_SIZE } from "../base/constants";
import { Disk } from "../disk/disk";
import { BounceBenchError, hex, isOutOfDescriptors } from "../base/errors";
import { executePlan, IoQueue } from "../io/executor";
import { RangeLocks } from "../io/range-locks";
import { GuestMemory } from "../memory/guest-memory";
import { PagedRange } from "../memory/paged-range";
import { patternBytes, stampAt } from "../base/patterns";
import { plan, type Plan } from "../io/planner";
import { OwnedRequestBuffers, RequestBuffers } from "../memory/request-buffers";
import { formatGpnList } from "../base/value-parsers";
import { guestBytes, readDiskBytes, RefusalWatch } from "../io/verify";
import { ScratchDisk, type DiskKind, type SectorSize } from "../host/scratch-disks";
import { ScratchDir } from "../host/scratch-dir";
import { dropCachedPages } from "../native";
import { checkResources, type Need } from "../host/resources";
import { tmpdir } from "node:os";
import {
  parseScenarioText,
  type BudgetStep,
  type CheckStep,
  type ConcurrentStep,
  type IoExpect,
  type RequestStep,
  type Scenario,
  type Step,
} from "./format";

export interface StepResult {
  index: number;
  /** `io write`, `check disk-equals-guest`, ... */
  step: string;
  passed: boolean;
  decision: string | null;
  /** The error code the step raised, if any (expected or not). */
  error: string | null;
  detail: string;
  /** The step's expectations as the file gives them (null for a step that has none). */
  expected: Record<string, unknown> | null;
  /** What happened, in the expectations' terms: `decision`, `error`, and per step kind `bytes`, `diskChanged`, `guestChanged`. */
  actual: Record<string, unknown>;
}

export interface ScenarioResult {
  file: string;
  name: string;
  expected: string;
  buggy: string;
  passed: boolean;
  steps: StepResult[];
  /** Stopped before its last step (Ctrl-C): not passed, whatever the steps that ran said. */
  interrupted: boolean;
}

export interface RunScenarioOptions {
  /** Checked before every step; true stops the scenario there. */
  shouldStop?: () => boolean;
  /**
   * Run on this kind of disk instead of the scenario's own (`repro --disk-kind`). A real disk
   * whose sectors are at least the scenario's simulated `disk.align` replaces the simulation:
   * the kernel answers instead.
   */
  disk?: { kind: DiskKind; sector?: SectorSize };
  /** False skips the check that the host has room for the scenario's guest image and disk (`--no-resource-check`). */
  resourceCheck?: boolean;
}

/**
 * What a scenario takes from the host: its guest image and its disk in the temporary
 * directory's filesystem (a file, or the file backing a loop device), or a tmpfs disk's memory.
 * Both start sparse; these are what its fills and IO may make of them.
 */
export function scenarioResourceNeeds(scenario: Scenario, kind: DiskKind = scenario.diskKind): Need[] {
  return [
    { what: "the scenario's guest image", bytes: scenario.guestSize, where: tmpdir() },
    kind === "tmpfs" ? { what: "its tmpfs disk", bytes: scenario.diskSize } : { what: "its disk", bytes: scenario.diskSize, where: tmpdir() },
  ];
}

/** Reads, parses and runs the scenario file at `path`. Format errors throw (exit 2). */
export async function runScenarioFile(path: string, options: RunScenarioOptions = {}): Promise<ScenarioResult> {
  return runScenario(parseScenarioText(readUserTextFile(path, "scenario file"), path), options);
}

export async function runScenario(scenario: Scenario, options: RunScenarioOptions = {}): Promise<ScenarioResult> {
  const kind = options.disk?.kind ?? scenario.diskKind;
  const sector = options.disk?.sector ?? (options.disk === undefined ? scenario.diskSector : 512);
  const realSectors = kind !== "file" && kind !== "tmpfs" && options.disk !== undefined;
  const diskAlign = realSectors && scenario.diskAlign !== null && sector >= scenario.diskAlign ? null : scenario.diskAlign;
  if (options.resourceCheck !== false) checkResources(scenarioResourceNeeds(scenario, kind));
  // Marked and locked for the run's life, so that a killed repro's guest image is reclaimed.
  const scratch = ScratchDir.make("repro");
  const guestPath = join(scratch.path, "guest.img");
  try {
    // The disk starts sparse: it reads as zeros.
    using disk = ScratchDisk.make({ kind, sector, size: scenario.diskSize, reflink: scenario.diskReflink });
    using memory = GuestMemory.create(guestPath, scenario.guestSize);
    const shouldStop = options.shouldStop ?? (() => false);
    const context: Context = { scenario, memory, guestPath, diskPath: disk.path, diskAlign, diskMemAlign: scenario.diskMemAlign, shouldStop };
    const steps: StepResult[] = [];
    let interrupted = false;
    for (const [index, step] of scenario.steps.entries()) {
      if (shouldStop()) {
        interrupted = true;
        break;
      }
      try {
        steps.push(await runStep(context, step, index));
      } catch (error) {
        if (!(error instanceof StepStopped)) throw error;
        interrupted = true;
        break;
      }
    }
    const passed = !interrupted && steps.every((s) => s.passed);
    return { file: scenario.file, name: scenario.name, expected: scenario.expected, buggy: scenario.buggy, passed, steps, interrupted };
  } finally {
    scratch.remove();
  }
}

interface Context {
  scenario: Scenario;
  memory: GuestMemory;
  guestPath: string;
  diskPath: string;
  /** The simulated disk's block (`disk.align`), unless a real disk of those sectors stands in. */
  diskAlign: number | null;
  diskMemAlign: number | null;
  /** True once the run is to stop: long fills and checks look between chunks (`StepStopped`). */
  shouldStop: () => boolean;
}

/** Thrown between the chunks of a long fill or check when the run is to stop; the scenario ends there. */
class StepStopped extends Error {
  constructor() {
    super("stopped");
  }
}

function stopIfAsked(context: Context): void {
  if (context.shouldStop()) throw new StepStopped();
}

/** The alignment overrides of the scenario's simulated disk, for `Disk.open`. */
function overrides(context: Context): { alignOverride?: number; memAlignOverride?: number } {
  return { alignOverride: context.diskAlign ?? undefined, memAlignOverride: context.diskMemAlign ?? undefined };
}

async function runStep(context: Context, step: Step, index: number): Promise<StepResult> {
  const expected = "expect" in step && step.expect !== undefined ? definedFields(step.expect as Record<string, unknown>) : null;
  const result = (name: string, passed: boolean, detail: string, decision: string | null = null, error: string | null = null, actual: Record<string, unknown> = {}): StepResult => ({
    index,
    step: name,
    passed,
    decision,
    error,
    detail,
    expected,
    actual: { decision, error, ...actual },
  });
  try {
    switch (step.kind) {
      case "fill":
        fill(context, step);
        return result(`fill ${step.target}`, true, `${step.pattern}${step.pattern === "random" ? ` (seed ${step.seed})` : ""}`);
      case "io":
      case "plan":
        return await ioOrPlan(context, step, result);
      case "check": {
        const mismatch = check(context, step);
        return result(`check ${step.what}`, mismatch === null, mismatch ?? "bytes match");
      }
      case "concurrent":
        return await concurrent(context, step, result);
      case "linear": {
        const { memory } = context;
        try {
          const owned = OwnedRequestBuffers.linear(step.offset, step.len, step.write);
          owned.buffer(memory).reader().readBytes(); // the pages can be read: nothing is out of range
          const gpns = owned.gpns;
          const wanted = step.expect.gpns;
          const passed = step.expect.error === undefined && (wanted === undefined || sameList(gpns, wanted));
          const detail = `pages ${formatGpnList(gpns)}${wanted !== undefined && !passed ? ` (expected ${formatGpnList(wanted)})` : ""}`;
          return result("linear", passed, detail);
        } catch (error) {
          return errorResult("linear", error, step.expect.error, result);
        }
      }
      case "budget":
        return await budget(step, result);
      case "request":
        return request(context, step, result);
      case "probe": {
        const alignment = step.empirical ? probeAlignment(context.diskPath) : discoverAlignment(context.diskPath);
        const problems: string[] = [];
        const e = step.expect;
        if (e.source !== undefined && alignment.source !== e.source) problems.push(`source ${alignment.source}, expected ${e.source}`);
        if (e.notSource !== undefined && alignment.source === e.notSource) problems.push(`source must not be ${e.notSource}`);
        if (e.directIo !== undefined && alignment.directIo !== e.directIo) problems.push(`directIo ${alignment.directIo}, expected ${e.directIo}`);
        if (e.memAlign !== undefined && alignment.memAlign !== e.memAlign) problems.push(`memAlign ${alignment.memAlign}, expected ${e.memAlign}`);
        if (e.offsetAlign !== undefined && alignment.offsetAlign !== e.offsetAlign) problems.push(`offsetAlign ${alignment.offsetAlign}, expected ${e.offsetAlign}`);
        if (e.readOffsetAlign !== undefined && alignment.readOffsetAlign !== e.readOffsetAlign) {
          problems.push(`readOffsetAlign ${alignment.readOffsetAlign}, expected ${e.readOffsetAlign}`);
        }
        const found = `memory ${alignment.memAlign}, offset ${alignment.offsetAlign}, read offset ${alignment.readOffsetAlign} (${alignment.source})`;
        return result("probe", problems.length === 0, problems.length === 0 ? found : `${found}: ${problems.join("; ")}`);
      }
    }
  } catch (error) {
    if (error instanceof StepStopped || isOutOfDescriptors(error)) throw error;
    const code = error instanceof BounceBenchError ? error.code : "INTERNAL";
    return result(step.kind, false, error instanceof Error ? error.message : String(error), null, code);
  }
}

type Result = (name: string, passed: boolean, detail: string, decision?: string | null, error?: string | null, actual?: Record<string, unknown>) => StepResult;

/** `fields` without its undefined ones (what a JSON document shows). */
function definedFields(fields: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(fields).filter(([, value]) => value !== undefined));
}

function errorResult(name: string, error: unknown, expected: string | undefined, result: Result, decision: string | null = null): StepResult {
  if (!(error instanceof BounceBenchError) || isOutOfDescriptors(error)) throw error;
  if (expected === undefined) return result(name, false, error.message, decision, error.code);
  const passed = error.code === expected;
  return result(name, passed, passed ? error.message : `${error.message} (expected ${expected})`, decision, error.code);
}

function fill(context: Context, step: Extract<Step, { kind: "fill" }>): void {
  if (step.target === "guest") {
    for (const [i, gpn] of step.gpns!.entries()) {
      if (i % (CHUNK / PAGE_SIZE) === 0) stopIfAsked(context);
      context.memory.checkPage(gpn, "fill");
      context.memory.write(gpn * PAGE_SIZE, patternBytes(step.pattern, step.seed, gpn * PAGE_SIZE, PAGE_SIZE));
    }
    context.memory.sync();
    return;
  }
  const len = step.len ?? context.scenario.diskSize - step.at;
  if (step.at + len > context.scenario.diskSize) {
    throw new BounceBenchError("INVALID_INPUT", `fill of disk ${step.at}+${len} goes past its end (${context.scenario.diskSize} bytes)`);
  }
  const fd = openSync(context.diskPath, "r+");
  try {
    for (const [offset, n] of chunks(step.at, len)) {
      stopIfAsked(context);
      const bytes = patternBytes(step.pattern, step.seed, step.at + offset, n);
      for (let done = 0; done < n; ) done += writeSync(fd, bytes, done, n - done, step.at + offset + done);
    }
    // On the device, and out of the page cache: the direct IO that follows meets blocks that
    // hold these bytes, never delayed allocation or cached pages the kernel must write first.
    fsyncSync(fd);
    dropCachedPages(fd, step.at, len);
  } finally {
    closeSync(fd);
  }
}

async function ioOrPlan(context: Context, step: Extract<Step, { kind: "io" | "plan" }>, result: Result): Promise<StepResult> {
  const name = `${step.kind} ${step.op}`;
  const segments = step.segments.map((s) => new PagedRange(s.offset, s.len, s.gpns));
  let decided: Plan | null = null;
  let watch: RefusalWatch | null = null;
  try {
    const rules = step.rules ?? context.scenario.rules;
    if (step.kind === "plan") {
      // A plan step's own `align` plans for a disk of that block size, whatever the disk under
      // the scenario is (no IO is done, so it need not be stricter than the real one).
      const discovered = discoverAlignment(context.diskPath);
      const memAlign = context.diskMemAlign ?? undefined;
      const alignment =
        step.align !== null
          ? overrideAlignment(null, step.align, memAlign)
          : context.diskAlign === null && memAlign === undefined
            ? discovered
            : overrideAlignment(discovered, context.diskAlign ?? undefined, memAlign);
      if (step.kernel !== null) return kernelStep(context, step, step.kernel, segments, alignment, result);
      decided = plan({ op: step.op, mode: step.mode, at: step.at, segments, alignment, rules });
      return judge(name, decided, null, step.expect, result);
    }
    using disk = Disk.open(context.diskPath, { write: step.op === "write", direct: step.mode !== "buffered", ...overrides(context) });
    decided = plan({ op: step.op, mode: step.mode, at: step.at, segments, alignment: disk.alignment, rules });
    // Whether a refused forced direct IO changed the disk or guest memory first: compared before and after.
    if (step.mode === "direct") watch = new RefusalWatch(context.diskPath, decided.diskStart, decided.diskEnd - decided.diskStart, context.memory, segments);
    const done = await executePlan(decided, context.memory, disk, { fua: step.fua });
    context.memory.sync();
    return judge(name, decided, done.bytes, step.expect, result);
  } catch (error) {
    const outcome = errorResult(name, error, step.expect.error, result, decided?.decision ?? null);
    if (watch === null) return outcome;
    const changes = watch.changes();
    const diskChanged = changes.diskChangedAt !== null;
    const guestChanged = changes.guestBytesChanged > 0;
    const problems: string[] = [];
    if (step.expect.diskChanged !== undefined && step.expect.diskChanged !== diskChanged) problems.push(`the disk ${diskChanged ? "changed" : "did not change"} before the refusal, expected the opposite; `);
    if (step.expect.guestChanged !== undefined && step.expect.guestChanged !== guestChanged) problems.push(`guest memory ${guestChanged ? "changed" : "did not change"} before the refusal, expected the opposite; `);
    const guestSaid = guestChanged ? `guest memory DID change (${changes.guestBytesChanged} bytes)` : "guest memory did not change";
    return {
      ...outcome,
      passed: outcome.passed && problems.length === 0,
      detail: `${problems.join("")}${outcome.detail}; the disk ${diskChanged ? "DID change" : "did not change"} and ${guestSaid} before the refusal`,
      actual: { ...outcome.actual, diskChanged, guestChanged },
    };
  }
}

/**
 * A plan step with `kernel`: whether that kernel takes the IO directly (`kernelVerdicts`). Taken
 * is the decision `direct`; refused is the error EINVAL, naming the rule that fails. `current` is
 * the running kernel, measured on the scenario's disk.
 */
function kernelStep(context: Context, step: Extract<Step, { kind: "plan" }>, kernel: string, segments: PagedRange[], alignment: DiskAlignment, result: Result): StepResult {
  const name = `plan ${step.op} (kernel ${kernel})`;
  let current = null;
  if (kernel === "current") {
    using disk = Disk.open(context.diskPath, { write: false, direct: false });
    current = disk.kernelChecks;
  }
  const [verdict] = kernelVerdicts({ op: step.op, at: step.at, segments, alignment }, kernel, current);
  if (verdict!.takes) return judge(name, plan({ op: step.op, mode: "direct", at: step.at, segments, alignment }), null, step.expect, result);
  return errorResult(name, new BounceBenchError("EINVAL", `kernel ${kernel} (${verdict!.kernels}) refuses it in direct mode: ${verdict!.problem}`), step.expect.error, result, "direct");
}

/** Compares a successful IO or plan with its expectations. */
function judge(name: string, decided: Plan, bytes: number | null, expect: IoExpect, result: Result): StepResult {
  const problems: string[] = [];
  if (expect.error !== undefined) problems.push(`expected ${expect.error}, but it succeeded`);
  if (expect.decision !== undefined && decided.decision !== expect.decision) problems.push(`decision ${decided.decision}, expected ${expect.decision}`);
  if (expect.bytes !== undefined && bytes !== expect.bytes) problems.push(`${bytes ?? 0} bytes, expected ${expect.bytes}`);
  if (expect.reason !== undefined && !decided.reasons.some((reason) => reason.includes(expect.reason!))) {
    problems.push(`no reason mentions ${JSON.stringify(expect.reason)}`);
  }
  const summary = [
    bytes === null ? `${decided.len} bytes planned` : `${bytes} bytes`,
    decided.bouncePages > 0 ? `${decided.copiedBytes} copied through ${decided.bouncePages} bounce page${decided.bouncePages === 1 ? "" : "s"}` : null,
    decided.reasons.length > 0 ? decided.reasons.join("; ") : null,
  ]
    .filter((part) => part !== null)
    .join("; ");
  const actual = { bytes: bytes ?? decided.len, copiedBytes: decided.copiedBytes, reasons: decided.reasons };
  return result(name, problems.length === 0, problems.length === 0 ? summary : `${problems.join("; ")} (${summary})`, decided.decision, null, actual);
}

/**
 * Bytes a fill or check handles at a time, so a GiB-sized scenario holds a few of these rather
 * than its disk several times over. Chunks end at multiples of it on the disk (and of a page in
 * guest memory), so no stamped word is ever split between two.
 */
const CHUNK = 4 * 2 ** 20;

/** `[offset, len)` pieces of `[0, total)` whose disk ends (`at` + end) fall on multiples of CHUNK. */
function* chunks(at: number, total: number): Generator<[number, number]> {
  for (let offset = 0; offset < total; ) {
    const len = Math.min(CHUNK - ((at + offset) % CHUNK), total - offset);
    yield [offset, len];
    offset += len;
  }
}

/** Null when the step's bytes match, else where they first differ. */
function check(context: Context, step: CheckStep): string | null {
  const { memory, diskPath, scenario } = context;
  if (step.what === "guest-equals-pattern") {
    const gpns = step.gpns!;
    const perChunk = CHUNK / PAGE_SIZE;
    for (let first = 0; first < gpns.length; first += perChunk) {
      stopIfAsked(context);
      const group = gpns.slice(first, first + perChunk);
      const actual = new Uint8Array(group.length * PAGE_SIZE);
      const expected = new Uint8Array(group.length * PAGE_SIZE);
      group.forEach((gpn, i) => {
        memory.checkPage(gpn, "check");
        memory.read(gpn * PAGE_SIZE, actual.subarray(i * PAGE_SIZE, (i + 1) * PAGE_SIZE));
        expected.set(patternBytes(step.pattern, step.seed, gpn * PAGE_SIZE, PAGE_SIZE), i * PAGE_SIZE);
      });
      const i = firstDifference(actual, expected);
      if (i < 0) continue;
      const gpa = group[Math.floor(i / PAGE_SIZE)]! * PAGE_SIZE + (i % PAGE_SIZE);
      // Stamped words never cross a page, so `gpa - i` locates the word around byte i.
      const note = stampNote(actual, i, gpa - i, scenario, step.pattern === "stamp" ? gpa : null);
      return `guest byte ${hex(gpa)} is 0x${hexByte(actual[i]!)}, the ${step.pattern} pattern has 0x${hexByte(expected[i]!)}${note}`;
    }
    return null;
  }
  const fromGuest = step.what === "disk-equals-guest";
  const segments = fromGuest ? step.segments.map((s) => new PagedRange(s.offset, s.len, s.gpns)) : [];
  const len = fromGuest ? segments.reduce((sum, segment) => sum + segment.len, 0) : step.len!;
  if (step.at + len > scenario.diskSize) {
    throw new BounceBenchError("INVALID_INPUT", `check of disk ${step.at}+${len} goes past its end (${scenario.diskSize} bytes)`);
  }
  // The segments' guest bytes, read on as the disk is: one reader per segment, in order.
  const readers = segments.map((segment) => new RequestBuffers(memory, segment, false).reader());
  const guestNext = (n: number): Uint8Array => {
    const bytes = new Uint8Array(n);
    for (let done = 0; done < n; ) {
      const reader = readers.find((r) => r.len > 0)!;
      const take = Math.min(reader.len, n - done);
      reader.read(bytes.subarray(done, done + take));
      done += take;
    }
    return bytes;
  };
  for (const [offset, n] of chunks(step.at, len)) {
    stopIfAsked(context);
    const expected = fromGuest ? guestNext(n) : patternBytes(step.pattern, step.seed, step.at + offset, n);
    const actual = readDiskBytes(diskPath, step.at + offset, n);
    const j = firstDifference(actual, expected);
    if (j < 0) continue;
    const i = offset + j;
    const what = fromGuest ? "guest" : `the ${step.pattern} pattern`;
    const note = stampNote(actual, j, step.at + offset, scenario, stampAt(expected, step.at + offset, j, Number.MAX_SAFE_INTEGER));
    return `first difference at byte ${i} (disk offset ${step.at + i}): disk 0x${hexByte(actual[j]!)}, ${what} 0x${hexByte(expected[j]!)}${note}`;
  }
  return null;
}

function firstDifference(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return i;
  return -1;
}

/** `; the bytes there are stamped 0x2200 (expected 0x1200)` when the word found is a stamp. */
function stampNote(actual: Uint8Array, at: number, address: number, scenario: Scenario, expected: number | null): string {
  const limit = Math.max(scenario.guestSize, scenario.diskSize);
  const found = stampAt(actual, address, at, limit);
  if (found === null) return "";
  return `; the bytes found there are stamped ${hex(found)}${expected !== null ? ` (expected ${hex(expected)})` : ""}: they came from address ${hex(found)} (a guest physical address if copied from guest memory, a disk offset if never overwritten)`;
}

async function concurrent(context: Context, step: ConcurrentStep, result: Result): Promise<StepResult> {
  const name = `concurrent ${step.ios.length} IOs${step.locks ? "" : " (no range locks)"}`;
  const before = readDiskBytes(context.diskPath, 0, context.scenario.diskSize);
  using disk = Disk.open(context.diskPath, { write: true, direct: true, ...overrides(context) });
  using queue = new IoQueue(step.qd);
  const locks = step.locks ? new RangeLocks() : undefined;
  const completed: number[] = [];
  const work = step.ios.map((io, i) => {
    const segments = io.segments.map((s) => new PagedRange(s.offset, s.len, s.gpns));
    const decided = plan({ op: io.op, mode: io.mode, at: io.at, segments, alignment: disk.alignment, rules: context.scenario.rules });
    return executePlan(decided, context.memory, disk, { queue, locks }).then(() => {
      completed.push(i);
      return decided;
    });
  });
  const settled = await queue.drive(work);
  const failure = settled.find((s): s is PromiseRejectedResult => s.status === "rejected");
  if (failure !== undefined) return errorResult(name, failure.reason, step.expect.error, result);
  // The disk must equal the writes replayed one after the other in completion order.
  const model = before; // replayed in place
  for (const i of completed) {
    const io = step.ios[i]!;
    if (io.op !== "write") continue;
    const bytes = guestBytes(context.memory, io.segments.map((s) => new PagedRange(s.offset, s.len, s.gpns)));
    model.set(bytes, io.at);
  }
  const after = readDiskBytes(context.diskPath, 0, context.scenario.diskSize);
  const difference = firstDifference(after, model);
  const replayed = difference < 0;
  const decisions = settled.map((s) => (s.status === "fulfilled" ? s.value.decision : "error")).join(", ");
  const order = `completion order ${completed.join(", ")}`;
  const detail = replayed
    ? `${order}: the disk equals the writes replayed in that order`
    : `${order}: the disk differs from the replay at offset ${difference} (disk 0x${hexByte(after[difference]!)}, replay 0x${hexByte(model[difference]!)}): a write was lost`;
  const passed = replayed === (step.expect.replay ?? true) && step.expect.error === undefined;
  return result(name, passed, passed || step.expect.error === undefined ? detail : `${detail} (expected ${step.expect.error})`, decisions);
}

/** One operation on a RequestBuffers over the scenario's guest memory. */
function request(context: Context, step: RequestStep, result: Result): StepResult {
  const name = `request ${step.operation} (${step.writable ? "guest-writable" : "read-only"})`;
  const range = new PagedRange(step.segment.offset, step.segment.len, step.segment.gpns);
  const buffers = new RequestBuffers(context.memory, range, step.writable);
  let len: number;
  try {
    switch (step.operation) {
      case "lock-for-write":
      case "lock-for-read": {
        using iovecs = buffers.lock(step.operation === "lock-for-write");
        len = iovecs.totalBytes();
        break;
      }
      case "read": {
        const reader = buffers.reader();
        len = reader.len;
        reader.readBytes(step.bytes ?? reader.len);
        break;
      }
      case "write":
      case "fill": {
        const writer = buffers.writer();
        len = writer.len;
        const n = step.bytes ?? buffers.len;
        if (step.operation === "write") writer.write(patternBytes("random", 7, 0, n));
        else writer.fill(0xee, n);
        break;
      }
    }
  } catch (error) {
    return errorResult(name, error, step.expect.error, result);
  }
  context.memory.sync();
  const problems: string[] = [];
  if (step.expect.error !== undefined) problems.push(`expected ${step.expect.error}, but it succeeded`);
  if (step.expect.len !== undefined && len !== step.expect.len) problems.push(`length ${len}, expected ${step.expect.len}`);
  const detail = `length ${len}`;
  return result(name, problems.length === 0, problems.length === 0 ? detail : `${detail}: ${problems.join("; ")}`);
}

async function budget(step: BudgetStep, result: Result): Promise<StepResult> {
  const served: string[] = [];
  const buffers = new Map<string, TrackedBounceBuffer>();
  const tick = () => new Promise((resolve) => setImmediate(resolve));
  let requested = 0;
  let outcome: string[];
  try {
    const tracker = new BounceBufferTracker(step.pages, step.threads);
    for (const action of step.actions) {
      if ("release" in action) {
        const buffer = buffers.get(action.release);
        if (buffer === undefined) {
          for (const held of buffers.values()) held.release();
          return result("budget", false, `release of ${JSON.stringify(action.release)} before it was served (served so far: ${served.join(", ") || "none"})`);
        }
        buffer.release();
      } else {
        const pending = tracker.acquire(action.acquire, action.thread);
        requested++;
        pending.then(
          (buffer) => {
            served.push(action.as);
            buffers.set(action.as, buffer);
          },
          () => {},
        );
        await Promise.race([pending, tick()]); // an invalid request fails here, at once
      }
      await tick();
    }
    await tick();
    outcome = [...served];
    // Leave nothing behind: release everything until the requests still waiting are served too.
    for (let round = 0; round <= requested && (buffers.size > 0 || served.length < requested); round++) {
      for (const [name, buffer] of buffers) {
        buffer.release();
        buffers.delete(name);
      }
      await tick();
    }
  } catch (error) {
    for (const buffer of buffers.values()) buffer.release();
    return errorResult("budget", error, step.expect.error, result);
  }
  const problems: string[] = [];
  if (step.expect.error !== undefined) problems.push(`expected ${step.expect.error}, but every request was valid`);
  if (step.expect.served !== undefined && !sameList(outcome, step.expect.served)) problems.push(`expected ${step.expect.served.join(", ")}`);
  const detail = `served ${outcome.join(", ") || "none"}`;
  return result("budget", problems.length === 0, problems.length === 0 ? detail : `${detail}: ${problems.join("; ")}`);
}

function sameList<T>(a: readonly T[], b: readonly T[]): boolean {
  return a.length === b.length && a.every((value, i) => value === b[i]);
}

function hexByte(value: number): string {
  return value.toString(16).padStart(2, "0");
}
