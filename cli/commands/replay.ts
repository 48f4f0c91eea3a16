/**
 * `bounce-bench replay TRACE`: a captured (or converted) trace judged by every rule set and
 * kernel rule set, and with --execute done for real (src/trace/replay-run.ts).
 */
import type { Command } from "commander";
import { Option } from "commander";
import { RULE_SETS, type RuleSet } from "../../src/base/alignment-rules";
import { DISK_KINDS, type DiskKind } from "../../src/base/disk-kinds";
import { parseCount } from "../../src/base/value-parsers";
import { ENGINE_NAMES, type EngineName } from "../../src/io/engines";
import { NAMED_KERNELS } from "../../src/trace/replay";
import { runReplay, type ReplayReport } from "../../src/trace/replay-run";
import type { RulesTotals } from "../../src/trace/replay";
import type { Context } from "../main";
import { jsonLine } from "../json-output";
import { byteAmount, describeAlignment, keyValues, table, wrapLines } from "../format";
import { parseSector, sharedOptions } from "../options";
import { SignalGuard } from "../signals";

interface ReplayFlags {
  disk?: string;
  diskKind?: DiskKind;
  sector?: string;
  rules?: RuleSet | "all";
  kernel: string;
  execute?: boolean;
  pace: "fast" | "trace";
  qd?: string;
  engine: EngineName;
  verify: boolean;
  force?: boolean;
  overwriteDevice?: boolean;
  json?: boolean;
}

export function registerReplay(program: Command, context: Context): void {
  program
    .command("replay")
    .summary("judge a trace by rule sets and kernels")
    .description(
      "Lay each IO of a trace (trace capture, trace convert) over guest memory as captured (each iovec's offset in its page, which iovecs touch) and count, " +
        "per rule set: IOs direct, bounced, read-modify-write, split, bytes copied, the shapes that bounce most; per kernel rule set: copies that kernel would not have needed, " +
        "and IOs the rule set sends that it refuses. The disk's rules are --disk's, a scratch --disk-kind's, or those the trace recorded. " +
        "--execute does the IOs on the disk as one rule set plans them, at the trace's queue depth, checks every IO's bytes, and measures the cost.",
    )
    .argument("<trace>", "the trace (JSON Lines, docs/trace.md)")
    .option("--disk <path>", "judge by this disk's rules (and --execute on it: writes need --force, a block device --overwrite-device)")
    .addOption(new Option("--disk-kind <kind>", "judge by (and --execute on) a scratch disk of this kind; all but file need root").choices(DISK_KINDS as string[]))
    .option("--sector <bytes>", "sector size of the loop device under --disk-kind loop, ext4, xfs, btrfs: 512 or 4096")
    .addOption(new Option("--rules <rules>", "the rule set(s) that decide: kernel, seed, qemu, cloud-hypervisor, openvmm, or all (default all; kernel with --execute)").choices([...RULE_SETS, "all"]))
    .addOption(new Option("--kernel <name>", "the kernel rule set(s) that judge: a named one, current (measured on the disk) or all").choices([...NAMED_KERNELS, "current", "all"]).default("all"))
    .option("--execute", "do the IOs for real, verify them and measure the cost")
    .addOption(new Option("--pace <pace>", "with --execute: fast (as fast as the queue allows) or trace (no earlier than captured)").choices(["fast", "trace"]).default("fast"))
    .option("--qd <n>", "with --execute: IOs in flight (default: the most the trace had in flight)")
    .addOption(new Option("--engine <name>", "with --execute: uring (io_uring at --qd) or sync (one at a time)").choices(ENGINE_NAMES.filter((e) => e !== "null") as string[]).default("uring"))
    .option("--no-verify", "with --execute: do not read back each IO's disk range (for timing without the read-backs)")
    .addOption(sharedOptions.force("with --execute: let the trace's writes overwrite the existing --disk file"))
    .addOption(sharedOptions.overwriteDevice())
    .addOption(sharedOptions.json())
    .addHelpText(
      "after",
      `
Examples:
  $ printf 'fio version 2 iolog\\nd read 0 4096\\nd write 4096 512\\n' > /tmp/two.iolog
  $ bounce-bench trace convert /tmp/two.iolog --from fio-iolog --mem-offset 512 --output /tmp/two.trace --force
  $ bounce-bench replay /tmp/two.trace
  $ bounce-bench replay /tmp/two.trace --rules qemu --kernel 6.0 --json
  $ bounce-bench replay /tmp/two.trace --rules kernel --execute        do them on a scratch file
  $ bounce-bench replay /tmp/two.trace --disk-kind loop --sector 4096   a real 4 KiB-sector disk (root)`,
    )
    .action(async (trace: string, flags: ReplayFlags) => {
      const sector = flags.sector === undefined ? undefined : parseSector(flags.sector, flags.diskKind ?? "file");
      const qd = flags.qd === undefined ? undefined : parseCount(flags.qd, "--qd");
      const stop = new Int32Array(new SharedArrayBuffer(4));
      using guard = new SignalGuard(() => Atomics.store(stop, 0, 1));
      void guard;
      const report = await runReplay({
        trace,
        disk: flags.disk,
        diskKind: flags.diskKind,
        sector,
        rules: flags.rules ?? (flags.execute ? "kernel" : "all"),
        kernel: flags.kernel,
        execute: flags.execute ? { pace: flags.pace, qd, engine: flags.engine, verify: flags.verify, force: flags.force ?? false, overwriteDevice: flags.overwriteDevice ?? false } : undefined,
        stop,
        onProgress: (line) => context.io.stderr(`bounce-bench: replay: ${line}\n`),
      });
      if (flags.json) context.io.stdout(jsonLine("replay", report as unknown as Record<string, unknown>));
      else context.io.stdout(replayText(report));
      const failed = report.execute === null ? 0 : Object.values(report.execute.failed).reduce((a, b) => a + b, 0);
      if (failed > 0) context.exitCode = 1;
    });
}

/** Shapes listed per rule set in the terminal (the JSON has ten). */
const SHOWN_SHAPES = 5;

function replayText(report: ReplayReport): string {
  const s = report.summary;
  const errors = Object.entries(s.capturedErrors);
  const skipped = s.skipped.iovecsTruncated + s.skipped.empty;
  const missed = Object.entries(report.end?.missed ?? {});
  let text = wrapLines(keyValues([
    ["trace", `${report.trace}: ${s.ios} IOs (${s.reads} reads, ${s.writes} writes), ${byteAmount(s.bytes)}, ${s.shapes} shapes`],
    ["captured", report.header.synthetic === null ? `${report.header.captured.by}${report.header.kernel === null ? "" : ` on ${report.header.kernel.release}`}` : `synthetic, from ${report.header.synthetic.from}: ${report.header.synthetic.memory}`],
    ...(errors.length === 0 ? [] : ([["failed then", errors.map(([code, n]) => `${n} with ${code}`).join(", ")]] as [string, string][])),
    ...(skipped === 0 ? [] : ([["left out", `${s.skipped.iovecsTruncated} IOs with more iovecs than captured, ${s.skipped.empty} of no bytes`]] as [string, string][])),
    ...(missed.length === 0 ? [] : ([["not in trace", missed.map(([what, n]) => `${what}: ${n}`).join(", ")]] as [string, string][])),
    ["disk", `${describeAlignment(report.disk.alignment)}; from ${report.disk.from}`],
  ]), undefined, "            ");
  text += table(
    ["rules", "direct", "bounce", "rmw", "split", "copied"],
    s.rules.map((r) => [r.rules, r.decisions.direct, r.decisions.bounce, r.decisions.rmw, r.decisions.split, byteAmount(r.copiedBytes)]),
  );
  // By kernel: IOs a rule set copied that the kernel takes as they are (needless), and IOs it
  // sends that the kernel refuses (the rule set is unsound there); kernels alike grouped.
  const grouped = (pick: (k: RulesTotals["kernels"][number]) => string | null) =>
    s.rules.flatMap((r) => {
      const groups = new Map<string, string[]>();
      for (const k of r.kernels) {
        const what = pick(k);
        if (what !== null) groups.set(what, [...(groups.get(what) ?? []), k.kernel]);
      }
      return [...groups].map(([what, kernels]) => `  ${r.rules.padEnd(17)}${what} on ${kernels.join(", ")}`);
    });
  const needless = grouped((k) => (k.needlessIos === 0 ? null : `${k.needlessIos} IOs, ${byteAmount(k.needlessBytes)}`));
  const refusals = grouped((k) => (k.refusedIos === 0 ? null : `${k.refusedIos} IOs`));
  text += wrapLines(
    `copied needlessly (the kernel takes those IOs as they are):${needless.length === 0 ? " none" : `\n${needless.join("\n")}`}\n` +
      `REFUSED (EINVAL: the rule set sends what the kernel refuses):${refusals.length === 0 ? " none" : `\n${refusals.join("\n")}`}\n`,
    undefined,
    " ".repeat(19),
  );
  // The shapes that copy most, five a rule set; rule sets with the same list named together.
  const lists = new Map<string, string[]>();
  for (const r of s.rules) {
    if (r.topShapes.length === 0) continue;
    const list = r.topShapes.slice(0, SHOWN_SHAPES).map((shape) => `  ${shape.ios} x ${shape.shape}\n`).join("") + (r.topShapes.length > SHOWN_SHAPES || r.otherShapeIos > 0 ? "  ... (--json lists more)\n" : "");
    lists.set(list, [...(lists.get(list) ?? []), r.rules]);
  }
  for (const [list, rules] of lists) text += wrapLines(`shapes that copy most under ${rules.join(", ")}:\n${list}`);
  const refused = s.rules.flatMap((r) => r.kernels.filter((k) => k.refusedExample !== null).map((k) => `${r.rules} on ${k.kernel}: ${k.refusedExample}`));
  if (refused.length > 0) text += wrapLines(`refused, for example:\n${refused.slice(0, 5).map((line) => `  ${line}`).join("\n")}\n`);
  const e = report.execute;
  if (e !== null) {
    const seconds = e.elapsedNs / 1e9;
    const failed = Object.entries(e.failed);
    text += wrapLines(keyValues([
      ["executed", `${e.ios} IOs as ${e.rules} plans them on ${report.disk.path} (${e.engine}, queue depth ${e.qd}, pace ${e.pace})${e.stopped ? "; STOPPED early" : ""}`],
      ["decisions", Object.entries(e.decisions).filter(([, n]) => n > 0).map(([d, n]) => `${n} ${d}`).join(", ")],
      ["rate", `${(e.bytes / 2 ** 20 / seconds).toFixed(1)} MiB/s, ${Math.round(e.ios / seconds)} IOPS over ${seconds.toFixed(3)} s${e.timingIncludesVerify ? " (including the verification read-backs; --no-verify for timing)" : ""}`],
      ["latency", `p50 ${(e.latency.p50Ns / 1e3).toFixed(1)} us, p99 ${(e.latency.p99Ns / 1e3).toFixed(1)} us, max ${(e.latency.maxNs / 1e3).toFixed(1)} us`],
      ["cpu per IO", `${(e.cpuNs / Math.max(1, e.ios) / 1e3).toFixed(2)} us (process CPU, every thread)`],
      ["copied", `${byteAmount(e.copiedBytes)} through bounce buffers; ${e.kernelCalls} kernel calls`],
      ["verified", e.timingIncludesVerify ? `${e.verified} IOs' bytes match the disk${e.unverifiedOverlap > 0 ? `; ${e.unverifiedOverlap} not checked (overlapping IOs in flight, or iovecs overlapping in memory)` : ""}` : "not checked (--no-verify)"],
      ...(e.wrapped + e.tooLong === 0 ? [] : ([["moved", `${e.wrapped} IOs past the disk's end wrapped into it; ${e.tooLong} longer than the disk not done`]] as [string, string][])),
      ...(failed.length === 0 ? [] : ([["FAILED", failed.map(([code, n]) => `${n} refused with ${code}`).join(", ")]] as [string, string][])),
    ]), undefined, "            ");
  }
  return text;
}
