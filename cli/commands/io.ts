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
import { ioJson } from "../../src/io/json-documents";
import { compareDiskWithGuest, MismatchError, RefusalWatch } from "../../src/io/verify";
import { PageCacheTrace } from "../../src/host/page-cache-trace";
import { PageCacheWatch, type PageCacheUse } from "../../src/io/page-cache-watch";
import { describeAlignment, keyValues } from "../format";
import type { Context } from "../main";
import { jsonLine } from "../json-output";
import { addSegmentOptions, parseSegments, sharedOptions, type SegmentOptions } from "../options";
import type { IoMode, IoOp } from "../../src/io/planner";
import type { RuleSet } from "../../src/base/alignment-rules";

interface IoOptions extends SegmentOptions {
  guest: string;
  disk: string;
  op: IoOp;
  at: number;
  mode: IoMode;
  align?: number;
  memAlign?: number;
  rules: RuleSet;
  fua?: boolean;
  verify: boolean;
  overwriteDevice?: boolean;
  json?: boolean;
}

export function registerIo(program: Command, context: Context): void {
  const command = program
    .command("io")
    .summary("do one IO between guest and disk, verified")
    .description(
      "Do one IO: read moves disk bytes [at, at+len) into the guest pages, write moves the guest bytes to the disk. " +
        "The decision and its reasons are printed, and the bytes are verified afterwards with an independent buffered read.",
    )
    .requiredOption("--guest <path>", "(required) guest image (a whole number of 4096-byte pages)")
    .requiredOption("--disk <path>", "(required) disk file or block device (must exist)")
    .addOption(sharedOptions.op(true));
  addSegmentOptions(command)
    .addOption(sharedOptions.at(true))
    .addOption(sharedOptions.mode())
    .addOption(sharedOptions.rules())
    .addOption(sharedOptions.align())
    .addOption(sharedOptions.memAlign())
    .addOption(sharedOptions.fua())
    .addOption(sharedOptions.overwriteDevice())
    .option("--no-verify", "skip reading the bytes back")
    .addOption(sharedOptions.json())
    .addHelpText(
      "after",
      `
--op and --at are required too. fio's --rw works for --op.

Examples:
  $ bounce-bench image create /tmp/guest.img --size 1MiB
  $ bounce-bench image create /tmp/disk.img --size 1MiB
  $ bounce-bench io --guest /tmp/guest.img --disk /tmp/disk.img --op write --gpns 0-1 --at 0
  $ bounce-bench io --guest /tmp/guest.img --disk /tmp/disk.img --op read --seg 0@512+3584 --seg 2@0+512 --at 4096
  $ bounce-bench io --guest /tmp/guest.img --disk /tmp/disk.img --op write --gpns 3 --mem-offset 8 --len 512 --at 0 --mode direct`,
    )
    .action(async (options: IoOptions) => {
      const { op, mode, at, rules, align: alignOverride, memAlign: memAlignOverride } = options;
      const { ranges } = parseSegments(options);
      if (options.fua && op !== "write") throw new InvalidInputError("--fua applies to writes only");

      using memory = GuestMemory.open(options.guest);
      using disk = Disk.open(options.disk, { write: op === "write", direct: mode !== "buffered", alignOverride, memAlignOverride, overwriteDevice: options.overwriteDevice });
      const decided = plan({ op, mode, at, segments: ranges, alignment: disk.alignment, rules });
      // A forced direct IO the kernel refuses may still have changed the disk (a write) or guest
      // memory (a read): when it spans several block-layer requests, the ones before the refused
      // one were carried out. Say so, both ways.
      const watch = mode === "direct" ? new RefusalWatch(options.disk, decided.diskStart, decided.diskEnd - decided.diskStart, memory, ranges) : null;
      // Whether the filesystem served the "direct" IO through the page cache after all.
      using trace = mode !== "buffered" && disk.type === "file" ? PageCacheTrace.tryStart(disk.fd) : null;
      const cacheWatch = mode !== "buffered" ? new PageCacheWatch(disk, op, decided.diskStart, decided.diskEnd - decided.diskStart, trace) : null;
      let result;
      try {
        result = await executePlan(decided, memory, disk, { fua: options.fua ?? false });
      } catch (error) {
        throw explainRefusal(error, mode, watch?.changes());
      }
      const pageCache: PageCacheUse = cacheWatch?.finish() ?? { used: true, traced: null, evidence: "--mode buffered: through the page cache by design" };
      memory.sync();
      let verified = false;
      if (options.verify) {
        const mismatch = compareDiskWithGuest(options.disk, at, memory, ranges);
        if (mismatch !== null) throw new MismatchError(mismatch);
        verified = true;
      }
      const json = { ...ioJson(decided, disk.alignment, result, verified), pageCache };
      if (options.json) {
        context.io.stdout(jsonLine("io", json));
        return;
      }
      context.io.stdout(
        keyValues([
          ["decision", pageCache.used === true && (json.decision === "direct" || json.decision === "split") ? `${json.decision} (page-cache fallback)` : json.decision],
          ["reasons", json.reasons],
          ["io", `${json.op} ${json.bytes} bytes at disk offset ${json.at}, mode ${json.mode}, ${json.calls} call${json.calls === 1 ? "" : "s"}`],
          ["bounced", json.bouncePages === 0 ? "nothing" : `${json.copiedBytes} bytes through ${json.bouncePages} bounce page${json.bouncePages === 1 ? "" : "s"}`],
          ["alignment", describeAlignment(json.alignment)],
          ["elapsed", `${(json.elapsedNs / 1000).toFixed(1)} us`],
          ["verified", verified ? "yes: disk and guest bytes match" : "skipped (--no-verify)"],
          ["page cache", `${pageCache.used === null ? "unknown" : pageCache.used ? "USED" : "not used"}: ${pageCache.evidence}`],
        ]),
      );
    });
}

/**
 * A kernel refusal of a forced direct IO gets fio's kind of hint, and whether the disk and guest
 * memory changed before the refusal (`changes`, from the `RefusalWatch`).
 */
function explainRefusal(error: unknown, mode: string, changes: ReturnType<RefusalWatch["changes"]> | undefined): unknown {
  if (!(error instanceof OsError && mode === "direct")) return error;
  const hints: string[] = [];
  if (error.code === "EINVAL" && error.hint === undefined) hints.push("the kernel refused the direct IO as it stands; --mode auto would bounce or widen it");
  else if (error.hint !== undefined) hints.push(error.hint);
  if (changes !== undefined) {
    const { diskChangedAt, guestBytesChanged } = changes;
    hints.push(diskChangedAt === null ? "nothing on the disk changed" : `the disk DID change before the refusal (from about offset ${diskChangedAt}): the requests before the refused one were written`);
    hints.push(guestBytesChanged === 0 ? "no guest byte changed" : `guest memory DID change before the refusal (${guestBytesChanged} bytes): the requests before the refused one were read into it`);
  }
  const explained = new OsError(error.errno, error.call, error.detail, hints.join("; "));
  if (changes !== undefined) {
    explained.facts.diskChanged = changes.diskChangedAt !== null;
    explained.facts.guestChanged = changes.guestBytesChanged > 0;
    explained.facts.guestBytesChanged = changes.guestBytesChanged;
  }
  return explained;
}
