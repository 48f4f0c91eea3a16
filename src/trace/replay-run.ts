/**
 * A whole replay, as `bounce-bench replay` and the library run it: the disk whose rules judge
 * (a disk named, a scratch disk of a kind, or the alignment the trace's header recorded), the
 * rule sets and kernel rule sets, the analysis pass over the trace (`ReplayAnalysis`) and, with
 * `execute`, a second pass that does the IOs (`executeReplay`) on the disk (`BenchWorkspace`:
 * the same safety as bench: an existing file written only with `force`, a block device only
 * with `overwriteDevice`, a scratch disk made, filled and removed).
 */
import { DEFAULT_ALIGNMENT, isPowerOfTwo, MAX_SIMULATED_ALIGNMENT, RULE_SETS, type DiskAlignment, type RuleSet } from "../base/alignment-rules";
import { BounceBenchError, InvalidInputError } from "../base/errors";
import type { DiskKind, SectorSize } from "../base/disk-kinds";
import { PAGE_SIZE } from "../base/constants";
import { openUserFile, statusOrNull } from "../host/files";
import { ScratchDisk } from "../host/scratch-disks";
import { O_NONBLOCK, O_RDONLY } from "../native";
import { discoverAlignment } from "../disk/alignment";
import { Disk } from "../disk/disk";
import type { EngineName } from "../io/engines";
import { alignmentJson, type AlignmentJson } from "../io/json-documents";
import { GuestMemory } from "../memory/guest-memory";
import { BenchWorkspace } from "../bench/workspace";
import { readTrace, type TraceEnd, type TraceHeader } from "./trace-format";
import { NAMED_KERNELS, namedKernel, ReplayAnalysis, type ReplayKernel, type ReplaySummary } from "./replay";
import { executeReplay, slotPagesFor, type ReplayMeasurement } from "./replay-execute";

export interface ReplayOptions {
  trace: string;
  disk?: string;
  diskKind?: DiskKind;
  sector?: SectorSize;
  rules: RuleSet | "all";
  /** A named kernel rule set, `current` (measured on the disk) or `all`. */
  kernel: string;
  execute?: {
    pace: "fast" | "trace";
    qd?: number;
    engine: EngineName;
    verify: boolean;
    force: boolean;
    overwriteDevice: boolean;
  };
  stop?: Int32Array;
  onProgress?: (what: string) => void;
}

export interface ReplayReport {
  trace: string;
  header: Pick<TraceHeader, "tool" | "started" | "kernel" | "synthetic" | "captured">;
  end: TraceEnd | null;
  /** The disk judged against, and where its alignment came from. */
  disk: { path: string | null; kind: DiskKind | null; alignment: AlignmentJson; from: string };
  kernels: { name: string; kernels: string }[];
  summary: ReplaySummary;
  execute: ReplayMeasurement | null;
}

/** Largest scratch disk a replay makes: offsets beyond it are wrapped. */
const MAX_SCRATCH_BYTES = 256 * 2 ** 20;
/** IOs between progress reports. */
const PROGRESS_EVERY = 1_000_000;

function openTrace(path: string) {
  const status = statusOrNull(path, "trace");
  if (status === null) throw new InvalidInputError(`trace ${path}: no such file`);
  if (status.type !== "file") throw new InvalidInputError(`trace ${path}: is a ${status.type}, not a regular file`);
  return readTrace(openUserFile(path, O_RDONLY | O_NONBLOCK, "trace"), `trace ${path}`);
}

/** The header's disk alignment, checked (a trace is input): null when it has none or it is malformed. */
function headerAlignment(header: TraceHeader): DiskAlignment | null {
  const a = header.disk?.alignment as Partial<DiskAlignment> | undefined;
  if (a === undefined || a === null || typeof a !== "object") return null;
  const ok = (n: unknown) => typeof n === "number" && isPowerOfTwo(n) && n <= MAX_SIMULATED_ALIGNMENT;
  if (!ok(a.memAlign) || !ok(a.offsetAlign) || !ok(a.readOffsetAlign) || a.directIo !== true) return null;
  const recorded = "the trace's header (probed when it was captured)";
  return {
    directIo: true,
    memAlign: a.memAlign!,
    offsetAlign: a.offsetAlign!,
    readOffsetAlign: a.readOffsetAlign!,
    source: "override",
    sources: { memAlign: recorded, offsetAlign: recorded, readOffsetAlign: recorded },
    ...(a.blockDevice === true ? { blockDevice: true } : {}),
  };
}

export async function runReplay(options: ReplayOptions): Promise<ReplayReport> {
  if (options.disk !== undefined && options.diskKind !== undefined) throw new InvalidInputError("replay: give --disk or --disk-kind, not both");
  if (options.kernel !== "all" && options.kernel !== "current" && !NAMED_KERNELS.includes(options.kernel)) {
    throw new InvalidInputError(`--kernel ${options.kernel}: not one of ${[...NAMED_KERNELS, "current", "all"].join(", ")}`);
  }
  if (options.kernel === "current" && options.disk === undefined && options.diskKind === undefined && options.execute === undefined) {
    throw new InvalidInputError("--kernel current is measured on a disk: give --disk, --disk-kind or --execute");
  }
  if (options.execute !== undefined && options.rules === "all") throw new InvalidInputError("replay --execute does the IOs as one rule set plans them: give --rules (kernel, seed, qemu, cloud-hypervisor, openvmm)");
  if (options.disk !== undefined) {
    const status = statusOrNull(options.disk, "--disk");
    if (status === null) throw new InvalidInputError(`--disk ${options.disk}: no such file`);
    if (status.type !== "file" && status.type !== "block-device") throw new InvalidInputError(`--disk ${options.disk}: is a ${status.type}, not a regular file or block device`);
  }
  // Reading the header checks the trace before any disk is made.
  const first = openTrace(options.trace);
  first.ios.return(undefined);

  // With --execute, the disk the IOs are done on is the one whose rules judge: what the
  // replay prints is what it does. Making it needs the trace's extent: a first, quick pass.
  let workspace: BenchWorkspace | null = null;
  let slotPages = 1;
  try {
    if (options.execute !== undefined) {
      const extent = { maxEnd: 0, reads: 0, writes: 0 };
      const scan = openTrace(options.trace);
      for (const io of scan.ios) {
        const len = io.iovecs.reduce((sum, [, l]) => sum + l, 0);
        if (len === 0 || io.iovecsTotal !== undefined) continue;
        extent.maxEnd = Math.max(extent.maxEnd, io.offset + len);
        if (io.op === "read") extent.reads++;
        else extent.writes++;
        slotPages = Math.max(slotPages, slotPagesFor(io));
      }
      const qd = options.execute.qd ?? Math.max(1, scan.end()?.maxInFlight ?? 1);
      workspace = await BenchWorkspace.prepare({
        diskPath: options.disk,
        diskSize: Math.min(MAX_SCRATCH_BYTES, Math.max(2 ** 20, Math.ceil(extent.maxEnd / 2 ** 20) * 2 ** 20)),
        guestBytes: qd * slotPages * PAGE_SIZE,
        writesDisk: extent.writes > 0,
        overwriteDevice: options.execute.overwriteDevice,
        writesGuest: extent.reads > 0,
        force: options.execute.force,
        diskKind: options.diskKind,
        sector: options.sector,
        needsDirectIo: true,
        stop: options.stop,
      });
    }
    // The disk whose rules judge, and the running kernel's checks on it when there is one.
    let alignment: DiskAlignment;
    let from: string;
    let current: ReplayKernel | null = null;
    const measure = (path: string): ReplayKernel => {
      using disk = Disk.open(path, { write: false, direct: false });
      const checks = disk.kernelChecks;
      return { name: "current", checks: { lengthsByMemory: checks.lengthsByMemory, onePageAnyAddress: checks.onePageAnyAddress }, memoryIsBlock: false, kernels: "the running kernel, measured on the disk" };
    };
    const wantsCurrent = options.kernel === "current" || options.kernel === "all";
    const kindText = (kind: DiskKind) => `a scratch ${kind} disk${options.sector === undefined ? "" : ` of ${options.sector}-byte sectors`}`;
    if (workspace !== null) {
      alignment = workspace.disk.alignment;
      from = `${workspace.scratch === null ? `--disk ${options.disk}` : kindText(workspace.scratch.kind)}, where --execute does the IOs (${alignment.source})`;
      if (wantsCurrent) current = measure(workspace.diskPath);
    } else if (options.disk !== undefined) {
      alignment = discoverAlignment(options.disk);
      from = `--disk ${options.disk} (${alignment.source})`;
      if (wantsCurrent) current = measure(options.disk);
    } else if (options.diskKind !== undefined) {
      using scratch = ScratchDisk.make({ kind: options.diskKind, sector: options.sector, size: 16 * 2 ** 20 });
      alignment = discoverAlignment(scratch.path);
      from = `${kindText(options.diskKind)} (${alignment.source})`;
      if (wantsCurrent) current = measure(scratch.path);
    } else {
      const recorded = headerAlignment(first.header);
      alignment = recorded ?? DEFAULT_ALIGNMENT;
      from = recorded === null ? "no disk named and none in the trace: a 4 KiB-sector disk with 512-byte memory alignment" : `the trace's header (${first.header.disk!.path})`;
    }
    if (!alignment.directIo) throw new BounceBenchError("NO_DIRECT_IO", `${from}: its filesystem does no direct IO`);
    const kernels: ReplayKernel[] =
      options.kernel === "all" ? [...NAMED_KERNELS.map(namedKernel), ...(current === null ? [] : [current])] : options.kernel === "current" ? [current!] : [namedKernel(options.kernel)];
    const rules: RuleSet[] = options.rules === "all" ? [...RULE_SETS] : [options.rules];

    const analysis = new ReplayAnalysis(alignment, rules, kernels);
    const reader = openTrace(options.trace);
    let seen = 0;
    for (const io of reader.ios) {
      if (options.stop !== undefined && Atomics.load(options.stop, 0) !== 0) {
        reader.ios.return(undefined);
        throw new BounceBenchError("INTERRUPTED", `replay stopped after ${seen} IOs of ${options.trace}`);
      }
      analysis.add(io);
      if (++seen % PROGRESS_EVERY === 0) options.onProgress?.(`${seen} IOs judged`);
    }
    const summary = analysis.finish();
    const end = reader.end();
    let execute: ReplayMeasurement | null = null;
    if (workspace !== null && options.execute !== undefined) {
      const e = options.execute;
      const qd = e.engine === "sync" ? 1 : e.qd ?? Math.max(1, end?.maxInFlight ?? 1);
      using memory = "path" in workspace.guest ? GuestMemory.open(workspace.guest.path) : GuestMemory.borrow(workspace.guest.address, workspace.guest.size, "replay guest");
      options.onProgress?.(`doing ${summary.ios} IOs on ${workspace.diskPath} at queue depth ${qd}`);
      execute = await executeReplay(openTrace(options.trace).ios, {
        memory,
        disk: workspace.disk,
        rules: rules[0]!,
        engine: e.engine,
        qd,
        slotPages,
        pace: e.pace,
        verify: e.verify,
        fileLocks: workspace.scratch === null,
        stop: options.stop,
        onProgress: (done) => {
          if (done % PROGRESS_EVERY === 0) options.onProgress?.(`${done} IOs done`);
        },
      });
    }
    return {
      trace: options.trace,
      header: { tool: first.header.tool, started: first.header.started, kernel: first.header.kernel, synthetic: first.header.synthetic, captured: first.header.captured },
      end,
      disk: { path: workspace?.diskPath ?? options.disk ?? null, kind: options.diskKind ?? null, alignment: alignmentJson(alignment), from },
      kernels: kernels.map((k) => ({ name: k.name, kernels: k.kernels })),
      summary,
      execute,
    };
  } finally {
    workspace?.cleanup();
  }
}
