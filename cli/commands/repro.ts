/**
 * `bounce-bench repro FILE|DIR ...`: runs scenario files; exit 0 when every expectation holds,
 * 1 when one fails, 2 when a file is malformed (then nothing runs). Fit for
 * `git bisect run npx bounce-bench repro case.json`.
 */
import { jsonFilesUnder, readUserTextFile } from "../../src/host/files";
import { basename, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Command } from "commander";
import { BounceBenchError, isOutOfDescriptors } from "../../src/base/errors";
import { parseScenarioText, type Scenario } from "../../src/scenario/format";
import { scenarioResourceNeeds, type RunScenarioOptions, type ScenarioResult } from "../../src/scenario/run";
import { checkResources } from "../../src/host/resources";
import { Option } from "commander";
import { DISK_KINDS, type DiskKind } from "../../src/base/disk-kinds";
import { scratchDiskUnavailable } from "../../src/host/scratch-disks";
import { InvalidInputError } from "../../src/base/errors";
import { table, wrapLines } from "../format";
import type { Context } from "../main";
import { jsonLine } from "../json-output";
import { parseSector, sharedOptions } from "../options";
import { SignalGuard } from "../signals";

export function registerRepro(program: Command, context: Context): void {
  program
    .command("repro")
    .summary("run scenarios that reproduce alignment bugs")
    .description(
      "Run scenario files that reproduce alignment bugs (a directory runs every .json file in it, recursively). " +
        "Each scenario gets a scratch guest image and disk; its steps fill, do IO, plan and check, each against its expectations. " +
        "Exit 0: all pass; 1: an expectation failed; 2: a file is malformed (the bad field is named; nothing runs).",
    )
    .argument("[paths...]", "scenario files or directories; with --builtin, names of the scenarios shipped (all when none is named)")
    .option("--builtin", "run the scenarios shipped with bounce-bench (the corpus in its scenarios/ folder)")
    .addOption(
      new Option("--disk-kind <kind>", "run every scenario on this kind of disk instead of its own (a real disk of at least the scenario's simulated block replaces the simulation); all but file need root").choices(
        DISK_KINDS as string[],
      ),
    )
    .option("--sector <bytes>", "sector size of the loop device under --disk-kind loop, ext4, xfs, btrfs: 512 or 4096")
    .option("--no-resource-check", "run a scenario even when its guest image and disk do not fit in the free space (or memory) the host has")
    .addOption(sharedOptions.json())
    .addHelpText(
      "after",
      `
Examples:
  $ bounce-bench repro --builtin                                  every scenario shipped
  $ bounce-bench repro --builtin rmw-unaligned-write --json       one of them
  $ bounce-bench repro --builtin --disk-kind loop --sector 4096   on a real 4 KiB-sector disk (root)
  $ bounce-bench repro my-bug.json                                 your own (docs/scenarios.md)`,
    )
    .action(async (paths: string[], options: { json?: boolean; builtin?: boolean; diskKind?: DiskKind; sector?: string; resourceCheck: boolean }) => {
      // Installed before the files are read (a large corpus takes seconds to parse): a signal
      // then stops the run before it starts, instead of killing it.
      const stop = new Int32Array(new SharedArrayBuffer(4));
      // The Worker owns the scratch disk (a mount, a loop device) and removes it when it stops,
      // within a chunk of a fill or check: a second signal waits for that rather than leave them.
      using guard = new SignalGuard(
        () => Atomics.store(stop, 0, 1),
        () => context.io.stderr("bounce-bench: stopping: removing the scratch disk and files first (SIGKILL would leave them for the next run to reclaim)\n"),
        { exitOnSecond: false },
      );
      const stopped = () => guard.caught !== null;
      const disk = diskOverride(options.diskKind, options.sector);
      const wholeCorpus = options.builtin === true && paths.length === 0;
      const scenarios: Scenario[] = [];
      const skipped: { file: string; reason: string }[] = [];
      for (const scenario of scenarioPaths(paths, options.builtin === true).flatMap((path) => jsonFilesUnder(path, "scenario")).map(loadScenario)) {
        const kind = disk?.kind ?? scenario.diskKind;
        const unavailable = scratchDiskUnavailable(kind);
        // A scenario the user named must run; of the whole shipped corpus, those this host cannot run are skipped, saying why.
        if (unavailable !== null && wholeCorpus && disk === undefined) {
          skipped.push({ file: scenario.file, reason: `disk kind ${kind} ${unavailable}` });
          context.io.stderr(`bounce-bench: skipped ${basename(scenario.file)}: disk kind ${kind} ${unavailable}\n`);
          continue;
        }
        if (unavailable !== null) throw new BounceBenchError("DISK_KIND_UNAVAILABLE", `${scenario.file}: disk kind ${kind} ${unavailable}`);
        scenarios.push(scenario);
        if (options.resourceCheck) {
          try {
            checkResources(scenarioResourceNeeds(scenario, kind));
          } catch (error) {
            throw error instanceof InvalidInputError ? new InvalidInputError(`${scenario.file}: ${error.message}`) : error;
          }
        }
      }
      await new Promise((resolve) => setImmediate(resolve)); // a signal that came while parsing is handled now
      const results = stopped() ? [] : await runInWorker(scenarios, stop, disk, options.resourceCheck);
      if (options.json) {
        context.io.stdout(jsonLine("repro", { scenarios: results.map(resultJson), skipped, interrupted: stopped() }));
      } else {
        context.io.stdout(results.map(formatResult).join("\n"));
        const failed = results.filter((result) => !result.passed).length;
        context.io.stdout(`\n${results.length - failed} of ${results.length} scenario${results.length === 1 ? "" : "s"} passed\n`);
      }
      if (stopped()) {
        context.io.stderr(guard.message);
        context.exitCode = guard.exitCode;
      } else if (results.some((result) => !result.passed)) {
        context.exitCode = 1;
      }
    });
}

const WORKER_URL = new URL("../../src/scenario/worker.ts", import.meta.url);

/** Runs the scenarios in a Worker (see src/scenario/worker.ts); resolves with their results. */
function runInWorker(scenarios: Scenario[], stop: Int32Array, disk: RunScenarioOptions["disk"], resourceCheck: boolean): Promise<ScenarioResult[]> {
  const worker = new Worker(WORKER_URL);
  const results: ScenarioResult[] = [];
  return new Promise<ScenarioResult[]>((resolve, reject) => {
    worker.onmessage = (event: MessageEvent) => {
      const message = event.data;
      if (message.result !== undefined) return void results.push(message.result);
      worker.terminate();
      if (message.done) resolve(results);
      else reject(new BounceBenchError(message.failure.code, message.failure.message, { kind: message.failure.kind }));
    };
    worker.onerror = (event) => {
      worker.terminate();
      // The Worker could not even load its code: out of descriptors is the host's limit, anything else a bug.
      const errno = event.message.match(/\bE[A-Z]+\b/g)?.find(isOutOfDescriptors);
      reject(errno !== undefined ? new BounceBenchError(errno as `E${string}`, event.message, { kind: "io" }) : new Error(`scenario worker failed: ${event.message}`));
    };
    worker.postMessage({ scenarios, stop, disk, resourceCheck });
  });
}

/** `--disk-kind` and `--sector`, checked. */
function diskOverride(kind: DiskKind | undefined, sectorText: string | undefined): RunScenarioOptions["disk"] {
  if (kind === undefined) {
    if (sectorText !== undefined) throw new InvalidInputError("--sector needs --disk-kind");
    return undefined;
  }
  if (sectorText === undefined) return { kind };
  return { kind, sector: parseSector(sectorText, kind) };
}

/** The corpus shipped with the package (`repro --builtin`). */
const BUILTIN_SCENARIOS = fileURLToPath(new URL("../../scenarios", import.meta.url));

/** The files and directories to run: the user's, or with `builtin` the shipped scenarios `names` name (all without names). */
function scenarioPaths(names: string[], builtin: boolean): string[] {
  if (!builtin) {
    if (names.length === 0) throw new InvalidInputError("repro: give scenario files or directories, or --builtin for the scenarios shipped");
    return names;
  }
  if (names.length === 0) return [BUILTIN_SCENARIOS];
  const shipped = jsonFilesUnder(BUILTIN_SCENARIOS, "scenario").map((path) => basename(path, ".json"));
  return names.map((name) => {
    const bare = name.endsWith(".json") ? name.slice(0, -".json".length) : name;
    if (!shipped.includes(bare)) throw new InvalidInputError(`--builtin: no scenario named ${JSON.stringify(name)}; shipped: ${shipped.join(", ")}`);
    return join(BUILTIN_SCENARIOS, `${bare}.json`);
  });
}

function loadScenario(path: string): Scenario {
  return parseScenarioText(readUserTextFile(path, "scenario file"), path);
}

function resultJson(result: ScenarioResult) {
  return {
    file: result.file,
    name: result.name,
    passed: result.passed,
    interrupted: result.interrupted,
    steps: result.steps.map((step) => ({
      index: step.index,
      step: step.step,
      passed: step.passed,
      decision: step.decision,
      error: step.error,
      expected: step.expected,
      actual: step.actual,
      detail: step.detail,
    })),
  };
}

/** Steps shown per scenario in the table; beyond it, only failed steps (up to the same number). */
const MAX_TABLE_STEPS = 60;

function formatResult(result: ScenarioResult): string {
  const verdict = result.interrupted ? "STOPPED" : result.passed ? "PASS" : "FAIL";
  const head = `${verdict}  ${result.name}  (${result.file})\n      expected: ${result.expected}\n      buggy:    ${result.buggy}\n`;
  const shown = result.steps.length <= MAX_TABLE_STEPS ? result.steps : result.steps.filter((step) => !step.passed).slice(0, MAX_TABLE_STEPS);
  const rows = shown.map((step) => [step.index, step.step, step.passed ? "pass" : "FAIL", step.decision ?? "", step.error ?? "", wrapLines(step.detail, 70, "")]);
  const hidden = result.steps.length - shown.length;
  const note = hidden > 0 ? `      (${hidden} more step${hidden === 1 ? "" : "s"} not shown; --json has them all)\n` : "";
  const stopped = result.interrupted ? `      (stopped after ${result.steps.length} steps)\n` : "";
  const steps = rows.length > 0 ? table(["#", "step", "result", "decision", "error", "detail"], rows) : "";
  return head + steps + note + stopped;
}
