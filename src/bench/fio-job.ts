/**
 * The fio job file equivalent to a benchmark's cases, so the same workload can be rerun with fio
 * (on this host, or on many through fio's client/server mode).
 *
 * Mapping: op -> rw, bs -> bs, memory offset -> iomem_align (fio places each buffer at a page
 * boundary plus that offset), mode -> direct (1, or 0 for buffered), engine -> ioengine
 * (sync: psync, uring: io_uring, null: null), qd -> iodepth, threads -> numjobs (thread=1),
 * --runtime -> time_based + runtime, --ios -> number_ios. Jobs run one after another
 * (stonewall). fio has no bounce buffer: a case bounce-bench bounced runs direct in fio, and the
 * job says so in a comment.
 */
import { formatShape, type BenchOptions } from "./runner";

const FIO_ENGINES = { sync: "psync", uring: "io_uring", null: "null" } as const;

export function fioJobFile(options: BenchOptions, diskPath: string, diskSize: number): string {
  const regionBytes = Math.floor(diskSize / options.threads / 4096) * 4096;
  const lines = [
    "; fio job file written by bounce-bench --emit-fio: the same workload, case by case.",
    `; run with: fio ${"<this file>"}`,
    "[global]",
    `filename=${diskPath}`,
    `ioengine=${FIO_ENGINES[options.engine]}`,
    `iodepth=${options.qd}`,
    `numjobs=${options.threads}`,
    "thread=1",
    "group_reporting=1",
    `size=${regionBytes}`,
    options.threads > 1 ? `offset_increment=${regionBytes}` : null,
    options.runtimeSeconds !== null ? `time_based=1\nruntime=${options.runtimeSeconds}` : `number_ios=${Math.ceil(options.ios! / options.threads)}`,
    options.fua ? "; --fua: fio has no per-write RWF_DSYNC for psync; sync=dsync is the closest\nsync=dsync" : null,
    "",
  ];
  const shape = options.shape;
  if (shape !== undefined) {
    lines.push(`; bounce-bench --seg ${formatShape(shape)}: fio cannot express a scatter-gather list; each job below moves the same bytes as one buffer`, "");
  }
  const sizes = shape === undefined ? options.bs : [shape.reduce((sum, segment) => sum + segment.len, 0)];
  const offsets = shape === undefined ? options.memOffsets : [shape[0]!.offset];
  let index = 0;
  for (const op of options.ops) {
    for (const bs of sizes) {
      for (const memOffset of offsets) {
        for (const mode of options.modes) {
          lines.push(`[case-${index++}-${op}-${bs}-${memOffset}-${mode}]`);
          if (mode === "bounce" || mode === "auto") lines.push(`; bounce-bench mode ${mode}: fio has no bounce buffer, so this job runs direct`);
          lines.push("stonewall", `rw=${op}`, `bs=${bs}`, `direct=${mode === "buffered" ? 0 : 1}`);
          if (memOffset !== 0) lines.push(`iomem_align=${memOffset}`);
          lines.push("");
        }
      }
    }
  }
  return lines.filter((line) => line !== null).join("\n");
}
