/**
 * `bounce-bench bench`: throughput and latency across the product of the listed values, and
 * what bouncing costs next to direct IO.
 */
import { Option, type Command } from "commander";
import { fioJobFile } from "../../src/bench/fio-job";
import { writeUserTextFile } from "../../src/host/files";
import { BENCH_OPS, type BenchOp } from "../../src/bench/job";
import { DEFAULT_BENCH, formatBytes, runBench, validateBenchOptions, type BenchCaseResult, type BenchOptions, type BenchReport } from "../../src/bench/runner";
import type { BenchWorkspace } from "../../src/bench/workspace";
import { DEFAULT_BOUNCE_PAGES_PER_THREAD } from "../../src/base/constants";
import { ENGINE_NAMES, type EngineName } from "../../src/io/engines";
import { BounceBenchError, InvalidInputError } from "../../src/base/errors";
import { IO_MODES, type IoMode } from "../../src/io/planner";
import { parseSegment, parseSize } from "../../src/base/value-parsers";
import { describeAlignment, table } from "../format";
import type { Context } from "../main";
import type { RuleSet } from "../../src/base/alignment-rules";
import { DISK_KINDS, SECTOR_SIZES, type DiskKind, type SectorSize } from "../../src/base/disk-kinds";
import { sharedOptions } from "../options";
import { SignalGuard } from "../signals";
import { VERSION } from "../version";

interface BenchFlags {
  guest?: string;
  disk?: string;
  size: string;
  op: string;
  bs: string;
  memOffset: string;
  mode: string;
  engine: string;
  qd: string;
  threads: string;
  budget: string;
  runtime?: string;
  ios?: string;
  align?: number;
  memAlign?: number;
  rules: RuleSet;
  diskKind: DiskKind;
  sector?: string;
  fua?: boolean;
  force?: boolean;
  hugePages: boolean;
  emitFio?: string;
  json?: boolean;
  seg?: string[];
}

export function registerBench(program: Command, context: Context): void {
  program
    .command("bench")
    .description(
      "Measure what alignment costs: throughput, IOPS and latency for every combination of the listed ops, block sizes, " +
        "memory offsets and modes, with the decision taken and the cost of bouncing next to direct IO. Without --guest and " +
        "--disk, scratch files are made in the temporary directory and removed afterwards (also on Ctrl-C).",
    )
    .option("--guest <path>", "guest image to use (created if missing; an existing one needs --force for read workloads)")
    .option("--disk <path>", "disk file or device to use (created and filled if missing; an existing one needs --force for write workloads)")
    .option("--size <n>", "size of a disk file bounce-bench creates", formatBytes(DEFAULT_BENCH.size))
    .addOption(
      new Option(
        "--disk-kind <kind>",
        "the scratch disk to make when no --disk is given: file (in the temporary directory); loop (a real block device over a scratch file); " +
          "ext4, xfs, btrfs (that filesystem on a loop device); tmpfs. All but file need root; everything made is torn down afterwards",
      )
        .choices(DISK_KINDS as string[])
        .default("file"),
    )
    .option("--sector <bytes>", "logical sector size of the loop device under loop, ext4, xfs and btrfs disks: 512 or 4096 (a 4Kn disk)")
    .option("--op <list>", `workloads: ${BENCH_OPS.join(", ")}`, DEFAULT_BENCH.ops.join(","))
    .option("--bs <list>", "block sizes (multiples of 512)", DEFAULT_BENCH.bs.map(formatBytes).join(","))
    .option("--mem-offset <list>", "offsets of the guest buffers within their first page (0 .. 4095)", DEFAULT_BENCH.memOffsets.join(","))
    .option("--mode <list>", `modes: ${IO_MODES.join(", ")}`, DEFAULT_BENCH.modes.join(","))
    .option(
      "--seg <segment>",
      "a request shape instead of --bs/--mem-offset: a segment GPNS[@OFFSET][+LEN] with GPNs counted from each slot's first page; repeat for a scatter-gather list (e.g. --seg 0@512+3584 --seg 2@0+512)",
      (value: string, previous: string[] = []) => [...previous, value],
    )
    .addOption(new Option("--engine <name>", "sync: preadv/pwritev; uring: io_uring at --qd; null: no IO (the tool's own cost)").choices(ENGINE_NAMES as string[]).default(DEFAULT_BENCH.engine))
    .option("--qd <n>", "IOs in flight per thread (uring and null engines)", String(DEFAULT_BENCH.qd))
    .option("--threads <n>", "IO threads (Bun Workers), each with its own engine and bounce budget slot", String(DEFAULT_BENCH.threads))
    .option("--budget <pages>", "bounce budget per thread, in 4096-byte pages", String(DEFAULT_BOUNCE_PAGES_PER_THREAD))
    .option("--runtime <seconds>", `time per case (default ${DEFAULT_BENCH.runtimeSeconds})`)
    .option("--ios <n>", "IOs per case instead of a time")
    .addOption(sharedOptions.rules())
    .addOption(sharedOptions.align())
    .addOption(sharedOptions.memAlign())
    .addOption(sharedOptions.fua("writes with RWF_DSYNC"))
    .option("--no-huge-pages", "bounce buffers on 4 KiB pages; by default they ask for transparent huge pages, which make direct IO into them cheaper")
    .addOption(sharedOptions.force("allow writing to an existing --disk (write workloads) or --guest (read workloads), and replacing --emit-fio's file"))
    .option("--emit-fio <file>", "also write the equivalent fio job file")
    .addOption(sharedOptions.json())
    .action(async (flags: BenchFlags, command: Command) => {
      if (flags.seg !== undefined) {
        for (const name of ["bs", "memOffset"]) {
          if (command.getOptionValueSource(name) !== "default") throw new InvalidInputError(`--seg gives the request's shape: it cannot be combined with --${name === "bs" ? "bs" : "mem-offset"}`);
        }
      }
      const options = parseFlags(flags);
      validateBenchOptions(options); // everything that can be refused is, before --emit-fio writes
      if (flags.emitFio !== undefined) emitFio(flags.emitFio, options, flags.force ?? false);
      const stop = new Int32Array(new SharedArrayBuffer(4));
      let workspace: BenchWorkspace | null = null;
      let removeScratch: (() => void) | null = null;
      using guard = new SignalGuard(
        () => Atomics.store(stop, 0, 1), // the fill or the workers stop, in-flight IO finishes, results so far are reported
        () => (workspace === null ? removeScratch?.() : workspace.cleanup()), // a second signal: leave now, but leave nothing behind
      );
      const progressLine = process.stderr.isTTY && !flags.json;
      let report: BenchReport;
      try {
        report = await runBench({
          ...options,
          stop,
          onWorkspace: (ready) => (workspace = ready),
          onScratch: (remove) => (removeScratch = remove),
          onProgress: progressLine
            ? (index, cases, label, ios) => process.stderr.write(`\r\x1b[K[${index + 1}/${cases}] ${label}: ${ios} IOs`)
            : undefined,
        });
      } catch (error) {
        if (!(error instanceof BounceBenchError && error.code === "INTERRUPTED" && guard.caught !== null)) throw error;
        context.io.stderr(`bounce-bench: interrupted by ${guard.caught} before any case ran; scratch files removed\n`);
        context.exitCode = guard.exitCode;
        return;
      } finally {
        if (progressLine) process.stderr.write("\r\x1b[K");
      }
      if (flags.json) context.io.stdout(`${JSON.stringify({ host: report.host, rules: report.rules, results: report.results, interrupted: report.interrupted })}\n`);
      else context.io.stdout(formatReport(report, options));
      const failed = report.results.find((result) => result.error !== null && !(result.error.code === "EINVAL" && result.mode === "direct"));
      if (guard.caught !== null) {
        context.io.stderr(guard.message);
        context.exitCode = guard.exitCode;
      } else if (failed !== undefined) {
        context.io.stderr(`bounce-bench: ${failed.error!.message}\n`);
        context.exitCode = 1;
      }
    });
}

function parseFlags(flags: BenchFlags): BenchOptions {
  const list = (text: string) => text.split(",").map((item) => item.trim()).filter((item) => item !== "");
  const choose = <T extends string>(flag: string, text: string, allowed: readonly T[]): T[] =>
    list(text).map((item) => {
      if (!allowed.includes(item as T)) throw new InvalidInputError(`${flag}: ${JSON.stringify(item)} is not one of ${allowed.join(", ")}`);
      return item as T;
    });
  const count = (flag: string, text: string) => {
    const value = parseSize(text, flag);
    if (value < 1) throw new InvalidInputError(`${flag}: ${text} must be at least 1`);
    return value;
  };
  if (flags.runtime !== undefined && flags.ios !== undefined) throw new InvalidInputError("give --runtime or --ios, not both");
  let runtimeSeconds: number | null = flags.ios === undefined ? DEFAULT_BENCH.runtimeSeconds : null;
  if (flags.runtime !== undefined) {
    runtimeSeconds = Number(flags.runtime);
    if (!/^\d+(\.\d+)?$/.test(flags.runtime.trim()) || !(runtimeSeconds > 0)) {
      throw new InvalidInputError(`--runtime: ${JSON.stringify(flags.runtime)} is not a positive number of seconds`);
    }
  }
  return {
    guestPath: flags.guest,
    diskPath: flags.disk,
    size: parseSize(flags.size, "--size"),
    ops: choose<BenchOp>("--op", flags.op, BENCH_OPS),
    bs: list(flags.bs).map((item) => parseSize(item, "--bs")),
    memOffsets: list(flags.memOffset).map((item) => parseSize(item, "--mem-offset")),
    modes: choose<IoMode>("--mode", flags.mode, IO_MODES),
    engine: flags.engine as EngineName,
    qd: count("--qd", flags.qd),
    threads: count("--threads", flags.threads),
    budget: count("--budget", flags.budget),
    runtimeSeconds,
    ios: flags.ios === undefined ? null : count("--ios", flags.ios),
    alignOverride: flags.align,
    memAlignOverride: flags.memAlign,
    diskKind: flags.diskKind,
    sector: parseSector(flags.sector, flags.diskKind),
    rules: flags.rules,
    fua: flags.fua ?? false,
    force: flags.force ?? false,
    hugePages: flags.hugePages,
    shape: flags.seg?.map((text, i) => parseSegment(text, flags.seg!.length > 1 ? `--seg #${i + 1}` : "--seg")),
  };
}

function parseSector(text: string | undefined, kind: DiskKind): SectorSize | undefined {
  if (text === undefined) return undefined;
  const sector = parseSize(text, "--sector");
  if (!SECTOR_SIZES.includes(sector as SectorSize)) throw new InvalidInputError(`--sector ${text} is not one of ${SECTOR_SIZES.join(", ")}`);
  if (kind === "file" || kind === "tmpfs") throw new InvalidInputError(`--sector applies to --disk-kind loop, ext4, xfs or btrfs, not ${kind}`);
  return sector as SectorSize;
}

function emitFio(path: string, options: BenchOptions, force: boolean): void {
  const diskPath = options.diskPath ?? "bounce-bench-disk.bin";
  writeUserTextFile(path, fioJobFile(options, diskPath, options.size), { force }, "--emit-fio");
}

/** The report for people: where it ran, then one row per case, then what bouncing cost. */
export function formatReport(report: BenchReport, options: BenchOptions): string {
  const host = report.host;
  const lines = [
    `bounce-bench ${VERSION} bench on Linux ${host.kernel}, ${host.cpu} x${host.cpus}, ${host.filesystem ?? "unknown filesystem"}`,
    `disk ${host.disk} (${formatBytes(host.diskSize)}), alignment: ${describeAlignment(host.alignment)}` +
      (host.planAlignment.source === "override" ? `, planned as ${describeAlignment(host.planAlignment)}` : ""),
    `engine ${options.engine}, qd ${options.qd}, threads ${options.threads}, ` +
      (options.runtimeSeconds !== null ? `${options.runtimeSeconds} s per case` : `${options.ios} IOs per case`) +
      `, bounce budget ${options.budget} pages per thread`,
    "",
  ];
  const rows = report.results.map((result) => [
    result.op,
    result.shape === null ? formatBytes(result.bs) : `${formatBytes(result.bs)} sg`,
    result.memOffset,
    result.mode,
    result.error === null ? result.decision : result.ios === 0 ? result.error.code : `${result.decision}, then ${result.error.code}`,
    result.mibPerSec.toFixed(1),
    result.iops,
    result.latencyUs.p50.toFixed(1),
    result.latencyUs.p99.toFixed(1),
    (result.cpuNsPerIo / 1000).toFixed(2),
    result.physicalSegments ?? "",
    result.bounce.copyNs > 0 ? result.bounce.copyGiBPerSec.toFixed(1) : "",
    costVersusDirect(result, report.results),
  ]);
  const head = ["op", "bs", "mem off", "mode", "decision", "MiB/s", "IOPS", "p50 us", "p99 us", "CPU/IO us", "phys segs", "copy GiB/s", "vs direct"];
  let text = lines.join("\n") + "\n" + table(head, rows);
  const shaped = report.results.find((result) => result.shape !== null);
  if (shaped !== undefined) text += `sg: every IO is the scatter-gather list --seg ${shaped.shape} over its slot's pages\n`;
  const bounced = report.results.filter((result) => result.bounce.copyNs > 0);
  if (bounced.length > 0) {
    const huge = bounced.filter((result) => result.bounce.hugePageBytes > 0).length;
    text +=
      `bounce buffers on transparent huge pages in ${huge} of ${bounced.length} bounced cases ` +
      `(THP ${host.transparentHugePages ?? "unknown"}); copy GiB/s is the guest <-> bounce copy alone\n`;
  }
  const waits = report.results.filter((result) => result.bounce.waits > 0);
  if (waits.length > 0) {
    text += `bounce budget waits: ${waits.map((r) => `${r.op} ${formatBytes(r.bs)} +${r.memOffset} ${r.mode}: ${r.bounce.waits} (${(r.bounce.waitNs / 1e6).toFixed(1)} ms, peak ${r.bounce.peakPages} pages)`).join("; ")}\n`;
  }
  if (report.results.some((r) => r.physicalSegments !== null)) {
    text += "phys segs: physically contiguous runs of the memory the device transfers for one IO (its DMA segments, at best)\n";
  }
  const maxSegments = host.maxSegments;
  const split = report.results.filter((r) => maxSegments !== null && r.physicalSegments !== null && r.physicalSegments > maxSegments);
  if (split.length > 0) {
    text +=
      `more physically contiguous runs than the disk takes in one request (${maxSegments}), so each IO became ` +
      `several requests: ${split.map((r) => `${r.op} ${formatBytes(r.bs)} +${r.memOffset} ${r.mode}: ${r.physicalSegments}`).join("; ")}\n`;
  }
  if (report.interrupted) text += "(interrupted: the last case is partial, later cases did not run)\n";
  return text;
}

/** For a bounced case: its throughput and CPU per IO against the direct case of the same op and size. */
function costVersusDirect(result: BenchCaseResult, all: BenchCaseResult[]): string {
  if (result.decision !== "bounce" || result.ios === 0) return "";
  const peers = all.filter((other) => other.op === result.op && other.bs === result.bs && other.decision === "direct" && other.ios > 0);
  const direct = peers.find((other) => other.memOffset === result.memOffset) ?? peers[0];
  if (direct === undefined) return "";
  const percent = (value: number, base: number) => `${value >= base ? "+" : ""}${(((value - base) / base) * 100).toFixed(0)}%`;
  return `MiB/s ${percent(result.mibPerSec, direct.mibPerSec)}, CPU ${percent(result.cpuNsPerIo, direct.cpuNsPerIo)}`;
}
