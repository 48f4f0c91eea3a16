/**
 * `bounce-bench repro FILE|DIR ...`: runs scenario files; exit 0 when every expectation holds,
 * 1 when one fails, 2 when a file is malformed (then nothing runs). Fit for
 * `git bisect run npx bounce-bench repro case.json`.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import type { Command } from "commander";
import { BounceBenchError } from "../../src/errors";
import { parseScenarioText, type Scenario } from "../../src/scenario/format";
import { runScenario, type ScenarioResult } from "../../src/scenario/run";
import { table } from "../format";
import type { Context } from "../main";

export function registerRepro(program: Command, context: Context): void {
  program
    .command("repro")
    .description(
      "Run scenario files that reproduce alignment bugs (a directory runs every .json file in it, recursively). " +
        "Each scenario gets a scratch guest image and disk; its steps fill, do IO, plan and check, each against its expectations. " +
        "Exit 0: all pass; 1: an expectation failed; 2: a file is malformed (the bad field is named; nothing runs).",
    )
    .argument("<paths...>", "scenario files or directories")
    .option("--json", "print one JSON document on stdout")
    .action(async (paths: string[], options: { json?: boolean }) => {
      const scenarios = paths.flatMap(scenarioFiles).map(loadScenario);
      const results: ScenarioResult[] = [];
      for (const scenario of scenarios) results.push(await runScenario(scenario));
      if (options.json) {
        context.io.stdout(`${JSON.stringify({ scenarios: results.map(resultJson) })}\n`);
      } else {
        context.io.stdout(results.map(formatResult).join("\n"));
        const failed = results.filter((result) => !result.passed).length;
        context.io.stdout(`\n${results.length - failed} of ${results.length} scenario${results.length === 1 ? "" : "s"} passed\n`);
      }
      if (results.some((result) => !result.passed)) context.exitCode = 1;
    });
}

function scenarioFiles(path: string): string[] {
  let stat;
  try {
    stat = statSync(path);
  } catch {
    throw new BounceBenchError("ENOENT", "input", `${path}: no such scenario file or directory`);
  }
  if (!stat.isDirectory()) return [path];
  const files = readdirSync(path, { recursive: true })
    .map(String)
    .filter((name) => name.endsWith(".json"))
    .sort()
    .map((name) => join(path, name));
  if (files.length === 0) throw new BounceBenchError("INVALID_INPUT", "input", `${path}: no .json scenario files in it`);
  return files;
}

function loadScenario(path: string): Scenario {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    throw new BounceBenchError("INVALID_INPUT", "input", `${path}: cannot read it (${(error as Error).message})`);
  }
  return parseScenarioText(text, path);
}

function resultJson(result: ScenarioResult) {
  return {
    file: result.file,
    name: result.name,
    passed: result.passed,
    steps: result.steps.map((step) => ({ index: step.index, step: step.step, passed: step.passed, decision: step.decision, error: step.error, detail: step.detail })),
  };
}

function formatResult(result: ScenarioResult): string {
  const head = `${result.passed ? "PASS" : "FAIL"}  ${result.name}  (${result.file})\n      expected: ${result.expected}\n      buggy:    ${result.buggy}\n`;
  const rows = result.steps.map((step) => [step.index, step.step, step.passed ? "pass" : "FAIL", step.decision ?? "", step.error ?? "", wrap(step.detail, 70)]);
  return head + table(["#", "step", "result", "decision", "error", "detail"], rows);
}

function wrap(text: string, width: number): string {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(" ")) {
    if (line.length > 0 && line.length + word.length + 1 > width) {
      lines.push(line);
      line = word;
    } else {
      line = line.length === 0 ? word : `${line} ${word}`;
    }
  }
  if (line.length > 0) lines.push(line);
  return lines.join("\n");
}
