/**
 * `bounce-bench plan`: the alignment decision for one IO, without doing it. Measuring what the
 * kernel does on --disk (`--kernel current`, `--rules all`, and page-cache fallback where statx
 * is silent) takes a few direct reads of its data, and writes to an unnamed scratch file beside
 * it; never a write to the disk.
 */
import type { Command } from "commander";
import { DEFAULT_ALIGNMENT, overrideAlignment } from "../../src/base/alignment-rules";
import { discoverAlignment } from "../../src/disk/alignment";
import { statusOrNull } from "../../src/host/files";
import { InvalidInputError } from "../../src/base/errors";
import { plan, type Plan } from "../../src/io/planner";
import type { PagedRange } from "../../src/memory/paged-range";
import type { DiskAlignment } from "../../src/base/alignment-rules";
import type { CurrentChecks } from "../../src/io/kernel-verdicts";
import { planJson } from "../../src/io/json-documents";
import { formatGpnList } from "../../src/base/value-parsers";
import { describeAlignment, iovecText, keyValues, table } from "../format";
import type { Context } from "../main";
import { jsonLine } from "../json-output";
import { addSegmentOptions, parseSegments, sharedOptions, type SegmentOptions } from "../options";
import type { IoMode, IoOp } from "../../src/io/planner";
import { DOCUMENTED_CHECKS, RULE_SETS, type KernelChecks, type RuleSet } from "../../src/base/alignment-rules";
import { kernelProblem } from "../../src/base/kernel-rules";
import { KERNEL_CHOICES } from "../../src/base/kernel-rules";
import { Disk } from "../../src/disk/disk";
import { probeDirectIo, wasProbed } from "../../src/disk/direct-io-probe";
import { openUserFile } from "../../src/host/files";
import { closeFd, O_NONBLOCK, O_RDONLY, statx } from "../../src/native";
import { kernelCalls, kernelVerdicts, type KernelVerdict } from "../../src/io/kernel-verdicts";
import { Option } from "commander";

interface PlanOptions extends SegmentOptions {
  align?: number;
  memAlign?: number;
  rules: RuleSet | "all";
  disk?: string;
  at: number;
  op: IoOp;
  mode: IoMode;
  kernel?: string;
  json?: boolean;
}

export function registerPlan(program: Command, context: Context): void {
  const command = program
    .command("plan")
    .summary("how one IO would reach the kernel; no IO")
    .description(
      "Show how one IO would reach the kernel: direct, bounce, read-modify-write or split, with every reason. " +
        "The IO is not done (measuring what the kernel does on --disk reads its data, and where statx is silent writes an unnamed scratch file beside it; never the disk). The disk's rules are --disk's (statx, block size or a probe), else those of a 4 KiB-sector disk with 512-byte memory alignment; " +
        "--align and --mem-align simulate a stricter disk.",
    );
  addSegmentOptions(command)
    .addOption(
      new Option(
        "--rules <rules>",
        "kernel: the kernel's documented rule, on the iovecs handed over; seed: the reference crate's per-segment rule; qemu, cloud-hypervisor, openvmm: those VMMs' policies; all: every one side by side, with what each copies needlessly and what it sends that this kernel refuses",
      )
        .choices([...RULE_SETS, "all"])
        .default("kernel"),
    )
    .addOption(sharedOptions.align("simulate a disk with this block size (a power of two); at least --disk's"))
    .addOption(sharedOptions.memAlign())
    .option("--disk <path>", "take the alignment from this disk (statx, block size or a probe)")
    .addOption(sharedOptions.at(false))
    .addOption(sharedOptions.op(false))
    .addOption(sharedOptions.mode())
    .addOption(
      new Option(
        "--kernel <name>",
        "which kernels would take the IO directly: a named rule set (5.19, 6.0, 6.18.0, 6.18-stable), current (the running kernel, measured on --disk with a few direct reads, never writes) or all",
      ).choices(KERNEL_CHOICES as string[]),
    )
    .addOption(sharedOptions.json())
    .addHelpText(
      "after",
      `
Examples:
  $ bounce-bench plan --seg 0@512+3584 --seg 2@0+512 --at 0                 a descriptor boundary inside a 4 KiB block
  $ bounce-bench plan --gpns 0-15 --mem-offset 512 --align 4096 --rules seed  what the reference rule would copy
  $ bounce-bench plan --gpns 0 --len 512 --at 512 --op write --align 4096   a read-modify-write
  $ bounce-bench image create /tmp/disk.img --size 1MiB
  $ bounce-bench plan --disk /tmp/disk.img --gpns 0-1 --at 0 --json
  $ bounce-bench plan --gpns 3 --mem-offset 100 --len 512 --align 512 --kernel all  which kernels take it directly`,
    )
    .action((options: PlanOptions) => {
      const { ranges } = parseSegments(options);
      const { at, align, memAlign, rules } = options;
      let alignment = DEFAULT_ALIGNMENT;
      if (options.disk !== undefined) {
        const status = statusOrNull(options.disk, "--disk");
        if (status === null) throw new InvalidInputError(`--disk ${options.disk}: no such file`);
        if (status.type !== "file" && status.type !== "block-device") {
          throw new InvalidInputError(`--disk ${options.disk}: is a ${status.type}, not a regular file or block device`);
        }
        alignment = discoverAlignment(options.disk, status);
        // As `io` would: a disk without direct IO has no direct plan to make (ext4 data=journal).
        if (!alignment.directIo && options.mode !== "buffered") {
          throw new InvalidInputError(`--disk ${options.disk}: its filesystem does no direct IO (${alignment.source}: ${alignment.note ?? "no alignment"}); plan --mode buffered`);
        }
      }
      // Where statx says nothing of direct IO (btrfs, tmpfs), the filesystem may serve it through
      // the page cache: measured as probe --empirical does (reads of --disk's data, writes to an
      // unnamed scratch file beside it, never --disk), for the IO's direction.
      let pageCache: PlanPageCache | null = null;
      if (options.disk !== undefined && alignment.source === "probe" && alignment.directIo && options.mode !== "buffered") {
        const fd = openUserFile(options.disk, O_RDONLY | O_NONBLOCK, "disk");
        try {
          const side = probeDirectIo(options.disk, fd, statx(fd))[options.op];
          pageCache = wasProbed(side) ? { use: side.pageCache, evidence: `${side.pageCacheEvidence} (measured on ${side.subject})` } : { use: "unknown", evidence: side.unavailable };
        } finally {
          closeFd(fd);
        }
      }
      if (align !== undefined || memAlign !== undefined) alignment = overrideAlignment(alignment, align, memAlign);
      const result = plan({ op: options.op, mode: options.mode, at, segments: ranges, alignment, rules: rules === "all" ? "kernel" : rules });
      // The running kernel's checks on --disk, measured once, for --kernel current and --rules all.
      let measured: CurrentChecks | null = null;
      const current = (): CurrentChecks | null => {
        if (options.disk === undefined) return null;
        if (measured === null) {
          using disk = Disk.open(options.disk, { write: false, direct: false });
          measured = disk.kernelChecks;
        }
        return measured;
      };
      let kernels: KernelVerdict[] | undefined;
      if (options.kernel !== undefined) {
        const wantsCurrent = options.kernel === "current" || options.kernel === "all";
        kernels = kernelVerdicts({ op: options.op, at, segments: ranges, alignment }, options.kernel, wantsCurrent ? current() : null);
      }
      if (rules === "all" && options.mode === "buffered") throw new InvalidInputError("--rules all compares how rule sets send direct IO; --mode buffered sends none");
      const policies = rules === "all" ? comparePolicies({ op: options.op, mode: options.mode, at, segments: ranges, alignment }, result, current()) : undefined;
      const sendsDirect = result.decision === "direct" || result.decision === "split";
      // This IO falls back (true), may (null: the filesystem buffers what it finds misaligned), or not.
      const fallback = pageCache === null ? null : { ...pageCache, fallback: sendsDirect && pageCache.use === "always" ? true : sendsDirect && pageCache.use !== "never" ? null : false };
      const json = {
        ...planJson(result, alignment),
        pageCache: fallback,
        ...(kernels === undefined ? {} : { kernels }),
        ...(policies === undefined ? {} : { policies }),
      };
      if (options.json) {
        context.io.stdout(jsonLine("plan", json));
        return;
      }
      const bounced = json.bounced.map(
        (b) => `${b.len} bytes of segment${b.segments[0] === b.segments[1] ? ` ${b.segments[0]}` : `s ${b.segments[0]}-${b.segments[1]}`} (disk ${b.diskStart}+${b.diskLen})`,
      );
      context.io.stdout(
        keyValues([
          ["decision", fallback?.fallback === true ? `${json.decision} (the filesystem falls back to the page cache)` : json.decision],
          ["reasons", shown(json.reasons, "reasons")],
          ...(fallback === null ? [] : ([["page cache", `${fallback.use} for ${json.op}s: ${fallback.evidence}`]] as [string, string][])),
          ["rules", `${json.rules}${json.audit === null ? "" : `; --rules seed would ${json.audit.copiedBytes === 0 ? "copy nothing" : `copy ${json.audit.copiedBytes} bytes`} (${json.audit.decision})`}`],
          ["alignment", `${json.alignment} for memory; disk: ${describeAlignment(json.diskAlignment)}`],
          ["io", `${json.op} ${json.len} bytes at disk offset ${json.at}, mode ${json.mode}`],
          ["calls", shown(json.calls.map((call) => `${call.iovecs} iovec${call.iovecs === 1 ? "" : "s"}, ${call.bytes} bytes at ${call.at}`), "calls")],
          ["bounced", bounced.length === 0 ? ["nothing"] : [...shown(bounced, "bounced parts"), `${json.bouncePages} bounce page${json.bouncePages === 1 ? "" : "s"}`]],
        ]) +
          table(
            ["segment", "offset", "len", "gpns"],
            json.segments.slice(0, SHOWN_ROWS).map((segment, i) => [i, segment.offset, segment.len, formatGpnList(segment.gpns)]),
          ) +
          (json.segments.length > SHOWN_ROWS ? `... ${json.segments.length} segments in all (--json lists every one)\n` : "") +
          keyValues([["guest iovecs", json.iovecs.length > 8 ? [...json.iovecs.slice(0, 8).map(iovecText), `... ${json.iovecs.length} in all`] : json.iovecs.map(iovecText)]]) +
          (policies === undefined
            ? ""
            : table(
                ["rules", "decision", "copied", "needlessly copied", `${policies[0]!.judgedBy}`],
                policies.map((p) => [p.rules, p.decision, p.copiedBytes, p.needlessBytes, p.refused === null ? "takes it" : `UNSOUND: refuses it (${p.refused})`]),
              )) +
          (kernels === undefined
            ? ""
            : table(
                ["kernel", "the IO in direct mode", "why not"],
                kernels.map((k) => [k.kernel, k.takes === null ? "not judged" : k.takes ? "taken" : "refused (EINVAL)", k.problem ?? ""]),
              ) + keyValues([["kernel rules", kernels.map((k) => `${k.kernel} (${k.kernels}): ${k.rule}`)]])),
      );
    });
}

/** Rows of a list printed for people: a plan of 20000 segments is read with --json. */
const SHOWN_ROWS = 64;

function shown(lines: string[], what: string): string[] {
  return lines.length <= SHOWN_ROWS ? lines : [...lines.slice(0, SHOWN_ROWS), `... ${lines.length} ${what} in all (--json lists every one)`];
}

/** One rule set's decision under `plan --rules all`. */
interface PolicyVerdict {
  rules: RuleSet;
  decision: string;
  copiedBytes: number;
  /** Bytes it copies beyond what the kernel rule copies (the least that is sound on every kernel). */
  needlessBytes: number;
  /** Why the kernel judging it refuses what this rule set sends (an unsound policy), or null. */
  refused: string | null;
  /** What judged it: the running kernel measured on --disk, or the documented rule. */
  judgedBy: string;
}

/**
 * Every rule set's plan of the IO, judged by the running kernel as measured on the disk (or,
 * with no disk named, by the documented rule): what each copies beyond the kernel rule's copy,
 * and whether the kernel would refuse what it sends (its direct iovecs, or its own copy).
 */
function comparePolicies(io: { op: IoOp; mode: IoMode; at: number; segments: PagedRange[]; alignment: DiskAlignment }, kernelPlan: Plan, current: KernelChecks | null): PolicyVerdict[] {
  const checks = current ?? DOCUMENTED_CHECKS;
  const judgedBy = current === null ? "the documented rule (no --disk)" : "this kernel, measured on --disk";
  return RULE_SETS.map((rules) => {
    const decided = rules === "kernel" ? kernelPlan : plan({ ...io, rules });
    return {
      rules,
      decision: decided.decision,
      copiedBytes: decided.copiedBytes,
      needlessBytes: Math.max(0, decided.copiedBytes - kernelPlan.copiedBytes),
      refused: kernelProblem(kernelCalls(decided), io.alignment, io.op, checks),
      judgedBy,
    };
  });
}

/** What plan says of page-cache fallback on a disk whose statx says nothing of direct IO. */
interface PlanPageCache {
  /** How the filesystem served direct IO of the plan's direction when measured. */
  use: "always" | "misaligned" | "never" | "unknown";
  evidence: string;
}
