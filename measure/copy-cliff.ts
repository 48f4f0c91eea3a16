/**
 * `npm run bench:copy`: the copy cliff on this machine, and whether bounce-bench avoids it.
 * Not a test: it prints numbers, it asserts nothing (exit 0 whatever it finds).
 *
 *   1. memmove (a TypedArray `set`, as the executor copies) of 64 KiB between page-aligned
 *      buffers against the distance from source to destination within a page: the best of
 *      several batches per distance.
 *   2. bounced 64 KiB reads and writes through the bench (memfd guest memory, a scratch file
 *      disk, interleaved repeats) at guest memory offsets inside and outside the slow window,
 *      with `--copy memcpy` and `--copy placed`: the copy rate per offset as a ratio to offset 0,
 *      against the goal of at least 0.8 at every offset in one run.
 *
 *   npm run bench:copy
 *   npm run bench:copy -- --repeat 5 --runtime 0.5 --json
 */
import { numberFlag, scriptOptions } from "./script-options";
import { table } from "../cli/format";
import { measureCopyRates } from "../src/bench/copy-rates";
import { runBench } from "../src/bench/runner";
import type { BenchCaseResult } from "../src/bench/bench-results";
import type { CopyMethod } from "../src/bounce/copy-placement";

const values = scriptOptions("bench:copy", {
  repeat: { type: "string", default: "3" },
  runtime: { type: "string", default: "0.3" },
  json: { type: "boolean", default: false },
});
const repeat = Math.floor(numberFlag("bench:copy", "repeat", values.repeat, 1));
const runtime = numberFlag("bench:copy", "runtime", values.runtime, 0.01);

const DISTANCES = [0, 1, 4, 8, 16, 24, 31, 32, 48, 63, 64, 128, 512, 2048, 3592, 4088, 4095];
const OFFSETS = [0, 8, 16, 32, 64, 512, 4088];

const rates = measureCopyRates(DISTANCES);
const byMethod: Record<CopyMethod, BenchCaseResult[]> = { memcpy: [], placed: [] };
for (const copy of ["memcpy", "placed"] as const) {
  const report = await runBench({
    size: 64 * 2 ** 20,
    ops: ["read", "write"],
    bs: [65536],
    memOffsets: OFFSETS,
    modes: ["bounce"],
    engine: "sync",
    qd: 1,
    threads: 1,
    budget: 2048,
    runtimeSeconds: runtime,
    ios: null,
    repeat,
    copy,
  });
  byMethod[copy] = report.results;
}

if (values.json) {
  console.log(JSON.stringify({ memmove: rates, bench: Object.fromEntries(Object.entries(byMethod).map(([k, v]) => [k, v.map((r) => ({ op: r.op, memOffset: r.memOffset, copyGiBPerSec: r.bounce.copyGiBPerSec, slowCopyBytesPerIo: r.bounce.slowCopyBytesPerIo, shift: r.bounce.shift }))])) }));
} else {
  const base = rates.find((r) => r.distance === 0)!.gibPerSec;
  const memmove = table(["distance (dst - src) mod 4096", "GiB/s", "vs distance 0"], rates.map((r) => [r.distance, r.gibPerSec.toFixed(1), (r.gibPerSec / base).toFixed(2)]));
  console.log("memmove of 64 KiB, best of 5 batches:\n" + memmove.trimEnd());
  const bench: (string | number)[][] = [];
  for (const op of ["read", "write"]) {
    const rate = (copy: CopyMethod, offset: number) => byMethod[copy].find((r) => r.op === op && r.memOffset === offset)!.bounce;
    for (const offset of OFFSETS) {
      const [m, p] = [rate("memcpy", offset), rate("placed", offset)];
      const [m0, p0] = [rate("memcpy", 0), rate("placed", 0)];
      bench.push([op, offset, m.copyGiBPerSec.toFixed(1), (m.copyGiBPerSec / m0.copyGiBPerSec).toFixed(2), p.copyGiBPerSec.toFixed(1), (p.copyGiBPerSec / p0.copyGiBPerSec).toFixed(2), p.shift]);
    }
  }
  console.log(`\nbounced 64 KiB IOs through bench (${repeat} runs of ${runtime} s, medians; copy rate alone):\n${table(["op", "guest offset", "memcpy GiB/s", "ratio", "placed GiB/s", "ratio", "shift"], bench).trimEnd()}`);
  const worst = Math.min(...["read", "write"].flatMap((op) => OFFSETS.map((offset) => {
    const rate = (o: number) => byMethod.placed.find((r) => r.op === op && r.memOffset === o)!.bounce.copyGiBPerSec;
    return rate(offset) / rate(0);
  })));
  console.log(`goal (every offset at least 0.8 x offset 0 with --copy placed): worst ratio ${worst.toFixed(2)}: ${worst >= 0.8 ? "met" : "NOT met"}`);
}
