/**
 * The examples of README and of every page in docs/ run as written: every `$ npx bounce-bench
 * ...` line of their `sh` blocks, file by file and in order, in a scratch directory per file
 * (with `/tmp/` standing for it, and `test/`, `scenarios/` and `examples/` linked to the
 * repository's), exits as the page says (`# exit N` in the example; 0 otherwise), and prints
 * the lines the README shows. Numbers are compared as numbers-of-some-value (digits may differ
 * from machine to machine: kernel versions, device numbers, sizes of runs), `...` stands for
 * anything, and spacing is ignored. bench runs measure for 50 ms, once (`--runtime 50ms --repeat
 * 1` added unless the example says how long), so only their exit codes are checked: their tables
 * are measurements. So the documentation cannot drift from the tool. An example marked `# root`
 * (a capture, a scratch device) runs only where root, bpftrace, fio and dd are; elsewhere it is
 * skipped and the skip printed.
 */
import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { ROOT, runCliIn, scratchDir } from "./helpers";
import { captureUnavailable } from "../src/trace/capture";
import { findProgram } from "../src/host/scratch-dir";

interface Example {
  line: number;
  command: string;
  /** Marked `# root`: needs root (and, for trace capture, bpftrace and the program it runs). */
  root: boolean;
  shown: string[];
  exits: number[];
}

/** The pages whose examples run: README, then docs/ by name. */
const PAGES = ["README.md", ...readdirSync(join(ROOT, "docs")).filter((name) => name.endsWith(".md")).sort().map((name) => `docs/${name}`)];

/** The `$ npx bounce-bench` commands of a page's sh blocks, with the lines shown after each. */
function pageExamples(page: string): Example[] {
  const lines = readFileSync(join(ROOT, page), "utf8").split("\n");
  const examples: Example[] = [];
  let inBlock = false;
  let indent = "";
  let current: Example | null = null;
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!;
    const fence = /^(\s*)```(\w*)/.exec(raw);
    if (fence !== null) {
      if (inBlock) current = null;
      inBlock = !inBlock && fence[2] === "sh";
      indent = fence[1]!;
      continue;
    }
    if (!inBlock) continue;
    const text = raw.startsWith(indent) ? raw.slice(indent.length) : raw;
    if (text.startsWith("$ ")) {
      let command = text.slice(2);
      while (command.endsWith("\\")) command = `${command.slice(0, -1).trimEnd()} ${lines[++i]!.trim()}`;
      if (!command.startsWith("npx bounce-bench ")) {
        current = null;
        continue;
      }
      current = { line: i + 1, command, shown: [], exits: [0], root: /#\s*root\b/.test(command) };
      examples.push(current);
    } else if (current !== null) {
      current.shown.push(text);
    }
  }
  for (const example of examples) {
    const annotated = [example.command, ...example.shown].map((text) => /#\s*exit ([\d, or]+)/.exec(text)).find((match) => match !== null);
    if (annotated) example.exits = annotated[1]!.split(/[^\d]+/).filter(Boolean).map(Number);
    example.command = example.command.replace(/\s*#.*$/, "");
    example.shown = example.shown.map((text) => text.replace(/\s*#\s*exit.*$/, "")).filter((text) => text.trim() !== "");
  }
  return examples;
}

/** Why examples marked `# root` cannot run here, or null. */
const rootOnly = captureUnavailable() ?? ["fio", "dd"].map((program) => (findProgram(program) === null ? `needs ${program}` : null)).find((why) => why !== null) ?? null;

/** A line as compared: digits as `#`, spacing collapsed. */
const normal = (text: string) => text.replace(/\d+(\.\d+)?/g, "#").replace(/\s+/g, " ").trim();

/** Whether `shown` (with `...` standing for anything) is some line of `output`. */
function showsLine(output: string, shown: string): boolean {
  const pieces = normal(shown).split("...").map((piece) => piece.trim()).filter(Boolean);
  if (pieces.length === 0) return true;
  return output.split("\n").some((line) => {
    let at = 0;
    const text = normal(line);
    for (const piece of pieces) {
      const found = text.indexOf(piece, at);
      if (found < 0) return false;
      at = found + piece.length;
    }
    return true;
  });
}

/** The words of a command line, as a shell would split this README's (no quotes are used). */
function words(command: string): string[] {
  return command.split(/\s+/).filter(Boolean);
}

describe("the documentation's examples", () => {
  test("README has examples of the common commands, and README and docs/ together of every command", () => {
    const commands = (pages: string[]) => new Set(pages.flatMap(pageExamples).map((example) => words(example.command)[2]));
    for (const command of ["plan", "bench", "compare", "report", "repro"]) expect(commands(["README.md"])).toContain(command);
    for (const command of ["image", "probe", "plan", "io", "bench", "compare", "report", "repro"]) expect(commands(PAGES)).toContain(command);
  });

  test.each(PAGES)("%s: each runs, in order, exits as the page says, and prints the lines it shows", (page) => {
    const examples = pageExamples(page);
    const dir = scratchDir(`examples-${page.replace(/[/.]/g, "-")}`);
    symlinkSync(join(ROOT, "test"), join(dir, "test"));
    symlinkSync(join(ROOT, "scenarios"), join(dir, "scenarios"));
    symlinkSync(join(ROOT, "examples"), join(dir, "examples"));
    const failures: { where: string; code?: number; stderr?: string; missing?: string[] }[] = [];
    const skipped: string[] = [];
    for (const example of examples) {
      // `# root`: a capture or a scratch device; run where this machine can (CI, as root).
      if (example.root && rootOnly !== null) {
        skipped.push(`${page}:${example.line} (${rootOnly})`);
        continue;
      }
      let args = words(example.command.replaceAll("/tmp/", `${dir}/`)).slice(2);
      const measures = args[0] === "bench";
      if (measures && !args.includes("--runtime") && !args.includes("--ios")) args = [...args, "--runtime", "50ms"];
      if (measures && !args.includes("--repeat")) args = [...args, "--repeat", "1"];
      const result = runCliIn(dir, ...args);
      const where = `${page}:${example.line}: ${example.command}`;
      if (!example.exits.includes(result.code)) failures.push({ where, code: result.code, stderr: result.stderr });
      if (measures || args[0] === "compare") continue; // measurements: only the exit code is the README's
      const output = (result.stdout + result.stderr).replaceAll(`${dir}/`, "/tmp/");
      const missing = example.shown.filter((line) => !showsLine(output, line));
      if (missing.length > 0) failures.push({ where, missing });
    }
    expect(failures).toEqual([]);
    if (skipped.length > 0) console.log(`skipped examples marked # root: ${skipped.join(", ")}`);
  }, 300_000);

  test("README's library recipe is the core of examples/bounce-one-write.ts, which runs and writes the guest's bytes", () => {
    const readme = readFileSync(join(ROOT, "README.md"), "utf8");
    const block = /### Use it as a library\n\n```ts\n([\s\S]*?)```/.exec(readme)![1]!;
    const example = readFileSync(join(ROOT, "examples/bounce-one-write.ts"), "utf8");
    const core = /\/\/ README: from here\n([\s\S]*?)\s*\/\/ README: to here/.exec(example)![1]!.split("\n").map((line) => line.replace(/^ {2}/, ""));
    for (const line of core) expect(block.split("\n")).toContain(line);
    const run = Bun.spawnSync([process.execPath, join(ROOT, "examples/bounce-one-write.ts")], { cwd: ROOT });
    expect({ code: run.exitCode, out: run.stdout.toString().trim().split("\n") }).toEqual({
      code: 0,
      out: ['bounce [ "iovec: address 0x8 is not a multiple of the memory alignment 512" ]', "4096 bytes written, 4096 copied through a bounce buffer", "the disk holds the guest's bytes"],
    });
  });
});
