/**
 * `bounce-bench io`: one real IO between guest memory and a disk, decided, performed, verified.
 */
import type { Command } from "commander";
import { Disk } from "../../src/disk/disk";
import { InvalidInputError } from "../../src/base/errors";
import { executePlan } from "../../src/io/executor";
import { GuestMemory } from "../../src/memory/guest-memory";
import { OsError } from "../../src/native";
import { plan } from "../../src/io/planner";
import { ioJson } from "../../src/io/documents";
import { parseSize } from "../../src/base/values";
import { compareDiskWithGuest, MismatchError } from "../../src/io/verify";
import { describeAlignment, keyValues } from "../format";
import type { Context } from "../main";
import { addSegmentOptions, modeOption, opOption, parseAlign, parseMode, parseOp, parseSegments, type SegmentOptions } from "../options";

interface IoOptions extends SegmentOptions {
  guest: string;
  disk: string;
  op: string;
  at: string;
  mode?: string;
  align?: string;
  fua?: boolean;
  verify: boolean;
  json?: boolean;
}

export function registerIo(program: Command, context: Context): void {
  const command = program
    .command("io")
    .description(
      "Do one IO: read moves disk bytes [at, at+len) into the guest pages, write moves the guest bytes to the disk. " +
        "The decision and its reasons are printed, and the bytes are verified afterwards with an independent buffered read.",
    )
    .requiredOption("--guest <path>", "guest image (a whole number of 4096-byte pages)")
    .requiredOption("--disk <path>", "disk file or block device (must exist)")
    .addOption(opOption(true));
  addSegmentOptions(command)
    .requiredOption("--at <n>", "disk offset in bytes")
    .addOption(modeOption())
    .option("--align <n>", "simulate a disk with this alignment (a power of two), e.g. 4096 on a 512-byte disk")
    .option("--fua", "write with RWF_DSYNC (durable on completion)")
    .option("--no-verify", "skip reading the bytes back")
    .option("--json", "print one JSON document on stdout")
    .action(async (options: IoOptions) => {
      const op = parseOp(options.op);
      const mode = parseMode(options.mode);
      const { ranges } = parseSegments(options);
      const at = parseSize(options.at, "--at");
      const alignOverride = parseAlign(options.align);
      if (options.fua && op !== "write") throw new InvalidInputError("--fua applies to writes only");

      using memory = GuestMemory.open(options.guest);
      using disk = Disk.open(options.disk, { write: op === "write", direct: mode !== "buffered", alignOverride });
      const decided = plan({ op, mode, at, segments: ranges, alignment: disk.alignment });
      let result;
      try {
        result = await executePlan(decided, memory, disk, { fua: options.fua ?? false });
      } catch (error) {
        throw explainRefusal(error, mode);
      }
      memory.sync();
      let verified = false;
      if (options.verify) {
        const mismatch = compareDiskWithGuest(options.disk, at, memory, ranges);
        if (mismatch !== null) throw new MismatchError(mismatch);
        verified = true;
      }
      const json = ioJson(decided, disk.alignment, result, verified);
      if (options.json) {
        context.io.stdout(`${JSON.stringify(json)}\n`);
        return;
      }
      context.io.stdout(
        keyValues([
          ["decision", json.decision],
          ["reasons", json.reasons],
          ["io", `${json.op} ${json.bytes} bytes at disk offset ${json.at}, mode ${json.mode}, ${json.calls} call${json.calls === 1 ? "" : "s"}`],
          ["bounced", json.bouncePages === 0 ? "nothing" : `${json.copiedBytes} bytes through ${json.bouncePages} bounce page${json.bouncePages === 1 ? "" : "s"}`],
          ["alignment", describeAlignment(json.alignment)],
          ["elapsed", `${(json.elapsedNs / 1000).toFixed(1)} us`],
          ["verified", verified ? "yes: disk and guest bytes match" : "skipped (--no-verify)"],
        ]),
      );
    });
}

/** A kernel refusal of a forced direct IO gets fio's kind of hint. */
function explainRefusal(error: unknown, mode: string): unknown {
  if (error instanceof OsError && error.code === "EINVAL" && mode === "direct" && error.hint === undefined) {
    return new OsError(error.errno, error.call, error.detail, "the kernel refused the direct IO as it stands; --mode auto would bounce or widen it");
  }
  return error;
}
