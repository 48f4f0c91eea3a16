/**
 * The fio job file closest to a benchmark's cases, so the workload can be rerun with fio (on this
 * host, or on many through fio's client/server mode). Written after the run, from what each case
 * did, so that every job is one fio can run:
 *
 *   direct      the same IO: rw, bs, direct=1, the memory offset as iomem_align (fio places each
 *               buffer at a page boundary plus that much)
 *   bounce      fio cannot copy through a bounce buffer: the job does the direct IO the bounce
 *               buffer did (page-aligned memory), without the copy
 *   rmw, split  fio cannot widen an IO to blocks, read-modify-write or split a scatter-gather
 *   (widened)   list: the job does the aligned direct IO of the whole blocks (bs rounded up to
 *               the block), which is what reached the disk (a read-modify-write also reads first)
 *   buffered    direct=0
 *   refused     a forced direct case the kernel refused: fio would be refused too, so the job is
 *               written commented out, with the reason
 *
 * Every job says in a comment what fio cannot express. Engines: bounce-bench's `sync` is vectored
 * (preadv/pwritev), so it is fio's `pvsync`; `uring` is `io_uring`; `null` is `null`. Jobs run
 * one after another (stonewall); --runtime is time_based + runtime, --ios is number_ios, threads
 * are numjobs with offset_increment over the disk's regions. The disk path is written as fio
 * reads it literally, or refused before the run (`fioFilenameValue`).
 */
import { blockSize, type DiskAlignment } from "../base/alignment-rules";
import { InvalidInputError } from "../base/errors";
import { threadRegionBytes } from "./job";
import { formatShape, type BenchOptions } from "./bench-options";
import type { BenchCaseResult, BenchReport } from "./bench-results";

const FIO_ENGINES = { sync: "pvsync", uring: "io_uring", null: "null" } as const;

/**
 * The disk path as a value of fio's `filename=`, read by fio exactly as given, or a clear error
 * for a path that cannot be one. How fio reads a job line (axboe/fio):
 *
 *   parse.c strip_blank_end         a value ends at the first ';' or '#' (a comment), and loses
 *                                   the blanks and control characters around it
 *   options.c fio_option_dup_subs   `${VAR}` is replaced by the environment variable
 *   options.c fio_keyword_replace   `$pagesize`, `$mb_memory`, `$ncpus` are replaced, and the
 *                                   result handed to `bc` through a shell when it has + - * /
 *   options.c get_next_str          ':' separates several files; `\:` is a ':' of the name
 *
 * and a value cannot hold a line break (the next line is another option, any option: exec_prerun
 * runs a command). So ':' is escaped, and '$', ';', '#', '\', control characters and blanks at
 * either end are refused: each would make fio read another file, or run something.
 */
export function fioFilenameValue(path: string): string {
  const refuse = (why: string) => new InvalidInputError(`--emit-fio: the disk path ${JSON.stringify(path)} ${why}; fio would read another file or option from it, so no job is written for it`);
  if (path.length === 0) throw refuse("is empty");
  if (/[\x00-\x1f\x7f]/.test(path)) throw refuse("holds a control character (a line break would start another fio option)");
  for (const [char, what] of [["$", "fio expands ${VAR} and $keywords"], [";", "fio ends a value at ';' (a comment)"], ["#", "fio ends a value at '#' (a comment)"], ["\\", "fio reads '\\' as an escape"]] as const) {
    if (path.includes(char)) throw refuse(`holds '${char}': ${what}`);
  }
  if (path.trim() !== path) throw refuse("begins or ends with a blank, which fio strips");
  return path.replaceAll(":", "\\:");
}

export function fioJobFile(options: BenchOptions, report: BenchReport, alignment: DiskAlignment): string {
  const diskPath = fioFilenameValue(report.host.scratch ? "bounce-bench-disk.bin" : report.host.disk);
  // Exactly the regions the bench's threads used.
  const regionBytes = threadRegionBytes(report.host.diskSize, options.threads, alignment);
  const lines: (string | null)[] = [
    "; fio job file written by bounce-bench --emit-fio: the closest workload fio can run, case by case.",
    "; run with: fio <this file>",
    report.host.scratch ? "; bounce-bench's scratch disk is gone: fio creates and lays out bounce-bench-disk.bin" : null,
    "[global]",
    `filename=${diskPath}`,
    `ioengine=${FIO_ENGINES[options.engine]}`,
    options.engine === "sync" ? "; bounce-bench's sync engine is vectored (preadv/pwritev): fio's pvsync" : null,
    `iodepth=${options.qd}`,
    options.uring?.registerFiles ? "registerfiles=1" : null,
    options.uring?.fixedBuffers ? "fixedbufs=1" : null,
    options.uring?.registeredMemory === "bounce" ? "; --fixedbufs bounce: fio has no bounce buffers; fixedbufs=1 registers the buffers it does IO from" : null,
    options.uring?.sqpoll ? "sqthread_poll=1" : null,
    options.engine === "uring" ? `nonvectored=${options.uring?.nonvectored ? 1 : 0}` : null,
    options.uring?.deferTaskrun ? "; --defer-taskrun: fio 3.33 has no option for IORING_SETUP_DEFER_TASKRUN" : null,
    `numjobs=${options.threads}`,
    "thread=1",
    "group_reporting=1",
    `size=${regionBytes}`,
    options.threads > 1 ? `offset_increment=${regionBytes}` : null,
    options.runtimeSeconds !== null ? `time_based=1\nruntime=${options.runtimeSeconds}` : `number_ios=${Math.ceil(options.ios! / options.threads)}`,
    options.fua ? "; --fua: fio has no per-write RWF_DSYNC for its sync engines; sync=dsync is the closest\nsync=dsync" : null,
    "",
  ];
  if (options.shape !== undefined) {
    lines.push(`; bounce-bench --seg ${formatShape(options.shape)}: fio cannot express a scatter-gather list; each job moves the same bytes as one buffer`, "");
  }
  report.results.forEach((result, index) => lines.push(...job(result, index, alignment), ""));
  return lines.filter((line) => line !== null).join("\n");
}

/** One case's job (commented out when fio could not run it either). */
function job(result: BenchCaseResult, index: number, alignment: DiskAlignment): string[] {
  const { op, bs, memOffset, mode, decision } = result;
  const header = `[case-${index}-${op}-${bs}-${memOffset}-${mode}]`;
  const write = op === "write" || op === "randwrite";
  const block = blockSize(alignment, write ? "write" : "read");
  const wholeBlocks = Math.ceil(bs / block) * block;
  const body = (direct: 0 | 1, size: number, offset: number) => ["stonewall", `rw=${op}`, `bs=${size}`, `direct=${direct}`, ...(offset !== 0 ? [`iomem_align=${offset}`] : [])];
  if (result.error !== null && result.ios === 0) {
    const why =
      result.error.code !== "EINVAL"
        ? `it failed (${result.error.code})`
        : alignment.source === "override"
          ? "the simulated disk (--align) refused it (EINVAL), as a disk of those blocks would; fio runs on the real disk"
          : "the kernel refused it (EINVAL), and would refuse fio's too";
    return [`; bounce-bench mode ${mode}: ${why}; left out:`, ...[header, ...body(1, bs, memOffset)].map((line) => `; ${line}`)];
  }
  switch (decision) {
    case "direct":
      return [header, ...body(1, bs, memOffset)];
    case "buffered":
      return [header, ...body(0, bs, memOffset)];
    case "bounce":
      if (wholeBlocks === bs) {
        return [header, `; bounce-bench bounced this case (mode ${mode}): fio cannot copy through a bounce buffer; this job does the direct IO of the page-aligned bounce buffer, without the copy`, ...body(1, bs, 0)];
      }
      return [header, `; bounce-bench widened this case to ${wholeBlocks}-byte blocks through a bounce buffer: fio cannot; this job does the aligned direct IO of the whole blocks, without the copy`, ...body(1, wholeBlocks, 0)];
    default:
      return [
        header,
        `; bounce-bench decided ${decision} here: fio cannot ${decision === "rmw" ? "read-modify-write" : decision === "split" ? "split a scatter-gather list into several calls" : `do ${decision}`}; this job does the aligned direct IO of the whole blocks (${wholeBlocks} bytes)${decision === "rmw" ? ", without the block reads first" : ""}`,
        ...body(1, wholeBlocks, 0),
      ];
  }
}
