/**
 * The command-line front end: builds the commander program and owns the one top-level catch.
 *
 * Outcome of a run, as an exit code:
 *   0  success
 *   1  the IO or a check failed (an errno from the kernel, a data mismatch)
 *   2  bad input or usage; nothing was read or written
 * Errors are one line on stderr, `bounce-bench: <what>: <why>`; with `--json`, stdout carries
 * the document envelope (`json-output.ts`) with `error: {code, message}` instead. Anything that is not a `BounceBenchError` is a bug:
 * its stack is shown with `--debug`.
 *
 * `main` takes argv and the output streams as parameters so tests can run it in-process.
 */
import { readFileSync } from "node:fs";
import { Command, CommanderError } from "commander";
import { BounceBenchError } from "../src";
import { isOutOfDescriptors } from "../src/base/errors";
import { registerBench } from "./commands/bench";
import { registerCompare } from "./commands/compare";
import { registerImage } from "./commands/image";
import { registerIo } from "./commands/io";
import { registerPlan } from "./commands/plan";
import { registerProbe } from "./commands/probe";
import { registerReport } from "./commands/report";
import { registerRepro } from "./commands/repro";
import { registerTrace } from "./commands/trace";
import { registerReplay } from "./commands/replay";
import { translateFioOptions } from "./fio-options";
import { jsonLine, type JsonCommand } from "./json-output";
import { VERSION } from "./version";
import { fitHelp } from "./format";

export interface Io {
  stdout(text: string): void;
  stderr(text: string): void;
}

/**
 * Control characters other than line breaks and tabs, as `\u00XX` text: a crafted case name, file
 * name or path must never reach a terminal as an escape sequence (retitling it, moving the
 * cursor, rewriting a line to a fake result). JSON is unchanged in meaning: it holds these only
 * inside strings, where `\u00XX` is the same character.
 */
export function withoutControls(text: string): string {
  return text.replace(/[\x00-\x08\x0b-\x1f\x7f-\x9f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

export const processIo: Io = {
  stdout: (text) => process.stdout.write(withoutControls(text)),
  stderr: (text) => process.stderr.write(withoutControls(text)),
};

/** What every command's action receives besides its own options. */
export interface Context {
  io: Io;
  /** Set by the action: the exit code when it returns normally (default 0). */
  exitCode: number;
}

export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;

/** Runs bounce-bench with `argv` (without the node/bun and script entries). */
export async function main(argv: readonly string[], io: Io = processIo): Promise<number> {
  const context: Context = { io, exitCode: EXIT_OK };
  const program = buildProgram(context);
  const json = argv.includes("--json");
  const debug = argv.includes("--debug");
  // `--version --json`, before any command: the envelope, which carries the version, and the runtime.
  const commandAt = argv.findIndex((arg) => !arg.startsWith("-"));
  const beforeCommand = commandAt < 0 ? argv : argv.slice(0, commandAt);
  if (json && (beforeCommand.includes("--version") || beforeCommand.includes("-V"))) {
    io.stdout(jsonLine("version", { runtime: { bun: Bun.version } }));
    return EXIT_OK;
  }
  try {
    await program.parseAsync(translateFioOptions(argv), { from: "user" });
    return context.exitCode;
  } catch (error) {
    return report(error, io, json, debug, commandOf(argv));
  }
}

function buildProgram(context: Context): Command {
  const program = new Command("bounce-bench")
    .description(
      "Disk IO experiments where guest memory meets O_DIRECT.\n\n" +
        "Builds request buffers over a memory-mapped guest image, decides between direct IO " +
        "and a bounce buffer, performs the IO, verifies the bytes and explains every decision.\n\n" +
        "Exit codes: 0 success, 1 an IO or check failed, 2 bad input (nothing read or written). " +
        "Every command takes --json (one JSON document on stdout), --version too.",
    )
    .version(VERSION, "-V, --version")
    .option("--debug", "show the stack of an internal error")
    .exitOverride()
    .configureOutput({
      writeOut: (text) => context.io.stdout(fitHelp(text)),
      writeErr: (text) => context.io.stderr(text),
      // Usage errors are printed by `report`, in the one-line format.
      outputError: () => {},
    });
  registerProbe(program, context);
  registerPlan(program, context);
  registerIo(program, context);
  registerBench(program, context);
  registerCompare(program, context);
  registerReport(program, context);
  registerRepro(program, context);
  registerImage(program, context);
  registerTrace(program, context);
  registerReplay(program, context);
  return program;
}

/** The command `argv` names (for the envelope of a JSON error), or null. */
function commandOf(argv: readonly string[]): JsonCommand | null {
  const words = argv.filter((arg) => !arg.startsWith("-"));
  const name = (words[0] === "image" || words[0] === "trace") && words[1] !== undefined ? `${words[0]} ${words[1]}` : words[0];
  const commands: readonly string[] = ["probe", "plan", "io", "bench", "compare", "report", "repro", "image create", "trace capture", "trace convert", "replay"];
  return name !== undefined && commands.includes(name) ? (name as JsonCommand) : null;
}

function report(error: unknown, io: Io, json: boolean, debug: boolean, command: JsonCommand | null): number {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === "string" && isOutOfDescriptors(code)) {
    // Out of descriptors: the host's limit, whatever call met it (never bad input, never a bug).
    if (debug) io.stderr(`${(error as Error).stack}\n`);
    const limit = code === "EMFILE" ? `this process's limit of ${OPEN_FILE_LIMIT} open files (ulimit -n)` : "the system's limit of open files (fs.file-max)";
    return fail(io, json, code, `${code}: out of file descriptors, at ${limit}; raise it (for example ulimit -n 4096)`, EXIT_FAILED, {}, command);
  }
  if (error instanceof CommanderError) {
    if (error.exitCode === 0) return EXIT_OK; // --help, --version
    // A bare command (no subcommand) printed its help: that is the answer, with a usage exit.
    if (error.code === "commander.help" || error.message === "(outputHelp)") return EXIT_USAGE;
    // commander's suggestion is on a line of its own ("(Did you mean bench?)"): keep it.
    const message = error.message.replace(/^error: /, "").replace(/\s*\n\s*/g, " ");
    return fail(io, json, "USAGE", `usage: ${message} (see --help)`, EXIT_USAGE, {}, command);
  }
  if (error instanceof BounceBenchError) {
    if (debug) io.stderr(`${error.stack}\n`);
    return fail(io, json, error.code, error.message, error.kind === "input" ? EXIT_USAGE : EXIT_FAILED, error.facts, command);
  }
  const text = error instanceof Error ? error.message : String(error);
  if (debug) io.stderr(`${error instanceof Error ? error.stack : text}\n`);
  const hint = debug ? "" : " (this is a bug; run with --debug for the stack)";
  return fail(io, json, "INTERNAL", `internal error: ${text}${hint}`, EXIT_FAILED, {}, command);
}

/**
 * The soft limit on open files, from /proc/self/limits, read at start: once the descriptors
 * have run out, reading it would fail too.
 */
const OPEN_FILE_LIMIT = (() => {
  try {
    return /^Max open files\s+(\S+)/m.exec(readFileSync("/proc/self/limits", "utf8"))?.[1] ?? "unknown";
  } catch {
    return "unknown";
  }
})();

function fail(io: Io, json: boolean, code: string, message: string, exitCode: number, facts: Record<string, unknown> = {}, command: JsonCommand | null = null): number {
  const line = message.split("\n")[0]!;
  if (json) io.stdout(jsonLine(command, { error: { code, message: line, ...facts } }));
  else io.stderr(`bounce-bench: ${line}\n`);
  return exitCode;
}
