/**
 * `bounce-bench trace capture` and `trace convert`: traces of real direct IO (src/trace), to be
 * replayed with `bounce-bench replay`.
 */
import type { Command } from "commander";
import { Option } from "commander";
import { InvalidInputError } from "../../src/base/errors";
import { capture } from "../../src/trace/capture";
import { convert, CONVERTIBLE_FORMATS, type ConvertibleFormat } from "../../src/trace/convert";
import { parseCount } from "../../src/base/value-parsers";
import type { Context } from "../main";
import { jsonLine } from "../json-output";
import { sharedOptions } from "../options";
import { keyValues } from "../format";
import { SignalGuard } from "../signals";
import { VERSION } from "../version";

export function registerTrace(program: Command, context: Context): void {
  const trace = program
    .command("trace")
    .summary("capture or convert traces of direct IO")
    .description("Capture the direct IO a program hands the kernel, or convert another tool's log, into a trace for `bounce-bench replay` (docs/trace.md).");
  trace
    .command("capture")
    .summary("record a program's direct IO, iovec addresses included (root)")
    .description(
      "Record every direct IO (O_DIRECT read, write, pread64, pwrite64, readv, writev, preadv, pwritev, preadv2, pwritev2, io_uring read and write SQEs) " +
        "that a command, or a running process and what it forks, hands the kernel: time, op, disk offset, each iovec's address and length, result. " +
        "--disk limits it to one file or block device. Uses bpftrace (root); a canary read checks the capture sees the disk's IO before anything runs. " +
        "Reads --disk (the canary), never writes it. The trace format is in docs/trace.md.",
    )
    .argument("[command...]", "the command to run and capture, after --")
    .option("--pid <pid>", "follow this running process (and what it forks) instead of running a command")
    .option("--disk <path>", "only IO to this file or block device (default: every O_DIRECT descriptor)")
    .requiredOption("--output <trace>", "(required) the trace file to write (JSON Lines)")
    .option("--duration <seconds>", "stop after this many seconds (default: when the command or pid exits)")
    .addOption(sharedOptions.force("replace an existing trace file"))
    .addOption(sharedOptions.json())
    .addHelpText(
      "after",
      `
Examples:
  $ bounce-bench image create /tmp/disk.img --size 4MiB
  $ bounce-bench trace capture --disk /tmp/disk.img --output /tmp/dd.trace -- dd if=/tmp/disk.img of=/dev/null bs=64k iflag=direct
  $ bounce-bench trace capture --disk /tmp/disk.img --output /tmp/fio.trace -- fio --name=vm --filename=/tmp/disk.img --direct=1 --rw=randrw --bs=4k --size=1m --mem_align=512 --output=/dev/null
  $ bounce-bench trace capture --pid 1234 --duration 60 --output /tmp/vmm.trace
  $ bounce-bench replay /tmp/fio.trace --rules all --kernel all`,
    )
    .action(async (command: string[], options: { pid?: string; disk?: string; output: string; duration?: string; force?: boolean; json?: boolean }) => {
      const pid = options.pid === undefined ? undefined : parseCount(options.pid, "--pid");
      const duration = options.duration === undefined ? undefined : parseCount(options.duration, "--duration");
      if (pid !== undefined && command.length > 0) throw new InvalidInputError("trace capture: give --pid or a command after --, not both");
      let stop: () => void = () => {};
      const stopRequested = new Promise<void>((resolve) => (stop = resolve));
      using guard = new SignalGuard(() => stop());
      void guard;
      const result = await capture({
        pid,
        command: pid === undefined && command.length > 0 ? command : undefined,
        disk: options.disk,
        output: options.output,
        force: options.force,
        duration,
        tool: `bounce-bench ${VERSION}`,
        stopRequested,
        log: (line) => context.io.stderr(`bounce-bench: ${line}\n`),
      });
      const missed = Object.entries(result.missed);
      if (options.json) {
        context.io.stdout(jsonLine("trace capture", { trace: result.output, ios: result.ios, missed: result.missed, maxInFlight: result.maxInFlight, commandExit: result.commandExit }));
      } else {
        context.io.stdout(
          keyValues([
            ["trace", result.output],
            ["ios", `${result.ios} direct IOs recorded, at most ${result.maxInFlight} in flight`],
            ["missed", missed.length === 0 ? "nothing seen was left out" : missed.map(([what, count]) => `${what}: ${count}`)],
            ...(result.commandExit === null ? [] : ([["command", `exited ${result.commandExit}`]] as [string, string][])),
          ]),
        );
      }
      if (missed.length > 0) context.io.stderr(`bounce-bench: the capture saw IO it could not record (${missed.map(([what, count]) => `${what}: ${count}`).join(", ")}); the trace's end line says so\n`);
    });

  trace
    .command("convert")
    .summary("make a trace from a fio iolog or blkparse text, assuming a memory layout")
    .description(
      "Convert another tool's log of disk IO into a trace. Those logs have no buffer addresses, so the trace is marked synthetic " +
        "with the layout assumed: each IO one iovec at --mem-offset bytes into a page (0: page-aligned, as most programs allocate).",
    )
    .argument("<input>", "the log to convert")
    .addOption(new Option("--from <format>", "(required) fio-iolog: fio's write_iolog (v2 or v3); blkparse: blkparse's default text output").choices([...CONVERTIBLE_FORMATS]).makeOptionMandatory())
    .requiredOption("--output <trace>", "(required) the trace file to write")
    .option("--mem-offset <bytes>", "where each buffer starts in its page", "0")
    .addOption(sharedOptions.force("replace an existing trace file"))
    .addOption(sharedOptions.json())
    .addHelpText(
      "after",
      `
Examples:
  $ printf 'fio version 2 iolog\\nd read 0 4096\\nd write 4096 512\\n' > /tmp/job.iolog
  $ bounce-bench trace convert /tmp/job.iolog --from fio-iolog --output /tmp/job.trace --force
  $ bounce-bench trace convert /tmp/job.iolog --from fio-iolog --mem-offset 512 --output /tmp/job-512.trace --force
  $ bounce-bench replay /tmp/job-512.trace --disk-kind loop --sector 4096`,
    )
    .action((input: string, options: { from: ConvertibleFormat; output: string; memOffset: string; force?: boolean; json?: boolean }) => {
      const memOffset = parseCount(options.memOffset, "--mem-offset", 0);
      const result = convert({ input, from: options.from, output: options.output, force: options.force ?? false, memOffset, tool: `bounce-bench ${VERSION}` });
      if (options.json) context.io.stdout(jsonLine("trace convert", { trace: options.output, ios: result.ios, skipped: result.skipped }));
      else context.io.stdout(keyValues([["trace", options.output], ["ios", `${result.ios} IOs (synthetic: ${result.memory})`], ["skipped", `${result.skipped} lines that are not reads or writes`]]));
    });
}
