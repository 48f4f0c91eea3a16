/**
 * `npm run bench:aa`: how often `compare` calls noise a finding, and whether it finds a real
 * change; every judged metric (MiB/s, IOPS, CPU per IO) of every case counted.
 *
 *  - A/A, one run a side: the same bench (same build and options) run `--runs` times in a row,
 *    each consecutive pair compared as `compare a.json b.json` does (by the runs' repeats).
 *  - A/A, several runs a side: each group of 2 x `--side` invocations split into two sides of
 *    `--side`, compared as `compare a/ b/` does (by invocation), in two orders: alternately
 *    (runs 1, 3, 5, ... against 2, 4, 6, ...) and ABBA (A B B A A B B A ...: a side's runs sit
 *    on both phases of any drift that alternates or runs in a line). This is the method that
 *    should call at most 5% of metrics findings.
 *  - A/A within a run: two cases that are the same IO (offsets 0 and 512, both direct) in one
 *    sweep, judged as bench's verdicts are.
 *  - A/B, a real change: bounce buffers on transparent huge pages against 4 KiB pages
 *    (`--bounce-pages thp` against `4k`), bounced 64 KiB and 1 MiB reads and writes at memory
 *    offset 8, `--side` runs a side made alternately: the changes, and which `compare` finds.
 * Prints the counts; asserts nothing.
 *
 *   npm run bench:aa                         20 runs of the sweep below, 5 A/B runs a side
 *   npm run bench:aa -- --runs 8 --side 4 --seconds 0.1
 */
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { benchDocument, COMPARED_METRICS, compareRuns, type Comparison } from "../src/bench/compare";
import { difference, RUNS_FOR_A_FINDING } from "../src/bench/statistics";
import { numberFlag, scriptOptions } from "./script-options";

const flags = scriptOptions("bench:aa", {
  runs: { type: "string", default: "20" },
  side: { type: "string", default: "5" },
  seconds: { type: "string", default: "0.2" },
  json: { type: "boolean", default: false },
});
const runs = numberFlag("bench:aa", "runs", flags.runs, 2);
const SIDE = Math.floor(numberFlag("bench:aa", "side", flags.side, RUNS_FOR_A_FINDING)); // runs a side, judged by invocation
const seconds = numberFlag("bench:aa", "seconds", flags.seconds, 0.05);
const CLI = join(import.meta.dir, "..", "cli", "bounce-bench.ts");
const SWEEP = ["--op", "read,write", "--bs", "4k,64k", "--mem-offset", "0,8", "--mode", "auto,bounce"];

type Doc = ReturnType<typeof benchDocument>;

function bench(args: string[]): Doc {
  const run = spawnSync(process.execPath, [CLI, "bench", "--json", "--repeat", "5", "--runtime", String(seconds), ...args], { encoding: "utf8", maxBuffer: 1 << 28 });
  if (run.status !== 0) throw new Error(`bench ${args.join(" ")}: exit ${run.status}: ${run.stderr.trim()}`);
  return benchDocument(JSON.parse(run.stdout), "bench");
}

/** The judged metrics of a comparison: how many, which were findings. */
function findings(comparison: Comparison, label: string): { judged: number; found: string[]; changes: string[] } {
  const found: string[] = [];
  const changes: string[] = [];
  let judged = 0;
  for (const c of comparison.cases) {
    for (const metric of COMPARED_METRICS.filter((m) => m.judged)) {
      const change = c.metrics[metric.key];
      if (change === null || change.p === null) continue;
      judged++;
      const line = `${label}: ${c.name} ${metric.key} ${change.percent > 0 ? "+" : ""}${change.percent}% (p ${change.p})`;
      changes.push(line);
      if (change.beyondNoise) found.push(line);
    }
  }
  return { judged, found, changes };
}

// A/A: `runs` invocations of the same sweep.
const docs = Array.from({ length: runs }, (_, i) => {
  process.stderr.write(`A/A run ${i + 1}/${runs}\n`);
  return bench(SWEEP);
});
const single = { judged: 0, found: [] as string[] };
for (let i = 0; i + 1 < docs.length; i++) {
  const result = findings(compareRuns(docs[i]!, docs[i + 1]!, 5), `runs ${i + 1}, ${i + 2}`);
  single.judged += result.judged;
  single.found.push(...result.found);
}
/** Which side run `i` of a group is on: alternately (A B A B ...) or ABBA (A B B A A B B A ...). */
const ORDERS = { alternate: (i: number) => i % 2, abba: (i: number) => [0, 1, 1, 0][i % 4]! };
const byInvocation = Object.fromEntries(
  Object.entries(ORDERS).map(([order, side]) => {
    const tally = { judged: 0, found: [] as string[], perComparison: [] as number[] };
    for (let start = 0; start + 2 * SIDE <= docs.length; start += 2 * SIDE) {
      const group = docs.slice(start, start + 2 * SIDE);
      const result = findings(
        compareRuns(
          group.filter((_, i) => side(i) === 0),
          group.filter((_, i) => side(i) === 1),
          5,
        ),
        `${order}, runs ${start + 1}..${start + 2 * SIDE}`,
      );
      tally.judged += result.judged;
      tally.found.push(...result.found);
      tally.perComparison.push(result.found.length);
    }
    return [order, tally];
  }),
);

// A/A within one run: offsets 0 and 512 are both direct here, so the same IO; their runs are
// interleaved, as the bounce-against-direct verdicts' are.
const within = { judged: 0, found: 0 };
const withinRuns = Math.min(runs, 6);
for (let i = 0; i < withinRuns; i++) {
  process.stderr.write(`A/A within a run ${i + 1}/${withinRuns}\n`);
  const doc = bench(["--op", "read,write", "--bs", "4k,64k", "--mem-offset", "0,512", "--mode", "auto"]);
  for (const op of ["read", "write"]) {
    for (const bs of [4096, 65536]) {
      const at = (offset: number) => doc.results.find((r) => r.op === op && r.bs === bs && r.memOffset === offset && r.samples !== undefined)!;
      for (const key of ["mibPerSec", "iops", "cpuNsPerIo"] as const) {
        const change = difference(at(0).samples!.map((run) => run[key]), at(512).samples!.map((run) => run[key]));
        within.judged++;
        if (change.beyondNoise) within.found++;
      }
    }
  }
}

// A/B: bounce buffers on huge pages against 4 KiB pages, alternately.
const AB = ["--op", "read,write", "--bs", "64k,1m", "--mem-offset", "8", "--mode", "bounce"];
const small: Doc[] = [];
const huge: Doc[] = [];
for (let i = 0; i < SIDE; i++) {
  process.stderr.write(`A/B runs ${i + 1}/${SIDE}\n`);
  small.push(bench([...AB, "--bounce-pages", "4k"]));
  huge.push(bench([...AB, "--bounce-pages", "thp"]));
}
const ab = findings(compareRuns(small, huge, 5), "4k -> thp");
const abSingle = { judged: 0, found: 0 };
for (let i = 0; i < SIDE; i++) {
  const result = findings(compareRuns(small[i]!, huge[i]!, 5), "");
  abSingle.judged += result.judged;
  abSingle.found += result.found.length;
}

const percent = (part: number, whole: number) => `${((part / Math.max(1, whole)) * 100).toFixed(1)}%`;
const report = {
  runs,
  seconds,
  aaOneRunASide: { pairs: runs - 1, judged: single.judged, found: single.found.length, findings: single.found },
  aaSeveralRunsASide: Object.fromEntries(
    Object.entries(byInvocation).map(([order, t]) => [order, { runsASide: SIDE, judged: t.judged, found: t.found.length, perComparison: t.perComparison, findings: t.found }]),
  ),
  aaWithinRun: { runs: withinRuns, judged: within.judged, found: within.found },
  ab: { runsASide: SIDE, judged: ab.judged, found: ab.found.length, changes: ab.changes, oneRunASide: abSingle },
};
if (flags.json) console.log(JSON.stringify(report, null, 2));
else {
  console.log(`A/A, one run a side: ${runs} runs of the same sweep, ${runs - 1} consecutive pairs: ${single.found.length} of ${single.judged} judged metrics found (${percent(single.found.length, single.judged)})`);
  for (const [order, t] of Object.entries(byInvocation)) {
    console.log(`A/A, ${SIDE} runs a side, ${order}: ${t.perComparison.length} comparisons: ${t.found.length} of ${t.judged} found (${percent(t.found.length, t.judged)}; ${t.perComparison.join(", ")} a comparison)`);
    for (const line of t.found) console.log(`  ${line}`);
  }
  console.log(`A/A within a run: +0 against +512 (both direct), ${withinRuns} runs: ${within.found} of ${within.judged} found (${percent(within.found, within.judged)})`);
  console.log(`A/B, --bounce-pages 4k against thp, ${SIDE} runs a side, alternately: ${ab.found.length} of ${ab.judged} found`);
  for (const line of ab.changes) console.log(`  ${line}${ab.found.includes(line) ? "  FOUND" : ""}`);
  console.log(`A/B, one run a side (${SIDE} pairs): ${abSingle.found} of ${abSingle.judged} found`);
}
