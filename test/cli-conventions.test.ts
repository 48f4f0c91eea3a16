/**
 * Command-line conventions: commander's suggestions survive, a bare command prints its help
 * without commander's internals, every command's help ends with worked examples and marks what
 * is required, fio's option names and units work (and decimal units are refused with the binary
 * one meant), and plan and io take bench's `--mem-offset`.
 */
import { describe, expect, test } from "bun:test";
import { parseDuration, parseSize } from "../src/base/value-parsers";
import { runCliIn, scratchDir, thrown } from "./helpers";

const dir = scratchDir("cli-conventions");
const run = (...args: string[]) => runCliIn(dir, ...args);

describe("usage errors and help", () => {
  test("a mistyped command keeps commander's suggestion, on the one line", () => {
    const result = run("bnech");
    expect(result.code).toBe(2);
    expect(result.stderr).toBe("bounce-bench: usage: unknown command 'bnech' (Did you mean bench?) (see --help)\n");
  });

  test("a bare bounce-bench (or bare image) prints its help and exits 2, without commander's internals", () => {
    for (const args of [[], ["image"]]) {
      const result = run(...args);
      expect(result.code).toBe(2);
      expect(result.stdout + result.stderr).toContain("Usage: bounce-bench");
      expect(result.stdout + result.stderr).not.toContain("outputHelp");
    }
  });

  test("every command's --help ends with worked examples; required options are marked", () => {
    for (const command of [["probe"], ["plan"], ["io"], ["bench"], ["compare"], ["report"], ["repro"], ["image", "create"]]) {
      const result = run(...command, "--help");
      expect({ command, code: result.code }).toEqual({ command, code: 0 });
      const examples = result.stdout.lastIndexOf("Examples:");
      expect({ command, examples: examples > 0 }).toEqual({ command, examples: true });
      expect(result.stdout.slice(examples)).toContain(`$ bounce-bench ${command.join(" ")}`);
    }
    expect(run("io", "--help").stdout).toMatch(/--guest <path> +\(required\)/);
    expect(run("image", "create", "--help").stdout).toMatch(/--size <n> +\(required\)/);
  });

  test("the command list is one line per command", () => {
    const help = run("--help").stdout;
    const commands = help.slice(help.indexOf("Commands:"));
    for (const line of commands.split("\n").slice(1)) if (line.trim() !== "") expect(line).toMatch(/^  \S/); // no continuation lines
  });
});

describe("fio's names and units", () => {
  test("--rw, --iodepth, --numjobs, --ioengine and time suffixes run the same bench as bounce-bench's names", () => {
    const result = run("bench", "--size", "2m", "--rw", "randread", "--bs", "4k", "--mem-offset", "0", "--mode", "auto", "--iodepth", "4", "--numjobs", "2", "--ioengine=io_uring", "--runtime", "200ms", "--repeat", "1", "--json");
    expect(result.code).toBe(0);
    const doc = JSON.parse(result.stdout);
    expect(doc.options).toMatchObject({ ops: ["randread"], qd: 4, threads: 2, engine: "uring", runtimeSeconds: 0.2 });
    expect(doc.results[0]).toMatchObject({ op: "randread", engine: "uring", qd: 4, threads: 2 });
  });

  test("fio's engines map to bounce-bench's; others, and both names at once, are exit 2 with one line", () => {
    const pvsync = JSON.parse(run("bench", "--size", "1m", "--ioengine", "pvsync", "--bs", "4k", "--mem-offset", "0", "--mode", "auto", "--ios", "5", "--repeat", "1", "--json").stdout);
    expect(pvsync.options.engine).toBe("sync");
    for (const [args, message] of [
      [["bench", "--ioengine", "libaio"], "--ioengine libaio: bounce-bench's engines are fio's io_uring, psync, pvsync, sync, null"],
      [["bench", "--rw", "read", "--op", "write"], "--rw is fio's name for --op: give one of them"],
      [["plan", "--gpns", "0", "--rw", "write", "--op", "read"], "--rw is fio's name for --op"],
      [["bench", "--size", "1GB"], 'did you mean 1G (GiB)?'],
      [["bench", "--runtime", "2 weeks"], "is not a positive duration"],
    ] as const) {
      const result = run(...args);
      expect({ args, code: result.code }).toEqual({ args, code: 2 });
      expect(result.stderr).toContain(message);
      expect(result.stderr.trim().split("\n")).toHaveLength(1);
    }
    expect(JSON.parse(run("plan", "--gpns", "0", "--rw", "read", "--json").stdout).op).toBe("read");
  });

  test("sizes take T; durations take ms, s, m, h; decimal units are refused naming the binary one", () => {
    expect(parseSize("1T", "x")).toBe(2 ** 40);
    expect(parseSize("2TiB", "x")).toBe(2 ** 41);
    expect(thrown(() => parseSize("4kB", "--bs")).message).toBe('--bs: "4kB" is a decimal unit; did you mean 4K (KiB)? Sizes are binary: 1G is 2^30 bytes');
    expect([parseDuration("30", "x"), parseDuration("30s", "x"), parseDuration("500ms", "x"), parseDuration("2m", "x"), parseDuration("1h", "x"), parseDuration("0.5", "x")]).toEqual([30, 30, 0.5, 120, 3600, 0.5]);
    expect(parseDuration("0", "--ramp", true)).toBe(0);
    for (const bad of ["0", "-1", "1d", "", "s", "1.5.2"]) expect(() => parseDuration(bad, "--runtime")).toThrow("--runtime");
  });
});

describe("plan and io take bench's --mem-offset", () => {
  test("--mem-offset is --offset; both at once is exit 2", () => {
    const byMemOffset = JSON.parse(run("plan", "--gpns", "0", "--mem-offset", "8", "--len", "512", "--json").stdout);
    const byOffset = JSON.parse(run("plan", "--gpns", "0", "--offset", "8", "--len", "512", "--json").stdout);
    expect(byMemOffset.segments).toEqual(byOffset.segments);
    expect(byMemOffset.segments[0]).toMatchObject({ offset: 8, len: 512 });
    const both = run("plan", "--gpns", "0", "--offset", "8", "--mem-offset", "8");
    expect(both.code).toBe(2);
    expect(both.stderr).toContain("--offset and --mem-offset are the same option");
  });
});
