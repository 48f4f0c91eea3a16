/**
 * `bounce-bench report RUN.json [BASE.json] --html FILE`: a bench run (and its comparison with a
 * baseline) as one self-contained HTML file (`html-report.ts`).
 */
import type { Command } from "commander";
import { InvalidInputError } from "../../src/base/errors";
import { benchDocument, compareRuns } from "../../src/bench/compare";
import { checkBenchSchema } from "../../src/bench/bench-schema";
import type { BenchCaseResult } from "../../src/bench/bench-results";
import { readUserTextFile, refuseOutputsOverInputs, writeUserTextFile } from "../../src/host/files";
import { alignmentFromJson, type AlignmentJson } from "../../src/io/json-documents";
import { jsonLine, SCHEMA_VERSION } from "../json-output";
import type { Context } from "../main";
import { sharedOptions } from "../options";
import type { ReplayReport } from "../../src/trace/replay-run";
import { checkReplaySchema } from "../../src/trace/replay-schema";

export function registerReport(program: Command, context: Context): void {
  program
    .command("report")
    .summary("a bench run as one self-contained HTML page")
    .description(
      "Write a bench run (bench --format json) as one self-contained HTML file: first what bouncing costs (direct against " +
        "a forced bounce per op and block size, and the change with the rank test's verdict), then throughput and CPU per " +
        "IO against block size, latency percentiles, the comparison with a baseline run when given, and the decision map " +
        "of the run's disk under each rule set. Static SVG drawn by Vega; no script, nothing fetched.",
    )
    .argument("<run>", "the run (bench --format json output)")
    .argument("[base]", "a baseline run to compare with")
    .requiredOption("--html <file>", "(required) the HTML file to write (replacing one needs --force)")
    .option("--replay <file...>", "replayed traces to show, a section each: replay --json's output saved to a file (docs/trace.md)")
    .addOption(sharedOptions.force("replace an existing --html file"))
    .addOption(sharedOptions.json())
    .addHelpText(
      "after",
      `
Examples:
  $ bounce-bench bench --format json --output base.json             a baseline
  $ bounce-bench bench --format json --output run.json
  $ bounce-bench report run.json --html run.html
  $ bounce-bench report run.json base.json --html run.html --force     with the comparison
  $ bounce-bench report run.json --html run.html --force --json`,
    )
    .action(async (runPath: string, basePath: string | undefined, options: { html: string; replay?: string[]; force?: boolean; json?: boolean }) => {
      refuseOutputsOverInputs([["--html", options.html]], [["RUN.json", runPath], ["BASE.json", basePath], ...(options.replay ?? []).map((path): [string, string] => ["--replay", path])]);
      const run = load(runPath);
      const replays = (options.replay ?? []).map((path) => ({ name: path, report: loadReplay(path) }));
      const base = basePath === undefined ? null : load(basePath);
      const host = run.host as Record<string, unknown>;
      // Vega is loaded only here: every other command starts without it.
      const { htmlReport } = await import("../html-report");
      const html = await htmlReport({
        title: `bounce-bench report: ${runPath}`,
        version: String(run.version),
        startedAt: typeof run.startedAt === "string" ? run.startedAt : null,
        host,
        options: (run.options ?? {}) as Record<string, unknown>,
        results: run.results as unknown as BenchCaseResult[],
        alignment: alignmentFromJson(host.planAlignment as AlignmentJson),
        comparison: base === null ? null : compareRuns(benchDocument(base, basePath!), benchDocument(run, runPath), 5),
        baseName: basePath ?? null,
        replays,
      });
      writeUserTextFile(options.html, html, { force: options.force ?? false }, "--html");
      if (options.json) {
        context.io.stdout(jsonLine("report", { run: runPath, base: basePath ?? null, html: options.html, bytes: Buffer.byteLength(html), cases: (run.results as unknown[]).length }));
      } else {
        context.io.stderr(`bounce-bench: wrote ${options.html}\n`);
      }
    });
}

/** A `replay --json` document, or bad input naming the file. */
function loadReplay(path: string): ReplayReport {
  let doc: unknown;
  try {
    doc = JSON.parse(readUserTextFile(path, "--replay"));
  } catch (error) {
    if (error instanceof SyntaxError) throw new InvalidInputError(`--replay ${path}: not JSON (${error.message})`);
    throw error;
  }
  const record = doc as Record<string, unknown> | null;
  if (typeof record !== "object" || record === null || record.command !== "replay") throw new InvalidInputError(`--replay ${path}: not a replay document (replay --json output)`);
  if (record.schemaVersion !== SCHEMA_VERSION) throw new InvalidInputError(`--replay ${path}: a replay document of schema ${String(record.schemaVersion)}; report reads schema ${SCHEMA_VERSION}`);
  checkReplaySchema(record, `--replay ${path}`);
  return record as unknown as ReplayReport;
}

/** A bench document of this schema version, or bad input naming the file. */
function load(path: string): Record<string, unknown> {
  let doc: unknown;
  try {
    doc = JSON.parse(readUserTextFile(path, "report"));
  } catch (error) {
    if (error instanceof SyntaxError) throw new InvalidInputError(`${path}: not JSON (${error.message})`);
    throw error;
  }
  benchDocument(doc, path);
  const record = doc as Record<string, unknown>;
  if (record.schemaVersion !== SCHEMA_VERSION) throw new InvalidInputError(`${path}: a bench document of schema ${String(record.schemaVersion ?? 1)}; report reads schema ${SCHEMA_VERSION} (rerun bench)`);
  checkBenchSchema(doc, path);
  return record;
}
