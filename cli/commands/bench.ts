/**
 * `bounce-bench bench`: throughput and latency across the product of the listed values, and
 * what bouncing costs next to direct IO.
 */
import { statSync } from "node:fs";
import { Option, type Command } from "commander";
import { fioFilenameValue, fioJobFile } from "../../src/bench/fio-job";
import { COPY_METHODS, type CopyMethod } from "../../src/bounce/copy-placement";
import { slowDistances } from "../../src/bench/copy-rates";
import { BOUNCE_PAGES, GUEST_BACKINGS, guestOnHugePages, type BouncePages, type GuestBacking } from "../../src/bench/guest-backing";
import { checkCreatable, refuseOutputsOverInputs, writeUserTextFile } from "../../src/host/files";
import { BenchTable, benchCsv, benchFooter, benchJson, columnsHelp, parseColumns } from "../bench-report";
import { BENCH_OPS, BOUNCE_LAYOUTS, type BenchOp, type BounceLayout } from "../../src/bench/job";
import { runBench } from "../../src/bench/runner";
import { DEFAULT_BENCH, validateBenchOptions, type BenchOptions, type BenchProgress } from "../../src/bench/bench-options";
import type { BenchCaseResult, BenchReport } from "../../src/bench/bench-results";
import { describeHost, type HostInfo } from "../../src/bench/host-info";
import { formatBytes } from "../../src/base/value-parsers";
import { DEFAULT_BOUNCE_PAGES_PER_THREAD } from "../../src/base/constants";
import { ENGINE_NAMES, REGISTERED_MEMORY, uringOptionNames, type EngineName, type RegisteredMemory } from "../../src/io/engines";
import { BounceBenchError, InvalidInputError } from "../../src/base/errors";
import { IO_MODES, type IoMode } from "../../src/io/planner";
import { parseDuration, parseSegment, parseSize } from "../../src/base/value-parsers";
import { alignmentFromJson } from "../../src/io/json-documents";
import { describeAlignment, terminalWidth, wrapLines } from "../format";
import type { Context } from "../main";
import type { RuleSet } from "../../src/base/alignment-rules";
import { DISK_KINDS, type DiskKind } from "../../src/base/disk-kinds";
import { parseSector, sharedOptions } from "../options";
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
  registerfiles?: boolean;
  nonvectored?: boolean;
  fixedbufs?: boolean | string;
  sqthread_poll?: boolean;
  deferTaskrun?: boolean;
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
  /** commander's `--no-file-locks`: false when given. */
  fileLocks?: boolean;
  /** commander's `--no-resource-check`: false when given. */
  resourceCheck?: boolean;
  force?: boolean;
  overwriteDevice?: boolean;
  hugePages: boolean;
  guestBacking: GuestBacking;
  bouncePages: BouncePages;
  bounceLayout: BounceLayout;
  copy: CopyMethod;
  emitFio?: string;
  json?: boolean;
  seg?: string[];
  repeat: string;
  ramp: string;
  columns?: string;
  format: "table" | "json" | "csv";
  output?: string;
}

export function registerBench(program: Command, context: Context): void {
  program
    .command("bench")
    .summary("measure what alignment costs, like for like")
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
    .option("--registerfiles", "uring: register the disk's descriptor once, name it by index in every SQE (fio's registerfiles)")
    .option(
      "--fixedbufs [memory]",
      "uring: register memory once, IOs inside it go as READ_FIXED/READV_FIXED (fio's fixedbufs): all (guest memory and bounce buffers, the default) or bounce (the bounce buffers alone)",
    )
    .option("--sqthread_poll", "uring: a kernel thread takes submissions from the ring, no system call to submit (fio's sqthread_poll; its CPU is the process's)")
    .option("--defer-taskrun", "uring: IORING_SETUP_SINGLE_ISSUER | DEFER_TASKRUN, completions run when the thread asks for them")
    .option("--nonvectored", "uring: a call of one iovec goes as READ/WRITE of its buffer, not READV/WRITEV, so the kernel copies no iovec in (fio's nonvectored, fio's default)")
    .option("--threads <n>", "IO threads (Bun Workers), each with its own engine and bounce budget slot", String(DEFAULT_BENCH.threads))
    .option("--budget <pages>", "bounce budget per thread, in 4096-byte pages", String(DEFAULT_BOUNCE_PAGES_PER_THREAD))
    .option("--runtime <duration>", `time per run of a case: seconds, or with ms, s, m, h (default ${DEFAULT_BENCH.runtimeSeconds})`)
    .option("--ios <n>", "IOs per case instead of a time")
    .addOption(sharedOptions.rules())
    .addOption(sharedOptions.align())
    .addOption(sharedOptions.memAlign())
    .addOption(sharedOptions.fua("writes with RWF_DSYNC"))
    .option("--no-resource-check", "do not refuse a --size (disk, tmpfs, guest memory) larger than the memory or space the host has free")
    .option("--no-file-locks", "on a disk you named: do not order writes against other processes' read-modify-writes (measures without the lock's cost; the header says so)")
    .addOption(
      new Option(
        "--guest-backing <backing>",
        "guest memory when no --guest is given: memfd (shmem, 4 KiB pages), file (an unnamed file in the temporary directory), " +
          "thp (anonymous memory on transparent huge pages), hugetlb (2 MiB pages from vm.nr_hugepages)",
      )
        .choices(GUEST_BACKINGS as string[])
        .default("memfd"),
    )
    .addOption(
      new Option("--bounce-pages <pages>", "bounce buffers' pages: same as guest memory (like for like), 4k, or thp")
        .choices(BOUNCE_PAGES as string[])
        .default("same"),
    )
    .option("--no-huge-pages", "the same as --bounce-pages 4k (kept from earlier versions)")
    .addOption(
      new Option(
        "--bounce-layout <layout>",
        "bounce buffers on 4 KiB pages: matched, laid out physically like the guest buffers they stand in for " +
          "(as many DMA segments as direct IO from them; needs root to read page frames); any, memory as it comes",
      )
        .choices(BOUNCE_LAYOUTS as string[])
        .default("matched"),
    )
    .addOption(
      new Option(
        "--copy <method>",
        "placed: bounce buffers start where copying the guest bytes avoids memcpy's slow short-distance path; " +
          "memcpy: always at the start (shows the slow path, as a plain VMM meets it)",
      )
        .choices(COPY_METHODS as string[])
        .default("placed"),
    )
    .addOption(sharedOptions.force("allow writing to an existing --disk file (write workloads) or --guest (read workloads), and replacing --emit-fio's file"))
    .addOption(sharedOptions.overwriteDevice())
    .option("--repeat <n>", "runs per case, interleaved across cases (round 1 of every case, then round 2, ...); rates are medians with the spread", String(DEFAULT_BENCH.repeat))
    .option("--ramp <duration>", "warm-up before each run's measurement, not counted (500ms, 2s)", "0")
    .option("--columns <list>", "table columns: default, all, a list, or +name,... to add to the default (see below)")
    .addOption(new Option("--format <format>", "table, json (the document --json prints) or csv (every column)").choices(["table", "json", "csv"]).default("table"))
    .option("--output <file>", "write the report to this file instead of stdout (replacing one needs --force)")
    .option("--emit-fio <file>", "also write, after the run, the closest fio job file: one job per case, runnable by fio, saying what fio cannot express")
    .addOption(sharedOptions.json())
    .addHelpText(
      "after",
      () => `
fio's names work too: --rw for --op, --iodepth for --qd, --numjobs for --threads, --ioengine
io_uring|psync|pvsync|sync|null for --engine; durations take 500ms, 30s, 2m; sizes 4k .. 1T.

Columns (--columns):
${columnsHelp()}

Examples:
  $ bounce-bench bench                                        the default sweep (about a minute)
  $ bounce-bench bench --op randread --bs 64k --engine uring --qd 16 --runtime 2s
  $ bounce-bench bench --op randread --bs 4k --engine uring --qd 32 --registerfiles --sqthread_poll
  $ bounce-bench bench --op randread --bs 64k --engine uring --qd 16 --fixedbufs --mode auto,bounce
  $ bounce-bench bench --op randread --bs 4k,64k --engine uring --qd 8 --fixedbufs bounce --mode direct,bounce
  $ bounce-bench bench --bs 64k --mem-offset 0,8 --copy memcpy   show memcpy's slow path
  $ bounce-bench bench --guest-backing thp --bs 1m --repeat 5 --columns +segs,thcpu
  $ bounce-bench bench --bs 64k --mode auto,bounce --ramp 1s --repeat 9 --columns +segs,gsegs
  $ bounce-bench bench --format json --output base.json; bounce-bench compare base.json new.json`,
    )
    .action(async (flags: BenchFlags, command: Command) => {
      if (flags.seg !== undefined) {
        for (const name of ["bs", "memOffset"]) {
          if (command.getOptionValueSource(name) !== "default") throw new InvalidInputError(`--seg gives the request's shape: it cannot be combined with --${name === "bs" ? "bs" : "mem-offset"}`);
        }
      }
      const options = parseFlags(flags);
      // A --guest-backing given with --guest is the runner's to refuse (validateBenchOptions): pass it on.
      if (command.getOptionValueSource("guestBacking") === "cli") options.guestBacking = flags.guestBacking;
      const format = flags.json ? "json" : flags.format;
      if (flags.json && command.getOptionValueSource("format") === "cli" && flags.format !== "json") throw new InvalidInputError(`--json and --format ${flags.format} disagree`);
      const columns = parseColumns(flags.columns);
      validateBenchOptions(options); // everything that can be refused is, before --emit-fio or --output writes
      refuseOutputsOverInputs(
        [
          ["--output", flags.output],
          ["--emit-fio", flags.emitFio],
        ],
        [
          ["--disk", flags.disk],
          ["--guest", flags.guest],
        ],
      );
      if (flags.output !== undefined) checkCreatable(flags.output, flags.force ?? false, "--output");
      // The fio job is written after the run, from what each case did; its path is checked now.
      if (flags.emitFio !== undefined) {
        checkCreatable(flags.emitFio, flags.force ?? false, "--emit-fio");
        if (flags.disk !== undefined) fioFilenameValue(flags.disk); // a path fio cannot read literally: refused before the run
      }
      const stop = new Int32Array(new SharedArrayBuffer(4));
      // What removes each thing the run made outside this process's memory, as the runner hands
      // them over (it owns teardown): run newest first on a second signal.
      const removers: (() => void)[] = [];
      using guard = new SignalGuard(
        () => Atomics.store(stop, 0, 1), // the fill or the workers stop, in-flight IO finishes, results so far are reported
        () => {
          for (const remove of removers.reverse()) remove(); // a second signal: leave now, but leave nothing behind
        },
      );
      const progressLine = process.stderr.isTTY && format === "table";
      // Rows stream to the terminal (or pipe) as cases finish; into a file, everything at the end.
      const streaming = format === "table" && flags.output === undefined;
      const benchTable = new BenchTable(columns.names, columns.chosen, terminalWidth(), options);
      const finished: BenchCaseResult[] = [];
      const startedAt = new Date();
      const progress = new ProgressLine(progressLine);
      let report: BenchReport;
      try {
        report = await runBench({
          ...options,
          stop,
          onWorkspace: (ready) => {
            if (streaming) context.io.stdout(formatHeader(describeHost(ready, options.bouncePages, options.fileLocks), options) + benchTable.header());
          },
          onScratch: (remove) => removers.push(remove),
          onProgress: progressLine ? (status) => progress.update(status) : undefined,
          onCase: (result) => {
            finished.push(result);
            if (!streaming) return;
            progress.clear();
            context.io.stdout(benchTable.row(result, finished));
          },
        });
      } catch (error) {
        if (!(error instanceof BounceBenchError && error.code === "INTERRUPTED" && guard.caught !== null)) throw error;
        context.io.stderr(`bounce-bench: interrupted by ${guard.caught} before any case ran; scratch files removed\n`);
        context.exitCode = guard.exitCode;
        return;
      } finally {
        progress.clear();
      }
      if (flags.emitFio !== undefined) {
        writeUserTextFile(flags.emitFio, fioJobFile(options, report, alignmentFromJson(report.host.planAlignment)), { force: flags.force ?? false }, "--emit-fio");
      }
      let text: string;
      if (format === "json") text = `${JSON.stringify(benchJson(report, options, startedAt))}\n`;
      else if (format === "csv") text = benchCsv(report);
      else {
        const footer = wrapLines(benchFooter(report, benchTable) + formatNotes(report));
        text = streaming ? footer : formatHeader(report.host, options) + benchTable.header() + report.results.map((r) => benchTable.row(r, report.results)).join("") + footer;
      }
      if (flags.output !== undefined) {
        writeUserTextFile(flags.output, text, { force: flags.force ?? false }, "--output");
        context.io.stderr(`bounce-bench: wrote ${format} to ${flags.output}\n`);
      } else context.io.stdout(text);
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

/**
 * The progress line on stderr (a terminal only): the run, its case, elapsed time, IOs and live
 * MiB/s of the run, and the time left for the sweep, estimated from the runs done so far.
 */
class ProgressLine {
  readonly #sweepStart = performance.now();
  #runStart = performance.now();
  #run = -1;
  #shown = false;

  constructor(readonly enabled: boolean) {}

  update(status: BenchProgress): void {
    const now = performance.now();
    if (status.run !== this.#run) {
      this.#run = status.run;
      this.#runStart = now;
    }
    const runSeconds = (now - this.#runStart) / 1000;
    const elapsed = (now - this.#sweepStart) / 1000;
    const eta = status.run === 0 ? "" : `, ETA ${Math.ceil((elapsed / status.run) * (status.runs - status.run) - runSeconds)} s`;
    const rate = runSeconds > 0 ? (status.ios * status.bs) / 2 ** 20 / runSeconds : 0;
    process.stderr.write(`\r\x1b[K[${status.run + 1}/${status.runs}] ${status.label}: ${status.ios} IOs, ${rate.toFixed(0)} MiB/s; ${elapsed.toFixed(0)} s${eta}`);
    this.#shown = true;
  }

  clear(): void {
    if (this.#shown) process.stderr.write("\r\x1b[K");
    this.#shown = false;
  }
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
  const runtimeSeconds = flags.runtime !== undefined ? parseDuration(flags.runtime, "--runtime") : flags.ios === undefined ? DEFAULT_BENCH.runtimeSeconds : null;
  return {
    guestPath: flags.guest,
    diskPath: flags.disk,
    size: parseSize(flags.size, "--size"),
    ops: choose<BenchOp>("--op", flags.op, BENCH_OPS),
    bs: list(flags.bs).map((item) => parseSize(item, "--bs")),
    memOffsets: list(flags.memOffset).map((item) => parseSize(item, "--mem-offset")),
    modes: choose<IoMode>("--mode", flags.mode, IO_MODES),
    engine: flags.engine as EngineName,
    ...(flags.registerfiles || flags.fixedbufs || flags.sqthread_poll || flags.deferTaskrun || flags.nonvectored
      ? {
          uring: {
            ...(flags.registerfiles ? { registerFiles: true } : {}),
            ...(flags.fixedbufs !== undefined ? { fixedBuffers: true, registeredMemory: parseRegisteredMemory(flags.fixedbufs) } : {}),
            ...(flags.sqthread_poll ? { sqpoll: true } : {}),
            ...(flags.deferTaskrun ? { deferTaskrun: true } : {}),
            ...(flags.nonvectored ? { nonvectored: true } : {}),
          },
        }
      : {}),
    qd: count("--qd", flags.qd),
    threads: count("--threads", flags.threads),
    budget: count("--budget", flags.budget),
    runtimeSeconds,
    ios: flags.ios === undefined ? null : count("--ios", flags.ios),
    repeat: count("--repeat", flags.repeat),
    rampSeconds: parseDuration(flags.ramp, "--ramp", true),
    alignOverride: flags.align,
    memAlignOverride: flags.memAlign,
    diskKind: flags.diskKind,
    sector: flags.sector === undefined ? undefined : parseSector(flags.sector, flags.diskKind),
    rules: flags.rules,
    fua: flags.fua ?? false,
    fileLocks: flags.fileLocks,
    resourceCheck: flags.resourceCheck,
    force: flags.force ?? false,
    overwriteDevice: flags.overwriteDevice ?? false,
    guestBacking: flags.guest === undefined ? flags.guestBacking : undefined,
    bouncePages: bouncePages(flags),
    bounceLayout: flags.bounceLayout,
    copy: flags.copy,
    shape: flags.seg?.map((text, i) => parseSegment(text, flags.seg!.length > 1 ? `--seg #${i + 1}` : "--seg")),
  };
}

function bouncePages(flags: BenchFlags): BouncePages {
  if (flags.hugePages === false) {
    if (flags.bouncePages !== "same" && flags.bouncePages !== "4k") throw new InvalidInputError(`--no-huge-pages and --bounce-pages ${flags.bouncePages} disagree`);
    return "4k";
  }
  return flags.bouncePages;
}

const GUEST_BACKING_TEXT: Record<GuestBacking, string> = {
  memfd: "memfd (shmem, 4 KiB pages)",
  file: "a file (page cache, 4 KiB pages)",
  thp: "anonymous, transparent huge pages",
  hugetlb: "hugetlbfs, 2 MiB pages",
};

/** Where the run happened and how: the lines above the table. */
export function formatHeader(host: HostInfo, options: BenchOptions): string {
  const perRun = options.runtimeSeconds !== null ? `${options.runtimeSeconds} s` : `${options.ios} IOs`;
  const ramp = (options.rampSeconds ?? 0) > 0 ? ` after a ${options.rampSeconds} s ramp` : "";
  const lines = [
    `bounce-bench ${VERSION} bench on Linux ${host.kernel}, ${host.cpu} x${host.cpus}, ${host.filesystem ?? "unknown filesystem"}`,
    `disk ${host.scratch ? `a scratch ${host.diskKind}${host.sector === null ? "" : ` (${host.sector}-byte sectors)`}` : host.disk} (${formatBytes(host.diskSize)}), alignment: ${describeAlignment(host.diskAlignment)}` +
      (host.planAlignment.source === "override" ? `, planned as ${describeAlignment(host.planAlignment)}` : ""),
    ...(overwritesDevice(host, options) ? [`OVERWRITES the block device ${host.disk}: what it held is lost (--overwrite-device)`] : []),
    `engine ${options.engine}${uringOptionNames(options.uring).length === 0 ? "" : ` (${uringOptionNames(options.uring).join(", ")})`}, qd ${options.qd}, threads ${options.threads}, ${options.repeat ?? 1} run${(options.repeat ?? 1) === 1 ? "" : "s"} of ${perRun}${ramp} per case, ` +
      `bounce budget ${options.budget} pages per thread`,
    ...(options.uring?.fixedBuffers && !host.readvFixed ? ["this kernel's io_uring has no READV_FIXED/WRITEV_FIXED (6.15+): --fixedbufs sends calls of several iovecs as READV/WRITEV, counted below"] : []),
    `guest memory ${GUEST_BACKING_TEXT[host.guestBacking]}`,
    `bounce buffers on ${host.bounceHugePages ? "transparent huge pages" : "4 KiB pages"}` +
      (host.bounceHugePages === guestOnHugePages(host.guestBacking) ? " (like the guest's)" : " (NOT like the guest's: --bounce-pages)") +
      (host.bounceHugePages ? "" : (options.bounceLayout ?? "matched") === "matched" ? ", laid out physically like the guest buffers" : ", laid out as memory comes (--bounce-layout any)"),
    `cross-process write locks ${host.fileLocks.on ? "on" : "OFF"}: ${host.fileLocks.why}`,
  ];
  return `${wrapLines(lines.join("\n"))}\n\n`;
}

/** Whether the run writes a block device the user named and gave up (`--overwrite-device`). */
function overwritesDevice(host: HostInfo, options: BenchOptions): boolean {
  if (host.scratch || options.overwriteDevice !== true || !options.ops.some((op) => op.endsWith("write"))) return false;
  try {
    return statSync(host.disk).isBlockDevice();
  } catch {
    return false;
  }
}

/** Notes on what this run's figures mean: huge pages, budget waits, physical segments. */
function formatNotes(report: BenchReport): string {
  const host = report.host;
  let text = "";
  const shaped = report.results.find((result) => result.shape !== null);
  if (shaped !== undefined) text += `sg: every IO is the scatter-gather list --seg ${shaped.shape} over its slot's pages\n`;
  const bounced = report.results.filter((result) => result.bounce.copyNs > 0);
  if (bounced.length > 0 && host.bounceHugePages) {
    const huge = bounced.filter((result) => result.bounce.hugePageBytes > 0).length;
    text += `bounce buffers on transparent huge pages in ${huge} of ${bounced.length} bounced cases (THP ${host.transparentHugePages ?? "unknown"})\n`;
  }
  const slow = host.copyRates === null ? [] : slowDistances(host.copyRates);
  if (host.copyRates !== null && slow.length > 0) {
    const base = host.copyRates.find((rate) => rate.distance === 0)!;
    const placed = !report.results.some((r) => r.bounce.slowCopyBytesPerIo > 0);
    text +=
      `memcpy's slow path here (glibc's rep movsb): 64 KiB copies run at ${base.gibPerSec} GiB/s, but at ` +
      `${slow.map((r) => `${r.gibPerSec} GiB/s with the destination ${r.distance} bytes ahead of the source`).join(", ")} within a page; ` +
      (placed ? "bounce buffers were placed so that no copy met it (--copy placed)\n" : "--copy placed (the default) places bounce buffers so that no copy meets it\n");
  }
  const onSlowPath = report.results.filter((r) => r.bounce.slowCopyBytesPerIo > 0 && r.ios > 0);
  if (onSlowPath.length > 0) {
    text += `copies on that slow path (--copy memcpy): ${onSlowPath.map((r) => `${r.op} ${formatBytes(r.bs)} +${r.memOffset} ${r.mode}: ${r.bounce.slowCopyBytesPerIo} bytes per IO at ${r.bounce.copyGiBPerSec} GiB/s`).join("; ")}\n`;
  }
  const unmatched = report.results.filter((r) => r.bounce.layoutMatched === false && r.ios > 0);
  if (unmatched.length > 0) {
    text +=
      `bounce buffers not laid out like the guest buffers (${process.getuid?.() === 0 ? "no huge pages to take runs from, or a memory alignment above 4 KiB" : "page frames are visible to root only"}), ` +
      `so bounced and direct IO may make different numbers of DMA segments (--columns +segs,gsegs): ${unmatched.map((r) => `${r.op} ${formatBytes(r.bs)} +${r.memOffset} ${r.mode}`).join("; ")}\n`;
  }
  const waits = report.results.filter((result) => result.bounce.waits > 0);
  if (waits.length > 0) {
    text += `bounce budget waits: ${waits.map((r) => `${r.op} ${formatBytes(r.bs)} +${r.memOffset} ${r.mode}: ${r.bounce.waits} (${(r.bounce.waitNs / 1e6).toFixed(1)} ms, peak ${r.bounce.peakPages} pages)`).join("; ")}\n`;
  }
  const starved = report.results.filter((r) => r.qd > 1 && r.ios > 0 && r.effectiveQd < 0.9 * r.qd);
  if (starved.length > 0) {
    text += `fewer IOs in flight than --qd (effective depth): ${starved.map((r) => `${r.op} ${formatBytes(r.bs)} +${r.memOffset} ${r.mode}: ${r.effectiveQd}`).join("; ")}\n`;
  }
  const maxSegments = host.maxSegments;
  const split = report.results.filter((r) => maxSegments !== null && r.physicalSegments !== null && r.physicalSegments > maxSegments);
  if (split.length > 0) {
    text +=
      `more physically contiguous runs than the disk takes in one request (${maxSegments}), so each IO became ` +
      `several requests: ${split.map((r) => `${r.op} ${formatBytes(r.bs)} +${r.memOffset} ${r.mode}: ${r.physicalSegments}`).join("; ")}\n`;
  }
  const fixed = report.results.filter((r) => r.fixedBuffers !== null);
  if (fixed.length > 0) {
    const calls = fixed.reduce((sum, r) => sum + r.fixedBuffers!.calls, 0);
    const notFixed = fixed.filter((r) => r.fixedBuffers!.notFixed > 0);
    text += `--fixedbufs: ${calls} calls went with registered buffers (READ_FIXED, WRITE_FIXED${host.readvFixed ? ", READV_FIXED, WRITEV_FIXED" : ""})`;
    text +=
      notFixed.length === 0
        ? "; every call could\n"
        : `; these could not and went as READV/WRITEV (an iovec outside the registered memory: guest pages under --fixedbufs bounce, or memory of two registered buffers${host.readvFixed ? "" : "; or several iovecs, without READV_FIXED"}): ` +
          `${notFixed.map((r) => `${r.op} ${formatBytes(r.bs)} +${r.memOffset} ${r.mode}: ${r.fixedBuffers!.notFixed}`).join("; ")}\n`;
  }
  const nonvectored = report.results.filter((r) => r.nonvectored !== null);
  if (nonvectored.length > 0) {
    const calls = nonvectored.reduce((sum, r) => sum + r.nonvectored!.calls, 0);
    const vectored = nonvectored.filter((r) => r.nonvectored!.vectored > 0);
    text += `--nonvectored: ${calls} calls of one iovec went as READ/WRITE`;
    text +=
      vectored.length === 0
        ? "; no call had several\n"
        : `; these had several iovecs and went as READV/WRITEV: ${vectored.map((r) => `${r.op} ${formatBytes(r.bs)} +${r.memOffset} ${r.mode}: ${r.nonvectored!.vectored}`).join("; ")}\n`;
  }
  const rings = report.results.filter((r) => r.registeredRing !== null && r.ios > 0);
  if (rings.length > 0) {
    const byDescriptor = rings.filter((r) => r.registeredRing === false);
    text +=
      byDescriptor.length === 0
        ? "io_uring: every ring was entered by its index among its thread's registered rings (IORING_REGISTER_RING_FDS)\n"
        : `io_uring: the kernel did not register these rings with their threads (IORING_REGISTER_RING_FDS: 5.18+, 16 a thread), entered by their descriptor: ${byDescriptor.map((r) => `${r.op} ${formatBytes(r.bs)} +${r.memOffset} ${r.mode}`).join("; ")}\n`;
  }
  if (report.interrupted) text += "(interrupted: the last case is partial, later cases did not run)\n";
  return text;
}

/** `--fixedbufs [memory]`: `all` when given bare. */
function parseRegisteredMemory(value: boolean | string): RegisteredMemory {
  if (value === true) return "all";
  if (!(REGISTERED_MEMORY as readonly string[]).includes(String(value))) throw new InvalidInputError(`--fixedbufs: "${value}" is not one of ${REGISTERED_MEMORY.join(", ")}`);
  return value as RegisteredMemory;
}
