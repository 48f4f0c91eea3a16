/**
 * `npm run bench:aa`: how often `compare` calls noise a finding, and whether it finds a real
 * change. A/A: the same bench, same build and options, run `--runs` times in a row; every
 * consecutive pair compared, every judged metric of every case counted (MiB/s, IOPS, CPU per
 * IO): the fraction that is "beyond noise" is the method's false-finding rate here, which
 * should be at most 5% (statistics.ts). A/A within a run: two cases that are the same IO (offsets
 * 0 and 512, both direct) in one sweep, judged as bench's verdicts are. A/B: the bounced cases at memory offset 8 with `--copy
 * memcpy` against `--copy placed` (memcpy's slow path against the placed copy), `--runs` pairs:
 * how often the change in CPU per IO is found. Prints the counts; asserts nothing.
 *
 *   npm run bench:aa                         6 runs of the sweep below, 5 A/B pairs
 *   npm run bench:aa -- --runs 4 --seconds 0.2
 */
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { benchDocument, COMPARED_METRICS, compareRuns } from "../src/bench/compare";
import { difference } from "../src/bench/statistics";
import { numberFlag, scriptOptions } from "./script-options";

const flags = scriptOptions("bench:aa", { runs: { type: "string", default: "6" }, seconds: { type: "string", default: "0.2" }, json: { type: "boolean", default: false } });
const runs = numberFlag("bench:aa", "runs", flags.runs, 2);
const seconds = numberFlag("bench:aa", "seconds", flags.seconds, 0.05);
const CLI = join(import.meta.dir, "..", "cli", "bounce-bench.ts");
const SWEEP = ["--op", "read,write", "--bs", "4k,64k", "--mem-offset", "0,8", "--mode", "auto,bounce", "--repeat", "5", "--runtime", String(seconds)];

function bench(extra: string[]): ReturnType<typeof benchDocument> {
  const run = spawnSync(process.execPath, [CLI, "bench", "--json", ...SWEEP, ...extra], { encoding: "utf8", maxBuffer: 1 << 28 });
  if (run.status !== 0) throw new Error(`bench ${extra.join(" ")}: exit ${run.status}: ${run.stderr.trim()}`);
  return benchDocument(JSON.parse(run.stdout), "bench");
}

// A/A: consecutive runs of the same sweep.
const docs = Array.from({ length: runs }, (_, i) => {
  process.stderr.write(`A/A run ${i + 1}/${runs}\n`);
  return bench([]);
});
let judged = 0;
let flagged = 0;
const flaggedList: string[] = [];
for (let i = 0; i + 1 < docs.length; i++) {
  for (const c of compareRuns(docs[i]!, docs[i + 1]!, 5).cases) {
    for (const metric of COMPARED_METRICS.filter((m) => m.judged)) {
      const change = c.metrics[metric.key];
      if (change === null || change.p === null) continue;
      judged++;
      if (change.beyondNoise) {
        flagged++;
        flaggedList.push(`pair ${i + 1}: ${c.name} ${metric.key} ${change.percent}% (p ${change.p})`);
      }
    }
  }
}

// A/A within one run: offsets 0 and 512 are both direct here, so the same IO; their runs are
// interleaved, as the bounce-against-direct verdicts' are.
let withinJudged = 0;
let withinFlagged = 0;
for (let i = 0; i < runs; i++) {
  process.stderr.write(`A/A within a run ${i + 1}/${runs}\n`);
  const doc = bench(["--mem-offset", "0,512", "--mode", "auto"]);
  for (const op of ["read", "write"]) {
    for (const bs of [4096, 65536]) {
      const at = (offset: number) => doc.results.find((r) => r.op === op && r.bs === bs && r.memOffset === offset && r.samples !== undefined)!;
      for (const key of ["mibPerSec", "iops", "cpuNsPerIo"] as const) {
        const change = difference(at(0).samples!.map((run) => run[key]), at(512).samples!.map((run) => run[key]));
        withinJudged++;
        if (change.beyondNoise) withinFlagged++;
      }
    }
  }
}

// A/B: memcpy against the placed copy, bounced reads and writes at offset 8.
const AB = ["--mem-offset", "8", "--mode", "bounce", "--bs", "64k"];
let abJudged = 0;
let abFound = 0;
const abChanges: number[] = [];
for (let i = 0; i < Math.max(1, runs - 1); i++) {
  process.stderr.write(`A/B pair ${i + 1}/${Math.max(1, runs - 1)}\n`);
  const placed = bench([...AB, "--copy", "placed"]);
  const memcpy = bench([...AB, "--copy", "memcpy"]);
  for (const c of compareRuns(placed, memcpy, 5).cases) {
    const change = c.metrics.cpuNsPerIo;
    if (change === null || change.p === null) continue;
    abJudged++;
    abChanges.push(change.percent);
    if (change.beyondNoise) abFound++;
  }
}

const report = {
  aa: { runs, pairs: runs - 1, judged, flagged, rate: judged === 0 ? null : flagged / judged, flaggedMetrics: flaggedList },
  aaWithinRun: { runs, judged: withinJudged, flagged: withinFlagged },
  ab: { pairs: Math.max(1, runs - 1), judged: abJudged, found: abFound, cpuPercentChanges: abChanges },
};
if (flags.json) console.log(JSON.stringify(report, null, 2));
else {
  console.log(`A/A: ${runs} runs of the same sweep, ${runs - 1} consecutive pairs: ${flagged} of ${judged} judged metrics beyond noise (${((flagged / Math.max(1, judged)) * 100).toFixed(1)}%)`);
  for (const line of flaggedList) console.log(`  ${line}`);
  console.log(`A/A within a run: +0 against +512 (both direct), ${runs} runs: ${withinFlagged} of ${withinJudged} beyond noise`);
  console.log(`A/B: --copy memcpy against placed, bounced 64k at offset 8: CPU per IO changes ${abChanges.map((p) => `${p > 0 ? "+" : ""}${p}%`).join(", ")}; found in ${abFound} of ${abJudged}`);
}
