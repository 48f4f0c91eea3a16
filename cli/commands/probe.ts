/**
 * `bounce-bench probe PATH`: how the kernel will treat direct IO on PATH.
 */
import type { Command } from "commander";
import { release } from "node:os";
import { blockSize } from "../../src/base/alignment-rules";
import { blockLimits } from "../../src/disk/block-limits";
import { discoverAlignment, probeAlignment } from "../../src/disk/alignment";
import { BounceBenchError } from "../../src/base/errors";
import { filesystemType, statusOrNull } from "../../src/host/files";
import { keyValues } from "../format";
import type { Context } from "../main";
import { sharedOptions } from "../options";

export function registerProbe(program: Command, context: Context): void {
  program
    .command("probe")
    .description(
      "Show how the kernel treats direct IO on a file or block device: whether it does it at all, the memory and " +
        "offset alignment, and where that came from (statx STATX_DIOALIGN, the block size, or an empirical probe).",
    )
    .argument("<path>", "file or block device; only read, never written")
    .option("--empirical", "measure with direct reads even when the kernel reports the alignment")
    .addOption(sharedOptions.json())
    .action((path: string, options: { empirical?: boolean; json?: boolean }) => {
      const status = statusOrNull(path, "probe");
      if (status === null) throw new BounceBenchError("ENOENT", `${path}: ENOENT (No such file or directory)`, { kind: "input" });
      if (status.type !== "file" && status.type !== "block-device") {
        throw new BounceBenchError("INVALID_INPUT", `${path}: is a ${status.type}, not a regular file or block device`);
      }
      const alignment = options.empirical ? probeAlignment(path, status) : discoverAlignment(path, status);
      const fsType = filesystemType(status);
      const limits = blockLimits(status);
      // The rule each direction must meet, as the planner applies it (alignment-rules.ts).
      const rule = (op: "read" | "write") => ({
        memAlign: alignment.memAlign,
        offsetAlign: blockSize(alignment, op),
        lengthMultiple: blockSize(alignment, op),
      });
      const json = {
        path,
        directIo: alignment.directIo,
        memAlign: alignment.memAlign,
        offsetAlign: alignment.offsetAlign,
        readOffsetAlign: alignment.readOffsetAlign,
        source: alignment.source,
        ...(fsType === undefined ? {} : { fsType }),
        ...(alignment.note === undefined ? {} : { note: alignment.note }),
        rules: alignment.directIo ? { read: rule("read"), write: rule("write") } : null,
        blockLimits: limits,
        kernel: release(),
      };
      if (options.json) {
        context.io.stdout(`${JSON.stringify(json)}\n`);
        return;
      }
      context.io.stdout(
        keyValues([
          ["path", path],
          ["direct IO", json.directIo ? "yes" : "no (use --mode buffered)"],
          ["memory", String(json.memAlign)],
          ["offset", String(json.offsetAlign)],
          ["read offset", String(json.readOffsetAlign)],
          ["source", json.note === undefined ? json.source : `${json.source} (${json.note})`],
          ["filesystem", fsType ?? "unknown"],
          [
            "block device",
            limits === null
              ? "none (not on a block device, or sysfs does not say)"
              : `${limits.device}: logical block ${limits.logicalBlockSize}, DMA alignment ${limits.dmaAlignment ?? "?"}, ` +
                `${limits.maxSegments ?? "?"} segments and ${limits.maxSectorsKb ?? "?"} KiB per request`,
          ],
          ["kernel", json.kernel],
        ]),
      );
    });
}
