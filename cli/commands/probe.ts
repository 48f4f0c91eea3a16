/**
 * `bounce-bench probe PATH`: how the kernel will treat direct IO on PATH, per direction, with
 * where each value came from; `--empirical` measures both directions by doing direct IO (reads
 * of PATH's data, writes to an unnamed scratch file beside it) and whether it went through the
 * page cache.
 */
import type { Command } from "commander";
import { release } from "node:os";
import { alignmentSources, blockSize, type DiskAlignment } from "../../src/base/alignment-rules";
import { BounceBenchError } from "../../src/base/errors";
import { discoverAlignment, probeAlignment } from "../../src/disk/alignment";
import { blockLimits } from "../../src/disk/block-limits";
import {
  alignmentFromProbe,
  dataToProbe,
  measureAlignment,
  measureKernelChecks,
  probeDirectIo,
  SUBMISSION_METHOD_TEXT,
  wasProbed,
  withDirect,
  type DirectIoProbe,
  type MeasuredKernelChecks,
} from "../../src/disk/direct-io-probe";
import { filesystemType, openUserFile, statusOrNull } from "../../src/host/files";
import { closeFd, O_NONBLOCK, O_RDONLY, OsError, type FileStatus } from "../../src/native";
import { keyValues } from "../format";
import type { Context } from "../main";
import { alignmentJson } from "../../src/io/json-documents";
import { jsonLine } from "../json-output";
import { sharedOptions } from "../options";

export function registerProbe(program: Command, context: Context): void {
  program
    .command("probe")
    .summary("how the kernel treats direct IO, per direction")
    .description(
      "Show how the kernel treats direct IO on a file or block device: whether it does it at all, the rules for reads " +
        "and for writes (memory address, iovec length, file offset), and where each value came from (statx " +
        "STATX_DIOALIGN / STATX_DIO_READ_ALIGN, the block size, sysfs, or an empirical probe).",
    )
    .argument("<path>", "file or block device; only read, never written")
    .option(
      "--empirical",
      "measure by doing direct IO: reads of PATH's data, writes to an unnamed scratch file in PATH's directory " +
        "(O_TMPFILE: PATH itself is never written); also tells whether direct IO falls back to the page cache",
    )
    .addOption(sharedOptions.json())
    .addHelpText(
      "after",
      `
Examples:
  $ bounce-bench image create /tmp/disk.img --size 1MiB
  $ bounce-bench probe /tmp/disk.img                 the kernel's word (statx), per direction
  $ bounce-bench probe /tmp/disk.img --empirical     measured: reads, writes, page-cache fallback
  $ bounce-bench probe /dev/loop0 --json             a block device, with its sysfs limits`,
    )
    .action((path: string, options: { empirical?: boolean; json?: boolean }) => {
      const status = statusOrNull(path, "probe");
      if (status === null) throw new BounceBenchError("ENOENT", `${path}: ENOENT (No such file or directory)`, { kind: "input" });
      if (status.type !== "file" && status.type !== "block-device") {
        throw new BounceBenchError("INVALID_INPUT", `${path}: is a ${status.type}, not a regular file or block device`);
      }
      const fd = openUserFile(path, O_RDONLY | O_NONBLOCK, "disk");
      let alignment: DiskAlignment;
      let measured: DirectIoProbe | null = null;
      let checks: MeasuredKernelChecks;
      let fixed: FixedBufferRules | { unavailable: string };
      try {
        if (options.empirical) {
          measured = probeDirectIo(path, fd, status);
          // The kernel's word about this file stands: a measurement (of a scratch file beside it,
          // for writes) never overrides it; it is shown beside it, and where they differ, said.
          alignment = status.dio !== null ? discoverAlignment(fd, status) : (alignmentFromProbe(measured) ?? probeAlignment(fd, status));
        } else {
          alignment = discoverAlignment(fd, status);
        }
        checks = measureKernelChecks(fd, status, alignment);
        fixed = measureFixedBuffers(fd, status, alignment);
      } finally {
        closeFd(fd);
      }
      const fsType = filesystemType(status);
      const limits = blockLimits(status);
      const sources = alignmentSources(alignment);
      // The rule each direction must meet, as the planner applies it (alignment-rules.ts).
      const rule = (op: "read" | "write") => {
        const block = blockSize(alignment, op);
        return {
          memAlign: alignment.memAlign,
          offsetAlign: block,
          lengthMultiple: block,
          // What this kernel was measured to take on this disk (some builds: iovec lengths multiples of the DMA alignment).
          lengthMultipleTaken: checks.lengthsByMemory ? Math.min(block, Math.max(1, alignment.memAlign)) : block,
          sources: {
            memAlign: sources.memAlign,
            offsetAlign: op === "read" ? sources.readOffsetAlign : sources.offsetAlign,
            lengthMultiple: "statx(2): each iovec's length a multiple of the offset alignment",
            lengthMultipleTaken: checks.sources.lengthsByMemory,
          },
        };
      };
      // Where a measurement differs from what statx says of this file, which stands.
      const differsFromStatx = (op: "read" | "write"): string | null => {
        const side = measured?.[op];
        if (side === undefined || !wasProbed(side) || alignment.source !== "statx") return null;
        const said = blockSize(alignment, op);
        if (side.offsetAlign === said && side.memAlign === alignment.memAlign) return null;
        return `differs from this file's statx (length ${said}, memory ${alignment.memAlign}), which stands: ${side.subject} is not this file (its own extents, shared or not, can make it stricter)`;
      };
      const json = {
        path,
        directIo: alignment.directIo,
        memAlign: alignment.memAlign,
        offsetAlign: alignment.offsetAlign,
        readOffsetAlign: alignment.readOffsetAlign,
        source: alignment.source,
        diskAlignment: alignmentJson(alignment),
        sources,
        filesystem: fsType ?? null,
        // schema 1's name, kept for one version
        ...(fsType === undefined ? {} : { fsType }),
        ...(alignment.note === undefined ? {} : { note: alignment.note }),
        rules: alignment.directIo ? { read: rule("read"), write: rule("write") } : null,
        ...(measured === null
          ? {}
          : {
              empirical: {
                read: wasProbed(measured.read) ? { ...measured.read, differsFromStatx: differsFromStatx("read") } : measured.read,
                write: wasProbed(measured.write) ? { ...measured.write, differsFromStatx: differsFromStatx("write") } : measured.write,
              },
            }),
        pageCache:
          measured === null
            ? null
            : {
                read: wasProbed(measured.read) ? measured.read.pageCache : "unknown",
                write: wasProbed(measured.write) ? measured.write.pageCache : "unknown",
              },
        blockLimits: limits,
        kernel: release(),
        kernelChecks: checks,
        fixedBuffers: fixed,
      };
      if (options.json) {
        context.io.stdout(jsonLine("probe", json));
        return;
      }
      const ruleLines = (op: "read" | "write"): string[] => {
        const r = json.rules![op];
        const taken = r.lengthMultipleTaken !== r.lengthMultiple ? `; this kernel takes multiples of ${r.lengthMultipleTaken}` : "";
        return [
          `memory addresses: multiples of ${r.memAlign} (${r.sources.memAlign})`,
          `file offset and length: multiples of ${r.offsetAlign} (${r.sources.offsetAlign})`,
          `iovec lengths: multiples of ${r.lengthMultiple} (statx(2))${taken}`,
        ];
      };
      const empiricalLines = (op: "read" | "write"): string[] => {
        const side = measured![op];
        if (!wasProbed(side)) return [side.unavailable];
        const differs = differsFromStatx(op);
        return [
          `took length ${side.offsetAlign} and memory offset ${side.memAlign} on ${side.subject}`,
          ...(differs === null ? [] : [differs]),
          `page cache: ${side.pageCache}: ${side.pageCacheEvidence}`,
        ];
      };
      const blockDevice =
        limits === null
          ? "none (not on a block device, or sysfs does not say)"
          : `${limits.device}: logical block ${limits.logicalBlockSize}, DMA alignment ${limits.dmaAlignment ?? "?"}, ` +
            `${limits.maxSegments ?? "?"} segments and ${limits.maxSectorsKb ?? "?"} KiB per request (sysfs)`;
      context.io.stdout(
        keyValues([
          ["path", path],
          ["direct IO", json.directIo ? "yes" : "no (use --mode buffered)"],
          ["source", json.note === undefined ? json.source : `${json.source} (${json.note})`],
          ...(json.rules === null ? [] : ([["reads", ruleLines("read")], ["writes", ruleLines("write")]] as [string, string[]][])),
          ...(measured === null
            ? ([["page cache", "not measured (--empirical measures it)"]] as [string, string][])
            : ([["measured reads", empiricalLines("read")], ["measured writes", empiricalLines("write")]] as [string, string[]][])),
          ["filesystem", fsType ?? "unknown"],
          ["block device", blockDevice],
          ["kernel", json.kernel],
          ["beyond statx", checkLines(checks)],
          [
            "fixed buffers",
            "unavailable" in fixed
              ? [fixed.unavailable]
              : [
                  fixed.method,
                  fixed.reads === null ? "alignment not measured: too little data to read" : `took length ${fixed.reads.offsetAlign} and memory offset ${fixed.reads.memAlign} (reads)`,
                  ...checkLines(fixed.kernelChecks),
                ],
          ],
        ]),
      );
    });
}

/** The kernel's checks beyond statx's rule, a line each. */
function checkLines(checks: MeasuredKernelChecks): string[] {
  return [
    `iovec lengths: ${checks.lengthsByMemory ? "multiples of the memory alignment suffice" : "whole blocks each"}: ${checks.sources.lengthsByMemory}`,
    `one page, any address: ${checks.onePageAnyAddress ? "taken" : "no"}: ${checks.sources.onePageAnyAddress}`,
  ];
}

interface FixedBufferRules {
  method: string;
  reads: { offsetAlign: number; memAlign: number } | null;
  kernelChecks: MeasuredKernelChecks;
}

/**
 * The rules for io_uring's registered buffers on this disk, measured with fixed reads of its
 * data (`SubmissionMethod` "fixed"), or why they cannot be: no direct IO, no io_uring here.
 */
function measureFixedBuffers(fd: number, status: FileStatus, alignment: DiskAlignment): FixedBufferRules | { unavailable: string } {
  if (!alignment.directIo) return { unavailable: "not measured: the disk does no direct IO" };
  try {
    const at = dataToProbe(fd, status);
    return {
      method: SUBMISSION_METHOD_TEXT.fixed,
      reads: at === null ? null : withDirect(fd, () => measureAlignment(fd, "read", at, "fixed")),
      kernelChecks: measureKernelChecks(fd, status, alignment, "fixed"),
    };
  } catch (error) {
    if (error instanceof OsError) return { unavailable: `not measured: ${error.message}` };
    throw error;
  }
}
