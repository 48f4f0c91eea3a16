/**
 * `bounce-bench compare BASE NEW [--threshold PCT]`: bench runs side by side, each side one run
 * (a file) or several (a directory of them); per case and metric the change and whether it is a
 * finding (src/bench/compare.ts says against what noise); exit 1 when a metric regressed beyond
 * the threshold and the noise (for CI to gate on), 0 otherwise.
 */
import type { Command } from "commander";
import { benchDocument, COMPARED_METRICS, compareRuns, type MetricChange } from "../../src/bench/compare";
import { FINDING_P, RUNS_FOR_A_FINDING } from "../../src/bench/statistics";
import { InvalidInputError } from "../../src/base/errors";
import { jsonFilesUnder, readUserTextFile } from "../../src/host/files";
import { table, wrapLines } from "../format";
import type { Context } from "../main";
import { sharedOptions } from "../options";
import { jsonLine } from "../json-output";

const METRIC_HEADS: Record<string, string> = { mibPerSec: "MiB/s", iops: "IOPS", cpuNsPerIo: "CPU us/IO", p99Us: "p99 us" };

export function registerCompare(program: Command, context: Context): void {
  program
    .command("compare")
    .summary("compare bench runs; exit 1 on regression")
    .description(
      "Compare bench --json runs: a base and a new side, each one run (a file) or several (a directory of .json runs). " +
        "Cases matched by their parameters; per metric the change, whether it is a finding, and whether it regressed " +
        "(worse by more than --threshold and a finding). With one run a side the noise is each run's repeats; with several, " +
        "the spread between runs (make them alternately, 5 a side; 4 at least), which also covers the machine's drift between " +
        "invocations. Exit 1 when something regressed, 0 when nothing did, 2 on bad input.",
    )
    .argument("<base>", "the baseline: a bench --json (or --format json) file, or a directory of them")
    .argument("<new>", "the runs to judge, likewise")
    .option("--threshold <percent>", "smallest change that counts as a regression, in percent", "5")
    .addOption(sharedOptions.json())
    .addHelpText(
      "after",
      `
Examples:
  $ bounce-bench bench --output base.json --format json
  $ bounce-bench bench --output new.json --format json
  $ bounce-bench compare base.json new.json                 exit 1 if anything regressed
  $ bounce-bench compare base.json new.json --threshold 10 --json
  $ mkdir base new; for i in 1 2 3 4 5; do
      bounce-bench bench --format json --output base/$i.json
      bounce-bench bench --copy memcpy --format json --output new/$i.json
    done
  $ bounce-bench compare base new                           judged by run, drift included`,
    )
    .action((basePath: string, newPath: string, options: { threshold: string; json?: boolean }) => {
      const threshold = Number(options.threshold);
      if (!/^\d+(\.\d+)?$/.test(options.threshold.trim())) throw new InvalidInputError(`--threshold: ${JSON.stringify(options.threshold)} is not a percentage`);
      const load = (path: string) => {
        const text = readUserTextFile(path, "bench run");
        let value: unknown;
        try {
          value = JSON.parse(text);
        } catch (error) {
          throw new InvalidInputError(`${path}: not JSON (${(error as Error).message})`);
        }
        return benchDocument(value, path);
      };
      const side = (path: string) => jsonFilesUnder(path, "bench run").map(load);
      const comparison = compareRuns(side(basePath), side(newPath), threshold);
      if (comparison.cases.length === 0) {
        throw new InvalidInputError(`${basePath} and ${newPath} have no case in common to every run (cases match by op, size, offset, mode, engine, qd, threads)`);
      }
      if (options.json) {
        context.io.stdout(jsonLine("compare", { base: basePath, new: newPath, ...comparison }));
      } else {
        const cell = (change: MetricChange | null) => {
          if (change === null) return "-";
          const sign = change.percent >= 0 ? "+" : "";
          const mark = change.regressed ? " REGRESSED" : change.improved ? " improved" : change.beyondNoise ? "" : " ~";
          return `${sign}${change.percent.toFixed(1)}%${mark}`;
        };
        const head = ["case", ...COMPARED_METRICS.map((m) => METRIC_HEADS[m.key]!)];
        // The engine, depth and threads, when every case shares them, are said once below the table.
        const tails = new Set(comparison.cases.map((c) => c.name.split(" ").slice(-3).join(" ")));
        const shared = tails.size === 1 ? [...tails][0]! : null;
        const shown = (name: string) => (shared === null ? name : name.slice(0, -shared.length - 1));
        const rows = comparison.cases.map((c) => [shown(c.name), ...COMPARED_METRICS.map((m) => cell(c.metrics[m.key]))]);
        let text = table(head, rows);
        const notes = [
          ...(shared === null ? [] : [`every case: ${shared.replace(" qd", ", qd ").replace(" x", ", threads ")}`]),
          comparison.judgedBy === "repeats"
            ? `~: not a finding: a rank test of the two runs' repeats gives p >= ${FINDING_P} (it needs ${RUNS_FOR_A_FINDING} repeats a case at least); ` +
              `p99 is never judged (one histogram over the runs). One run a side: the test sees each run's repeats, not how the machine ` +
              `drifts between invocations, so a finding says these two runs differ; for a verdict on a change give each side a directory ` +
              `of 5 runs (${RUNS_FOR_A_FINDING} at least), made alternately`
            : `~: not a finding: a rank test of the ${comparison.invocations.base} base and ${comparison.invocations.new} new runs' figures ` +
              `gives p >= ${FINDING_P} (it needs ${RUNS_FOR_A_FINDING} runs a side at least); p99 is never judged`,
          `regressed: worse by more than ${threshold}% and beyond the noise`,
        ];
        if (comparison.onlyInBase.length > 0) notes.push(`only in ${basePath}: ${comparison.onlyInBase.join("; ")}`);
        if (comparison.onlyInNew.length > 0) notes.push(`only in ${newPath}: ${comparison.onlyInNew.join("; ")}`);
        if (comparison.differences.length > 0) notes.push(`the runs differ in ${comparison.differences.join("; ")}`);
        notes.push(comparison.regressed ? "result: REGRESSED" : "result: nothing regressed beyond the threshold and the noise");
        text += wrapLines(notes.join("\n")) + "\n";
        context.io.stdout(text);
      }
      if (comparison.regressed) context.exitCode = 1;
    });
}
